"""`lmlab bench reproduce --json`: per study, wall and CPU seconds split into training,
evaluation, LLM generation and analysis, measured by `lmlab.bench.phases` (a sampling profiler),
so the next bottleneck of `lmlab reproduce` is visible.

Each study runs its preset (default `tiny`; `--set` overrides apply to every study that has the
field, e.g. a reduced size) in this process with the serial executor, into a temporary folder
that is removed afterwards. Studies run one after another, fastest expected first.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["bench_reproduce", "profile_study"]


def _overrides_for(study_id: str, preset: str, sets: Sequence[str]) -> list[str]:
    """The overrides of `sets` this study's config has (so one --set list serves several),
    plus `executor=serial` where the study has an executor: only this process is profiled."""
    from lmlab.study import get_study

    config = get_study(study_id).preset(preset)
    names = {f.name for f in dataclasses.fields(config)}
    keep = [s for s in sets if s.split("=", 1)[0].split(".")[0] in names]
    if "executor" in names and not any(s.startswith("executor=") for s in keep):
        keep.append("executor=serial")
    return keep


def profile_study(study_id: str, preset: str = "tiny", sets: Sequence[str] = (),
                  interval: float = 0.005) -> dict[str, Any]:
    """Run one study under the phase profiler; its phases, totals, claims count and verdicts."""
    from lmlab.bench.phases import profile_phases
    from lmlab.runner import execute
    from lmlab.study import get_study

    overrides = _overrides_for(study_id, preset, sets)
    kind = type(get_study(study_id))
    roots = [kind.run, kind.claims, kind.checks]
    with tempfile.TemporaryDirectory(prefix="lmlab-bench-") as tmp, \
            profile_phases(interval, roots) as prof:
        result = execute(study_id, preset, overrides, out=Path(tmp) / study_id)
    out = prof.to_dict()
    claims = result.get("claims", [])
    out.update({"preset": preset, "overrides": overrides,
                "claims_hold": sum(c.get("holds") is True for c in claims),
                "claims": len(claims),
                # each claim's verdict by id (true / false / null for untestable), so two
                # benchmark runs can be compared claim by claim, not only by their counts
                "verdicts": {c["id"]: c.get("holds") for c in claims if "id" in c}})
    return out


def bench_reproduce(only: str | Sequence[str] | None = None, preset: str = "tiny",
                    sets: Sequence[str] = (), interval: float = 0.005) -> dict[str, Any]:
    """Profile each study of `only` (comma-separated ids or a list; default: all implemented)."""
    from lmlab.runner import run_order
    from lmlab.study import get_study, implemented

    if only is None:
        ids = implemented()
    else:
        ids = [s.strip() for s in (only.split(",") if isinstance(only, str) else only) if s.strip()]
        for sid in ids:
            get_study(sid)  # an unknown id: one clear line before anything runs
    studies = {sid: profile_study(sid, preset, sets, interval) for sid in run_order(ids)}
    total = {"wall_s": sum(s["wall_s"] for s in studies.values()),
             "cpu_s": sum(s["cpu_s"] for s in studies.values())}
    for phase in next(iter(studies.values()))["phases"] if studies else ():
        total[f"{phase}_cpu_s"] = sum(s["phases"][phase]["cpu_s"] for s in studies.values())
    return {"studies": studies, "total": total}
