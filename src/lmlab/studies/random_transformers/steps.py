"""Progress inside running jobs: each job's training step, seen from the process that waits.

The study's jobs are few and long (minutes each at `tiny`), and a pool runs them in other
processes, so counting finished jobs gives no ETA for minutes. Instead each job writes its current
step, at most once a second, to a small file in a folder the parent names through the
environment (`STEPS_DIR_ENV`, inherited by pool workers); the parent sums the steps of all jobs,
weighted by each job's cost per step, and shows the share of the work done with an ETA.

Without the environment variable (a job run by hand, or on Ray) `counting_steps` changes nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["STEPS_DIR_ENV", "counting_steps", "watch_steps"]

STEPS_DIR_ENV = "LMLAB_RT_STEPS_DIR"


def _file_name(key: str) -> str:
    return key.replace("/", "_") + ".step"


def counting_steps(batches: Callable[[int, Any], Any], key: str,
                   every_s: float = 1.0) -> Callable[[int, Any], Any]:
    """`batches` (the trainer's batch function) that also records the step it is asked for."""
    folder = os.environ.get(STEPS_DIR_ENV)
    if not folder:
        return batches
    path = Path(folder) / _file_name(key)
    last = [0.0]

    def counted(step: int, gen: Any) -> Any:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            try:
                tmp.write_text(str(step))
                os.replace(tmp, path)
            except OSError:  # progress is a courtesy: never fail a job over it
                pass
        return batches(step, gen)

    return counted


@contextmanager
def watch_steps(label: str, folder: Path, jobs: Sequence[tuple[str, int, float]],
                describe: Callable[[int, Any], str], lines_every_s: float = 60.0,
                first_line_s: float = 3.0) -> Iterator[Callable[[int, Any], None]]:
    """Show the work done by `jobs` ((key, steps, cost per step) each) as they run, in percent.

    Yields `on_result(i, result)` for the executor (`lmlab.progress.polled_progress` reads the
    step files every second; piped, a line `first_line_s` after the first step, then every
    `lines_every_s`, and one per finished job).
    """
    from lmlab.progress import polled_progress

    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.step"):
        stale.unlink()
    total = sum(steps * cost for _, steps, cost in jobs) or 1.0
    before = os.environ.get(STEPS_DIR_ENV)
    os.environ[STEPS_DIR_ENV] = str(folder)

    def done(finished: set[int]) -> float:
        work = 0.0
        for i, (key, steps, cost) in enumerate(jobs):
            if i in finished:
                work += steps * cost
                continue
            try:
                step = int((folder / _file_name(key)).read_text() or 0)
            except (OSError, ValueError):
                continue
            work += min(step, steps) * cost
        return round(100.0 * work / total, 2)

    try:
        with polled_progress(label, 100.0, done, describe, unit="%", first_line_s=first_line_s,
                             lines_every_s=lines_every_s) as on_result:
            yield on_result
    finally:
        if before is None:
            os.environ.pop(STEPS_DIR_ENV, None)
        else:
            os.environ[STEPS_DIR_ENV] = before
