"""Progress you can see: one mechanism for every study's long loops.

On a terminal (stderr is a TTY) a rich progress bar shows the jobs done of the total, the last
job finished, the elapsed time and an ETA; piped (a log file, CI) it prints one line per finished
job instead, at most one every `LINE_GAP_S` seconds besides the first and the last (so hundreds of
quick jobs do not flood a log). `LMLAB_PROGRESS=bar|lines|off` forces one of the three.

A loop of jobs through an executor::

    with job_progress("linear-attention: teacher", len(jobs)) as on_result:
        results = get_executor(cfg.executor).map(run_job, jobs, on_result=on_result)

Jobs that run for minutes each in worker processes, watched from the parent (each job leaves its
step somewhere the parent can read: a log, a small file)::

    with polled_progress("state-tracking: training", total_steps, steps_read) as on_result:
        results = map_jobs(train, jobs, executor, on_result=on_result)

A long training loop that logs its steps through a run (`lmlab.nn.train.Trainer` does)::

    with step_progress(run, "ttt-arc: pre-training", total=c.pre_steps) as watched:
        Trainer(model, tc, batches, run=watched).fit()

A whole study (`lmlab.runner.execute` does this around `Study.run`): a first row, shown at once,
with the elapsed time and an ETA from the study's expected time (its last run, else its declared
`Study.expected_s`) until it ends; the stages' bars above share its display, and piped, a line
comes at the start and then every minute, so a long first job never leaves the log silent::

    with study_progress("state-tracking", expected_s=560):
        metrics = study.run(config, run)

Everything goes to stderr, so stdout keeps only the results.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["clock", "job_progress", "mode", "polled_progress", "step_progress", "study_progress",
           "work_progress"]

OnResult = Callable[[int, Any], None]
Describe = Callable[[int, Any], str]


def mode() -> str:
    """How progress is shown here: "bar" (a terminal), "lines" (piped) or "off"."""
    forced = os.environ.get("LMLAB_PROGRESS", "").strip().lower()
    if forced in ("bar", "lines", "off"):
        return forced
    return "bar" if sys.stderr.isatty() else "lines"


def clock(seconds: float) -> str:
    """Seconds as ``M:SS`` or ``H:MM:SS``."""
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _columns() -> list[Any]:
    """The columns every bar shares: what, the bar, how far, elapsed, ETA, the last item done."""
    from rich.progress import BarColumn, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.table import Column
    from rich.text import Text

    class EtaColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            eta = task.fields.get("eta")
            return Text(eta() if callable(eta) else "", style="cyan")

    def one_line() -> Column:
        return Column(no_wrap=True, overflow="ellipsis")

    return [TextColumn("[bold]{task.description}", table_column=one_line()),
            BarColumn(bar_width=20), TextColumn("{task.fields[count]}", table_column=one_line()),
            TimeElapsedColumn(), EtaColumn(table_column=one_line()),
            TextColumn("{task.fields[last]}", style="dim", table_column=one_line())]


def _new_bar() -> Any:
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(*_columns(), console=Console(stderr=True), transient=False)
    bar.start()
    return bar


class _Study:
    """The study under way (set by `study_progress`): its clock, expected time and shared bar."""

    def __init__(self, label: str, expected_s: float | None, bar: Any):
        self.label, self.expected_s, self.bar = label, expected_s, bar
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float | None:
        """Seconds left by the expected time (None without one; 0 once it is overdue)."""
        if self.expected_s is None or not math.isfinite(self.expected_s):
            return None
        return max(0.0, self.expected_s - self.elapsed())

    def eta_text(self) -> str:
        left = self.left()
        if left is None:
            return "eta: no expected time for these settings"
        if left == 0:
            return f"eta ? (over the expected {clock(self.expected_s or 0)})"
        return f"eta ~{clock(left)} expected"


_STUDY: _Study | None = None

LINE_GAP_S = 5.0  # piped: the least time between two lines of one tracker (first and last always)


class _Tracker:
    """Counts finished units and renders them (a rich bar, or one line each)."""

    def __init__(self, label: str, total: float, unit: str, how: str,
                 gap: float | None = None):
        self.label, self.total, self.unit, self.how = label, max(0, total), unit, how
        self.gap = gap  # least seconds between piped lines (None: LINE_GAP_S)
        self.done = 0
        self.t0 = time.perf_counter()
        self._said: float | None = None  # when the last piped line was printed
        self._pending: str | None = None  # the last line held back
        self._bar: Any = None
        self._own_bar = False
        self._task: Any = None
        if how == "bar" and self.total:
            shared = _STUDY.bar if _STUDY is not None else None
            self._bar, self._own_bar = (shared, False) if shared is not None else (_new_bar(), True)
            self._task = self._bar.add_task(label, total=self.total, last="",
                                            count=self._count(), eta=self.eta_text)

    def _count(self) -> str:
        return f"{self.done:g}/{self.total:g} {self.unit}"

    def eta_text(self) -> str:
        """The ETA at the measured pace; before the first unit, the study's expected time left."""
        eta = self.eta()
        if eta is not None:
            return f"eta {clock(eta)}"
        if _STUDY is not None and _STUDY.left() is not None:
            return f"eta ~{clock(_STUDY.left() or 0)} for the study, expected"
        return "eta: after the first " + self.unit.rstrip("s")

    def restart(self) -> None:
        """Start the clock again (the ETA's pace and the elapsed time count from now)."""
        self.t0 = time.perf_counter()

    def eta(self) -> float | None:
        """Seconds left at the mean pace so far (None before the first unit)."""
        if not self.done:
            return None
        return (time.perf_counter() - self.t0) / self.done * max(0, self.total - self.done)

    def update(self, done: int, last: str = "") -> None:
        self.done = min(done, self.total) if self.total else done
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, last=last, count=self._count())
        elif self.how == "lines":
            now = time.perf_counter()
            last_unit = bool(self.total) and self.done >= self.total
            gap = LINE_GAP_S if self.gap is None else self.gap
            if self._said is not None and not last_unit and now - self._said < gap:
                self._pending = last
                return
            self._say(last, now)

    def flush(self) -> None:
        """Print the line an update held back (piped), so the count shown is the current one."""
        if self._pending is not None:
            self._say(self._pending, time.perf_counter())

    def _say(self, last: str, now: float) -> None:
        self._said, self._pending = now, None
        eta = self.eta()
        line = (f"{self.label} [{self.done}/{self.total} {self.unit}] {last}".rstrip()
                + f" (elapsed {clock(now - self.t0)}"
                + (f", eta {clock(eta)})" if eta is not None else ")"))
        print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None and self._own_bar:
            self._bar.stop()


def _describe(i: int, result: Any) -> str:
    """A short name of a finished job: its result's `key`/`name`/`label` if it has one."""
    if isinstance(result, dict):
        for k in ("key", "name", "label", "task"):
            if isinstance(result.get(k), str | int):
                return str(result[k])
    return f"job {i + 1}"


@contextmanager
def job_progress(label: str, total: int, then: OnResult | None = None,
                 describe: Describe | None = None) -> Iterator[OnResult]:
    """Yield an executor `on_result(i, result)` that shows the jobs done of `total`.

    `then` is called after each update (e.g. to log the job's numbers to the run); `describe`
    names a finished job in the display (default: its result's `key`/`name`/`label`/`task`).
    """
    tracker = _Tracker(label, total, "jobs", mode())
    name = describe or _describe

    def on_result(i: int, result: Any) -> None:
        tracker.update(tracker.done + 1, name(i, result))
        if then is not None:
            then(i, result)

    on_result.flush = tracker.flush  # type: ignore[attr-defined]  # map_jobs: after kept jobs
    try:
        yield on_result
    finally:
        tracker.close()


class _StepWatcher:
    """A run (anything with `log`) whose `log(step, ...)` also moves a steps display."""

    def __init__(self, run: Any, tracker: _Tracker):
        self._run, self._tracker = run, tracker

    @property
    def resume(self) -> bool:
        return bool(getattr(self._run, "resume", False))

    def log(self, step: int | None = None, **metrics: Any) -> None:
        if step is not None and step > self._tracker.done:
            loss = metrics.get("train_loss", metrics.get("loss"))
            note = f"step {step}" + (f", loss {loss:.3f}" if isinstance(loss, float) else "")
            self._tracker.update(step, note)
        if self._run is not None and hasattr(self._run, "log"):
            self._run.log(step, **metrics)

    def __getattr__(self, name: str) -> Any:
        if self._run is None:
            raise AttributeError(name)
        return getattr(self._run, name)


@contextmanager
def step_progress(run: Any, label: str, total: int) -> Iterator[Any]:
    """Yield `run` wrapped so that each `log(step, ...)` it receives shows steps done of `total`.

    In "lines" mode a line is printed for every logged step (the Trainer logs every `log_every`
    steps), so a piped log shows the pace without one line per step.
    """
    tracker = _Tracker(label, total, "steps", mode())
    try:
        yield _StepWatcher(run, tracker)
    finally:
        tracker.close()


@contextmanager
def work_progress(label: str, total: float, unit: str = "%") -> Iterator[_Tracker]:
    """Yield a display of `total` units of work that the caller moves with `.update(done, last)`.

    For work measured in something other than finished jobs or one loop's steps, e.g. the steps
    of several jobs running at once, weighted by their cost. In "lines" mode every `update`
    prints a line, so the caller decides how often to call it; `.restart()` starts the clock
    when the work itself begins (after worker processes have started, say).
    """
    tracker = _Tracker(label, total, unit, mode())
    try:
        yield tracker
    finally:
        tracker.close()


@contextmanager
def polled_progress(label: str, total: float, read: Callable[[set[int]], float],
                    describe: Describe | None = None, *, unit: str = "steps",
                    first_line_s: float = 3.0, lines_every_s: float = 30.0,
                    poll_s: float = 1.0) -> Iterator[OnResult]:
    """Yield an executor `on_result(i, result)` for jobs whose progress the parent polls.

    `read(finished)` returns the units done so far, given the indices of the jobs finished (it
    counts those whole). A thread calls it every `poll_s`; the clock starts at the first work
    seen, so the ETA's pace leaves out the workers' start-up. A bar shows every reading; piped,
    a line comes `first_line_s` after the first work is seen, then every `lines_every_s`, and one
    per finished job (named by `describe`, default as `job_progress`).
    """
    how = mode()
    name = describe or _describe
    finished: set[int] = set()
    lock = threading.Lock()
    stop = threading.Event()
    # the poller paces its own lines; each finished job gets one
    tracker = _Tracker(label, total, unit, how, gap=0.0)

    def poll() -> None:
        started = False
        next_line = math.inf
        while not stop.wait(min(poll_s, first_line_s)):
            with lock:
                done = read(set(finished))
                now = time.monotonic()
                if not started:
                    if not done:
                        continue
                    started, next_line = True, now + first_line_s
                    tracker.restart()
                if how == "lines" and now < next_line:
                    continue
                next_line = now + lines_every_s
                tracker.update(done, f"{len(finished)} of the jobs done")

    thread = threading.Thread(target=poll, daemon=True)
    if how != "off":
        thread.start()

    def on_result(i: int, result: Any) -> None:
        with lock:
            finished.add(i)
            tracker.update(read(set(finished)), name(i, result))

    try:
        yield on_result
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
        tracker.close()


@contextmanager
def study_progress(label: str, expected_s: float | None = None, *, first_line_s: float = 2.0,
                   lines_every_s: float = 60.0) -> Iterator[None]:
    """Show a whole study's progress from its first second: a row with the elapsed time and the
    ETA by `expected_s` (the stages' bars join its display), or piped, a line after
    `first_line_s` (a study that fails at once leaves its one error line alone) and then every
    `lines_every_s` until the study ends. Its stages' bars show the ETA at their measured pace."""
    global _STUDY
    how = mode()
    outer = _STUDY
    if how == "off" or outer is not None:  # off, or already inside a study: nothing more
        yield
        return
    study = _Study(label, expected_s, _new_bar() if how == "bar" else None)
    stop = threading.Event()
    thread: threading.Thread | None = None
    if study.bar is not None:
        # the bar fills by the expected time (never quite, until the end); without one it pulses
        total = expected_s if expected_s and math.isfinite(expected_s) else None
        task = study.bar.add_task(f"{label}, whole study", total=total, last="", count="",
                                  eta=study.eta_text)

        def tick() -> None:
            while not stop.wait(1.0):
                if total is not None:
                    study.bar.update(task, completed=min(study.elapsed(), 0.99 * total))

        thread = threading.Thread(target=tick, daemon=True)
    else:
        def say() -> None:
            print(f"{label}: elapsed {clock(study.elapsed())}, {study.eta_text()}",
                  file=sys.stderr, flush=True)

        def beat() -> None:
            wait = first_line_s
            while not stop.wait(wait):
                say()
                wait = lines_every_s

        thread = threading.Thread(target=beat, daemon=True)
    _STUDY = study
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        _STUDY = None
        if study.bar is not None:
            study.bar.update(task, total=total or 1.0, completed=total or 1.0,
                             eta=lambda: f"done in {clock(study.elapsed())}")
            study.bar.stop()
