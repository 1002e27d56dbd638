"""Progress inside running jobs: each job's training step, seen from the process that waits.

The study's jobs are few and long (minutes each at `tiny`), and a pool runs them in other
processes, so counting finished jobs gives no ETA for minutes. Instead each job writes its current
step, at most once a second, to a small file in a folder the parent names through the
environment (`STEPS_DIR_ENV`, inherited by pool workers); the parent sums the steps of all jobs,
weighted by each job's cost per step, and shows the share of the work done with an ETA.

Without the environment variable (a job run by hand, or on Ray) `counting_steps` changes nothing.
"""

from __future__ import annotations

import math
import os
import threading
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
    """Show the work done by `jobs` ((key, steps, cost per step) each) as they run.

    Yields `on_result(i, result)` for the executor: job `i` counts as done. Between results a
    thread reads the step files every second; a bar shows every reading, piped output one line
    per finished job plus one line `first_line_s` after the first step is seen and one every
    `lines_every_s` after that.
    """
    from lmlab.progress import mode, work_progress

    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.step"):
        stale.unlink()
    total = sum(steps * cost for _, steps, cost in jobs) or 1.0
    finished: set[int] = set()
    lock = threading.Lock()
    stop = threading.Event()
    before = os.environ.get(STEPS_DIR_ENV)
    os.environ[STEPS_DIR_ENV] = str(folder)

    def done() -> float:
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

    with work_progress(label, 100.0) as tracker:
        how = mode()

        def poll() -> None:
            # The clock restarts at the first step seen, so the ETA's pace leaves out the
            # start of the worker processes; piped, the first line comes `first_line_s` later.
            started: float | None = None
            next_line = math.inf
            while not stop.wait(min(1.0, first_line_s)):
                with lock:
                    work = done()
                    now = time.monotonic()
                    if started is None:
                        if work == 0:
                            continue
                        started, next_line = now, now + first_line_s
                        tracker.restart()
                    if how == "lines" and now < next_line:
                        continue
                    next_line = now + lines_every_s
                    tracker.update(work, "running")

        thread = threading.Thread(target=poll, daemon=True)
        if how != "off":
            thread.start()

        def on_result(i: int, result: Any) -> None:
            with lock:
                finished.add(i)
                tracker.update(done(), describe(i, result))

        try:
            yield on_result
        finally:
            stop.set()
            if thread.is_alive():
                thread.join()
            if before is None:
                os.environ.pop(STEPS_DIR_ENV, None)
            else:
                os.environ[STEPS_DIR_ENV] = before
