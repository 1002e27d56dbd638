"""A plugin study of slow, seeded jobs, for the kill-and-resume test of `map_jobs` (plumbing
only, never shown as a result)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from lmlab.executor import map_jobs
from lmlab.seeding import derive, numpy_rng
from lmlab.study import Claim, Study, StudyConfig, register


@dataclass
class JobsConfig(StudyConfig):
    n_jobs: int = 6
    sleep: float = 0.4


@dataclass(frozen=True)
class SlowJob:
    seed: int
    index: int
    sleep: float
    log: str  # a file each job appends to when it really runs


def slow_draw(job: SlowJob) -> dict[str, Any]:
    """Sleep, then draw a seeded number (module level: any executor can run it)."""
    with open(job.log, "a", encoding="utf-8") as f:
        f.write(f"{job.index}\n")
    time.sleep(job.sleep)
    return {"index": job.index, "x": float(numpy_rng(job.seed).random())}


class ToyJobs(Study):
    id = "toy-jobs"
    Config = JobsConfig
    presets = {"tiny": JobsConfig()}
    growable = ("n_jobs",)

    def run(self, config: JobsConfig, run: Any) -> dict[str, Any]:
        log = os.path.join(run.path, "calls.txt")
        jobs = [SlowJob(derive(config.seed, "draw", i), i, config.sleep, log)
                for i in range(config.n_jobs)]
        res = map_jobs(slow_draw, jobs, "serial", run=run, progress="toy-jobs")
        return {f"draw.{r['index']}.x": r["x"] for r in res}

    def claims(self, config: JobsConfig, metrics: dict[str, Any]) -> list[Claim]:
        return [Claim.check("in-range", "every draw lies in [0, 1)", "-", len(metrics),
                            all(0 <= v < 1 for v in metrics.values()))]


register(ToyJobs())
