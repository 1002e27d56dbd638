"""Running a study: from (study, preset, overrides, seed, folder) to a finished `result.json`.

`execute` validates everything a user can get wrong before it touches the disk, so bad input
leaves nothing behind; then it runs the study in its folder and writes `result.json` atomically
at the very end, so a run that dies leaves no result, only metrics and checkpoints to resume from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import resource
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lmlab
from lmlab.device import device_name
from lmlab.errors import LmlabError
from lmlab.progress import study_progress
from lmlab.runs import (
    CONFIG,
    METRICS,
    RESULT,
    Run,
    atomic_write_json,
    environment,
    jsonable,
    read_json,
)
from lmlab.seeding import seed_everything
from lmlab.study import Check, Claim, StudyConfig, apply_overrides, config_to_dict, get_study

# Files and folders a run owns; --force removes exactly these and nothing else.
RUN_FILES = (CONFIG, METRICS, RESULT, "checkpoints", "figures", "jobs")  # jobs: map_jobs' cache


def default_out(study_id: str, preset: str, seed: int) -> Path:
    """Where a run goes when --out is not given."""
    return Path("runs") / study_id / f"{preset}-seed{seed}"


def resolve_config(
    study_id: str, preset: str = "tiny", overrides: Sequence[str] = (), seed: int | None = None
) -> StudyConfig:
    """The study's preset with overrides and seed applied (every check, no side effects)."""
    study = get_study(study_id)
    config = apply_overrides(study.preset(preset), overrides)
    if seed is not None:
        config = dataclasses.replace(config, seed=seed)
    return config


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise LmlabError(f"--out {out} is a file, not a folder")


def _clear_run(out: Path, names: tuple[str, ...] = RUN_FILES) -> None:
    for name in names:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _config_record(study_id: str, preset: str, config: StudyConfig) -> dict[str, Any]:
    record = {"study": study_id, "preset": preset, "seed": config.seed, "config": config_to_dict(config)}
    # as it reads back from config.json (tuples become lists), so a resume compares like with like
    return json.loads(json.dumps(jsonable(record)))


def config_hash(record: dict[str, Any]) -> str:
    """A short, stable hash of a run's (study, preset, seed, config) record."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def execute(
    study_id: str,
    preset: str = "tiny",
    overrides: Sequence[str] = (),
    seed: int | None = None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    force: bool = False,
    expected_s: float | None = None,
) -> dict[str, Any]:
    """Run a study and return its result (also written to `out/result.json`).

    A finished run is never overwritten without `force`; `resume` continues an interrupted run
    with the same configuration from its last checkpoint (or returns the result of a finished one),
    or grows a run where only the study's `growable` fields differ (its finished jobs are kept).
    Progress shows the ETA by `expected_s` until the study's own stages measure their pace
    (default: the study's declared `expected_s` for the preset, when nothing is overridden).
    """
    if resume and force:
        raise LmlabError("--resume and --force cannot be combined")
    study = get_study(study_id)
    config = resolve_config(study_id, preset, overrides, seed)
    study.validate(config)
    out = Path(out) if out is not None else default_out(study_id, preset, config.seed)
    _check_out(out)
    record = _config_record(study_id, preset, config)

    if (out / RESULT).is_file() and not force and not resume:
        grow = f", or --resume to grow it ({', '.join(study.growable)})" if study.growable else ""
        raise LmlabError(f"{out} already holds a finished run; pass --force to run it again{grow}")
    if (out / CONFIG).is_file() and not force:
        if not resume:
            raise LmlabError(
                f"{out} holds an unfinished run; pass --resume to continue it or --force to start over"
            )
        old = read_json(out / CONFIG)
        stored = {k: old.get(k) for k in ("study", "preset", "seed", "config")}
        top = [k for k in ("study", "preset", "seed") if stored.get(k) != record[k]]
        changed = top or _diff(stored.get("config") or {}, record["config"])
        grown = bool(changed) and not top and set(changed) <= set(study.growable)
        if changed and not grown:
            growable = f" (only {', '.join(study.growable)} may change)" if study.growable else ""
            raise LmlabError(
                f"cannot resume {out}: its configuration differs in {', '.join(changed)}{growable}"
            )
        if (out / RESULT).is_file() and not grown:
            return read_json(out / RESULT)
        if grown:  # the smaller run's result and figures go; the grown run makes its own
            what = "; ".join(f"{k} {stored['config'].get(k)} -> {record['config'][k]}"
                             for k in changed)
            print(f"growing {out}: {what}; finished jobs are kept, the result is computed anew",
                  file=sys.stderr)
            _clear_run(out, (RESULT, "figures"))
    elif resume and not (out / CONFIG).is_file():
        raise LmlabError(f"nothing to resume in {out}: no {CONFIG}")
    if force:
        _clear_run(out)

    run = Run(out, resume=resume)
    env = environment(seed=config.seed, device=device_name(config.device))
    atomic_write_json(run.config_path, {**record, "environment": env})

    if expected_s is None and not overrides:
        expected_s = (getattr(study, "expected_s", {}) or {}).get(preset)
    seed_everything(config.seed)
    t0, c0 = time.perf_counter(), cpu_seconds()
    with study_progress(study_id, expected_s):
        metrics = study.run(config, run)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    claims = study.claims(config, metrics)
    checks = study.checks(config, metrics)
    _validate(study_id, metrics, claims, checks)
    result = {
        **record,
        # what `reproduce` compares before it reuses this result
        "lmlab_version": lmlab.__version__,
        "config_hash": config_hash(record),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": metrics,
        "claims": [c.to_dict() for c in claims],
        "checks": [c.to_dict() for c in checks],
        "timing": {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)},
        "environment": env,
    }
    atomic_write_json(run.result_path, result)
    return read_json(run.result_path)


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished child processes (a
    study's worker processes count once they have exited)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _validate(study_id: str, metrics: Any, claims: Any, checks: Any = ()) -> None:
    """A study must return plain metrics, Claim and Check objects; anything else is a bug in
    the study. A Check returned among the claims would inflate "N of M claims hold": refused."""
    if not isinstance(metrics, dict):
        raise TypeError(f"study {study_id!r}: run() must return a dict of metrics")
    for k, v in metrics.items():
        if not isinstance(v, int | float | str | None) and not hasattr(v, "item"):
            raise TypeError(f"study {study_id!r}: metric {k!r} is {type(v).__name__}, not a number or string")
    for c in claims:
        if not isinstance(c, Claim) or isinstance(c, Check):
            raise TypeError(f"study {study_id!r}: claims() must return Claim objects (not Checks)")
    for c in checks:
        if not isinstance(c, Check):
            raise TypeError(f"study {study_id!r}: checks() must return Check objects")


def stale_reason(study_id: str, result: dict[str, Any], preset: str = "tiny") -> str | None:
    """Why a finished `result` is not what running `study_id`'s preset now would make (its
    configuration hash or lmlab version differs), or None when it is current."""
    config = resolve_config(study_id, preset, seed=result.get("seed"))
    expected = config_hash(_config_record(study_id, preset, config))
    if result.get("preset") != preset:
        return f"made by preset {result.get('preset')!r}"
    if result.get("config_hash") != expected:
        return "made with another configuration" if result.get("config_hash") else \
            "no configuration hash recorded"
    if result.get("lmlab_version") != lmlab.__version__:
        return f"made by lmlab {result.get('lmlab_version') or 'of unknown version'}"
    return None


def _made_on(result: dict[str, Any], path: Path) -> str:
    created = result.get("created")
    if isinstance(created, str) and created:
        return created.replace("T", " ").replace("+00:00", " UTC")
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _reproduce_one(job: tuple[str, str, bool, bool]) -> tuple[str, dict[str, Any] | None, str | None]:
    """One study's tiny preset, for an executor: (study, result or None, error or None).

    A finished result in `out` is reused when it is current (same configuration hash and lmlab
    version), or when `reuse` asks to keep it anyway; it is then marked `reused_from` (its date,
    and why it differs). A stale one is run again."""
    study_id, out, force, reuse = job
    path = Path(out) / RESULT
    try:
        if path.is_file() and not force:
            old = read_json(path)
            why = stale_reason(study_id, old)
            if why is None or reuse:
                old["reused_from"] = _made_on(old, path) + (f"; {why}" if why else "")
                return study_id, old, None
        expected = expected_seconds(study_id, Path(out).parent)
        return study_id, execute(study_id, "tiny", out=out, force=True,
                                 expected_s=expected if math.isfinite(expected) else None), None
    except Exception as e:  # one study's failure must not lose the others' results
        return study_id, None, f"{type(e).__name__}: {e}"


Outcome = tuple[str, dict[str, Any] | None, str | None]  # (study, result or None, error or None)


def expected_seconds(study_id: str, out: str | Path | None = None, preset: str = "tiny") -> float:
    """How long `study_id`'s preset is expected to take: the wall time recorded in its last
    result under `out` (if any), else the study's declared `expected_s`, else infinity."""
    if out is not None:
        path = Path(out) / study_id / RESULT
        if path.is_file():
            try:
                wall = (read_json(path).get("timing") or {}).get("wall_s")
            except (OSError, ValueError):
                wall = None
            if isinstance(wall, int | float) and wall >= 0:
                return float(wall)
    declared = getattr(get_study(study_id), "expected_s", {}) or {}
    return float(declared.get(preset, float("inf")))


def run_order(study_ids: Sequence[str], out: str | Path | None = None,
              preset: str = "tiny") -> list[str]:
    """`study_ids` fastest expected first (ties, e.g. unknown times, keep their given order), so
    the first results of `reproduce` are readable within minutes."""
    pos = {sid: i for i, sid in enumerate(study_ids)}
    return sorted(study_ids, key=lambda sid: (expected_seconds(sid, out, preset), pos[sid]))


def reproduce(
    study_ids: Sequence[str], out: str | Path, executor: str = "serial", *, force: bool = False,
    reuse: bool = False,
    on_start: Callable[[int, str], None] | None = None,
    on_result: Callable[[int, Outcome], None] | None = None,
    write_reports: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Run each study's `tiny` preset into `out/<study>` through an executor, the fastest
    expected first (`run_order`), rewriting `out/summary.json` and `out/report.html` after each
    study (with `write_reports`) so the first results are readable while the rest still run.

    A finished result already in `out` is reused (marked `reused_from`) when its configuration
    hash and lmlab version match this code's, or with `reuse` whatever they are; otherwise, or
    with `force`, the study runs again. Returns the results and the
    failures (study -> error line). `on_start(i, study)` is called as a study starts (serial
    executor only: elsewhere studies start together) and `on_result(i, outcome)` as it ends;
    `i` indexes the run order.
    """
    from lmlab.executor import get_executor

    out = Path(out)
    _check_out(out)
    if force and reuse:
        raise LmlabError("--force and --reuse cannot be combined")
    ordered = run_order(study_ids, out)
    jobs = [(sid, str(out / sid), force, reuse) for sid in ordered]
    finished: dict[int, Outcome] = {}

    def done(i: int, outcome: Outcome) -> None:
        finished[i] = outcome
        if write_reports:
            _write_reports(out, [finished[k] for k in sorted(finished)],
                           [sid for k, sid in enumerate(ordered) if k not in finished])
        if on_result is not None:
            on_result(i, outcome)

    if executor == "serial":
        outcomes = []
        for i, job in enumerate(jobs):
            if on_start is not None:
                on_start(i, job[0])
            outcomes.append(_reproduce_one(job))
            done(i, outcomes[-1])
    else:
        outcomes = get_executor(executor).map(_reproduce_one, jobs, on_result=done)
    results = [r for _, r, _ in outcomes if r is not None]
    failures = {sid: err for sid, _, err in outcomes if err is not None}
    return results, failures


def _write_reports(out: Path, outcomes: Sequence[Outcome], pending: Sequence[str] = ()) -> None:
    """summary.json and report.html of the studies finished so far (`pending`: still to come)."""
    from lmlab.report import write_report, write_summary

    results = [r for _, r, _ in outcomes if r is not None]
    failures = {sid: err for sid, _, err in outcomes if err is not None}
    write_summary(out, results, failures)
    write_report(out, results, failures, pending)
