"""Do a study's verdicts hang on the torch thread count? (`lmlab compare-threads STUDY`)

Float reductions split over a different number of threads sum in a different order, so tiny
training runs can drift apart, and a verdict that flips between 1 and 2 threads is not
established at this scale. This runs the study's preset once per thread setting, each in its own
`lmlab run` process (so the setting is in force before torch starts: `OMP_NUM_THREADS`,
`MKL_NUM_THREADS`, `--set threads=N` when the study's config has a `threads` field, and
`LMLAB_TORCH_THREADS`, which `lmlab.executor.job_threads` puts in force in every job and pool
worker even where a study gives its jobs one thread each), and lists every claim and check whose
verdict differs, with the measured values of each run, and every metric that differs (timing
keys aside), with its largest relative difference. The comparison is also written to
`out/comparison.json`.

Idle OpenMP threads wait passively (`OMP_WAIT_POLICY=PASSIVE`, unless the caller set it): the
numbers depend on how many threads split a reduction, not on how they wait, and spinning
threads on a loaded machine cost 20-40x the CPU of one thread (measured on linear-attention's
small jobs at load ~22).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmlab.errors import LmlabError
from lmlab.executor import THREADS_ENV
from lmlab.runs import atomic_write_json

__all__ = ["TIMING", "compare_metrics", "compare_threads", "thread_overrides"]

# Metric keys that measure time or speed: they differ between any two runs and are not compared.
TIMING = re.compile(r"(^|[._])(wall|cpu|seconds|elapsed|time|per_s|tokens_per_s|throughput)"
                    r"([._]|s?$)|_s$|\.s$")


def thread_overrides(study_id: str, preset: str, threads: int) -> list[str]:
    """`threads=N` when the study's config has the field (its jobs set their own thread count)."""
    from lmlab.study import get_study

    config = get_study(study_id).preset(preset)
    return [f"threads={threads}"] if "threads" in {f.name for f in dataclasses.fields(config)} \
        else []


def _run(study_id: str, preset: str, sets: Sequence[str], threads: int, out: Path,
         timeout: float | None) -> dict[str, Any]:
    args = ["run", study_id, "--preset", preset, "--out", str(out), "--force"]
    for s in [*sets, *thread_overrides(study_id, preset, threads)]:
        args += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           THREADS_ENV: str(threads),
           "LMLAB_PROGRESS": os.environ.get("LMLAB_PROGRESS", "lines"),
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", "from lmlab.cli import main; main()", *args],
                          env=env, capture_output=True, text=True, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise LmlabError(f"{study_id} with {threads} thread(s) failed: {tail[0]}")
    result = json.loads((out / "result.json").read_text())
    # the run and every pool worker it waited for
    result["_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def _relative(a: Any, b: Any) -> float:
    """|a - b| / max(|a|, |b|) for numbers (0 when equal, NaN equal to NaN); 1.0 when they are
    not both numbers and differ (a changed label, a metric missing on one side)."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if not numbers:
        return 0.0 if a == b else 1.0
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))


def compare_metrics(metrics: dict[int, dict[str, Any]], top: int = 10) -> dict[str, Any]:
    """The metrics (timing keys aside) that differ between thread counts.

    Returns {"compared": number of keys, "differ": number that differ, "max_rel": the largest
    relative difference, "largest": the `top` largest, each {"key", "rel", "values": {N: v}}}.
    """
    runs = list(metrics)
    keys = sorted({k for m in metrics.values() for k in m if not TIMING.search(k)})
    rows = []
    for k in keys:
        values = {n: metrics[n].get(k) for n in runs}
        rel = max(_relative(values[runs[0]], values[n]) for n in runs[1:])
        if rel > 0:
            rows.append({"key": k, "rel": rel, "values": values})
    rows.sort(key=lambda r: -r["rel"])
    return {"compared": len(keys), "differ": len(rows),
            "max_rel": rows[0]["rel"] if rows else 0.0, "largest": rows[:top]}


def compare_threads(study_id: str, out: str | Path, preset: str = "tiny",
                    sets: Sequence[str] = (), threads: Sequence[int] = (1, 2),
                    timeout: float | None = None) -> dict[str, Any]:
    """Run `study_id` once per thread count into `out/threads<N>`; the verdicts side by side.

    Returns {"study", "preset", "threads", "runs": {N: {"wall_s", "cpu_s", "torch_threads" (of
    the run's own process), "claims_hold", ...}},
    "verdicts": {id: {N: holds}}, "differ": [{"id", "kind", "holds": {N: ...},
    "measured": {N: ...}}], "metrics": `compare_metrics` of the runs}, also written to
    `out/comparison.json`.
    """
    from lmlab.study import get_study

    get_study(study_id)  # an unknown study: one clear line before anything runs
    if len(set(threads)) < 2 or any(n < 1 for n in threads):
        raise LmlabError("compare-threads needs at least two different thread counts >= 1")
    root = Path(out)
    results = {n: _run(study_id, preset, sets, n, root / f"threads{n}", timeout) for n in threads}
    rows: dict[str, dict[str, Any]] = {}
    for n, res in results.items():
        for kind in ("claims", "checks"):
            for c in res.get(kind, []):
                row = rows.setdefault(c["id"], {"id": c["id"], "kind": kind[:-1], "holds": {},
                                                "measured": {}})
                row["holds"][n] = c.get("holds")
                row["measured"][n] = c.get("measured")
    differ = [r for r in rows.values() if len({repr(v) for v in r["holds"].values()}) > 1
              or len(r["holds"]) < len(threads)]
    runs = {n: {"wall_s": (res.get("timing") or {}).get("wall_s"), "cpu_s": res["_cpu_s"],
                "torch_threads": (res.get("environment") or {}).get("threads"),
                "claims_hold": sum(c.get("holds") is True for c in res.get("claims", [])),
                "claims": len(res.get("claims", [])), "out": str(root / f"threads{n}")}
            for n, res in results.items()}
    comparison = {"study": study_id, "preset": preset, "sets": list(sets),
                  "threads": list(threads), "runs": runs,
                  "verdicts": {k: r["holds"] for k, r in rows.items()}, "differ": differ,
                  "metrics": compare_metrics({n: res.get("metrics", {}) for n, res in
                                              results.items()})}
    atomic_write_json(root / "comparison.json", comparison)
    return comparison
