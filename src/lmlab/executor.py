"""Where independent jobs run: in this process, in a local process pool, or on Ray.

One interface, `Executor.map(fn, items)`, returning results in the order of `items`. `fn` must be
a module-level function (it is pickled for the process pool and for Ray). Jobs carry their own
seeds, so a seeded job gives identical results on every backend. `on_result(index, result)`, if
given, is called in this process as each job finishes (in order of completion), for progress and
for streaming results to disk while the rest still run.

    ex = get_executor("process", max_workers=2)
    results = ex.map(train_one, configs, on_result=lambda i, r: print(i, r))

Ray is an optional extra (`pip install 'lmlab[ray]'`); `RAY_ADDRESS` selects an existing cluster,
otherwise a local Ray runtime is started for the duration of the map.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import multiprocessing as mp
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, get_args

from lmlab.errors import LmlabError, require

T = TypeVar("T")
R = TypeVar("R")
OnResult = Callable[[int, Any], None]

# The type of every study config's `executor` field: `--set executor=...` is checked against it.
ExecutorName = Literal["serial", "process", "ray"]
BACKENDS: tuple[str, ...] = get_args(ExecutorName)
JOBS_DIR = "jobs"  # where map_jobs keeps finished jobs' results in a run folder


class Executor(Protocol):
    """Runs `fn` on each item and returns the results in order."""

    name: str

    def map(self, fn: Callable[[T], R], items: Iterable[T],
            on_result: OnResult | None = None) -> list[R]: ...


# Set, this thread count replaces every job's own (`lmlab compare-threads` sets it): the studies
# give their pool workers and jobs one thread each, which would make a 1-vs-2 comparison vacuous.
THREADS_ENV = "LMLAB_TORCH_THREADS"


def forced_threads() -> int:
    """The torch thread count that `LMLAB_TORCH_THREADS` forces on every job (0: none forced)."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) < 1:
        raise LmlabError(f"{THREADS_ENV} must be an integer >= 1, got {value!r}")
    return int(value)


def job_threads(n: int) -> None:
    """Give the current job `n` torch threads (0: leave as is), or `LMLAB_TORCH_THREADS` if set.

    Thread control lives here, with the executors that decide how many jobs share the cores:
    a job calls this first thing (a pool worker keeps the setting for its next job). Pool
    workers inherit the environment, so the forced count reaches them too.
    """
    n = forced_threads() or n
    if n > 0:
        import torch

        torch.set_num_threads(n)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch threads (0: leave as is; `LMLAB_TORCH_THREADS` wins), then
    restore the previous count."""
    import torch

    before = torch.get_num_threads()
    job_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SerialExecutor:
    """Runs the jobs one after another in this process (the default: simplest to debug)."""

    name = "serial"

    def map(self, fn: Callable[[T], R], items: Iterable[T],
            on_result: OnResult | None = None) -> list[R]:
        out = []
        for i, item in enumerate(items):
            out.append(fn(item))
            if on_result is not None:
                on_result(i, out[-1])
        return out


def _init_worker(threads: int) -> None:
    # Each worker gets its share of the cores; torch otherwise starts one thread per core in
    # every process and the pool runs slower than serial.
    job_threads(threads)
    die_with_parent()


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies. A run killed with SIGKILL cannot
    shut its pool down, and orphaned workers would otherwise keep their models in memory and
    wait forever for jobs."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
        parent = mp.parent_process()
        if parent is not None and parent.pid != os.getppid():  # it died before the call
            os._exit(1)


class ProcessExecutor:
    """A local pool of worker processes (spawned, so torch state is never shared by fork)."""

    name = "process"

    def __init__(self, max_workers: int | None = None):
        self.max_workers = max_workers or max(1, min(os.cpu_count() or 1, 8))

    def map(self, fn: Callable[[T], R], items: Iterable[T],
            on_result: OnResult | None = None) -> list[R]:
        items = list(items)
        if not items:
            return []
        workers = min(self.max_workers, len(items))
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(threads,),
        ) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            out: dict[int, R] = {}
            try:
                for done in as_completed(futures):
                    i = futures[done]
                    out[i] = done.result()  # a job's exception surfaces here
                    if on_result is not None:
                        on_result(i, out[i])
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # jobs not yet started never run
                raise
            return [out[i] for i in range(len(items))]


class RayExecutor:
    """Ray tasks: a local runtime by default, the cluster at RAY_ADDRESS when it is set."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus_per_job: float = 1.0,
                 num_gpus_per_job: float = 0.0):
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.num_cpus_per_job = num_cpus_per_job
        self.num_gpus_per_job = num_gpus_per_job

    def map(self, fn: Callable[[T], R], items: Iterable[T],
            on_result: OnResult | None = None) -> list[R]:
        ray = require("ray", extra="ray")
        items = list(items)
        if not items:
            return []
        started_here = not ray.is_initialized()
        if started_here:
            kwargs: dict[str, Any] = {"address": self.address} if self.address else {
                "include_dashboard": False,
                # Make the lmlab source importable in workers even when it is not installed.
                "runtime_env": {"env_vars": {"PYTHONPATH": _pythonpath()}},
            }
            ray.init(log_to_driver=False, configure_logging=False, **kwargs)
        try:
            remote = ray.remote(num_cpus=self.num_cpus_per_job, num_gpus=self.num_gpus_per_job)(fn)
            refs = [remote.remote(item) for item in items]
            if on_result is None:
                return ray.get(refs)
            index = {ref: i for i, ref in enumerate(refs)}
            out: dict[int, R] = {}
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                i = index[done[0]]
                out[i] = ray.get(done[0])
                on_result(i, out[i])
            return [out[i] for i in range(len(items))]
        finally:
            if started_here:
                ray.shutdown()


def _pythonpath() -> str:
    import lmlab

    src = os.path.dirname(os.path.dirname(os.path.abspath(lmlab.__file__)))
    return os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)


def get_executor(name: str = "serial", max_workers: int | None = None) -> Executor:
    """The executor called `name` (serial, process or ray)."""
    if name == "serial":
        return SerialExecutor()
    if name == "process":
        return ProcessExecutor(max_workers)
    if name == "ray":
        return RayExecutor()
    raise LmlabError(f"unknown executor {name!r}; choose one of {', '.join(BACKENDS)}")


def map_jobs(fn: Callable[[T], R], items: Sequence[T], executor: str | Executor = "serial",
             on_result: OnResult | None = None, *, progress: str | None = None,
             describe: Callable[[int, Any], str] | None = None, run: Any = None) -> list[R]:
    """get_executor(executor).map(fn, items, on_result), with two extras:

    - `progress` (a label): a bar with ETA on a terminal, a line per finished job when piped (at
      most one every `lmlab.progress.LINE_GAP_S` seconds, the first and the last always)
      (`lmlab.progress.job_progress`; `describe(i, result)` names a finished job);
    - `run` (a `lmlab.runs.Run`): each finished job's result is kept in the run folder
      (`jobs/<fn>/<hash of the job spec>.pkl`), and a resumed run (`run.resume`) takes the kept
      results instead of running those jobs again. Jobs carry their own seeds, so a resumed run
      gives the results an uninterrupted one would.
    """
    ex = get_executor(executor) if isinstance(executor, str) else executor
    items = list(items)
    cache = JobCache(run, fn) if run is not None else None
    done: dict[int, R] = cache.load(items) if cache is not None else {}
    todo = [i for i in range(len(items)) if i not in done]

    def finished(k: int, result: R, then: OnResult | None) -> None:
        i = todo[k]
        done[i] = result
        if cache is not None:
            cache.save(items[i], result)
        if then is not None:
            then(i, result)

    def run_all(then: OnResult | None) -> list[R]:
        for i in sorted(done):  # kept results count as finished, in order, before the rest
            if then is not None:
                then(i, done[i])
        if done and hasattr(then, "flush"):
            then.flush()  # a resumed run's log shows how many jobs were kept, in one line
        ex.map(fn, [items[i] for i in todo], lambda k, r: finished(k, r, then))
        return [done[i] for i in range(len(items))]

    if progress is None:
        return run_all(on_result)
    from lmlab.progress import job_progress

    with job_progress(progress, len(items), then=on_result, describe=describe) as tracked:
        return run_all(tracked)


class JobCache:
    """Finished jobs' results in a run folder, keyed by a hash of the job spec (pickled)."""

    def __init__(self, run: Any, fn: Callable[..., Any]):
        # a functools.partial is named for its function: arguments bound there (a log folder)
        # are the run's plumbing, not the job, and stay out of the key
        base = fn.func if isinstance(fn, functools.partial) else fn
        self.dir = Path(run.path) / JOBS_DIR / f"{base.__module__}.{base.__qualname__}"
        self.resume = bool(getattr(run, "resume", False))

    @staticmethod
    def key(item: Any) -> str:
        """A hash of the pickled job, or of `item.cache_key()` where the job defines one (what
        the result depends on, leaving out what a grown run may change: `Study.growable`)."""
        spec = item.cache_key() if hasattr(item, "cache_key") else item
        return hashlib.sha256(pickle.dumps(spec, protocol=4)).hexdigest()[:24]

    def load(self, items: Sequence[Any]) -> dict[int, Any]:
        """The kept results of `items` (by index), when the run is resumed; else none."""
        if not self.resume or not self.dir.is_dir():
            return {}
        out = {}
        for i, item in enumerate(items):
            path = self.dir / f"{self.key(item)}.pkl"
            if path.is_file():
                with open(path, "rb") as f:
                    out[i] = pickle.load(f)  # our own run folder: written by save below
        return out

    def save(self, item: Any, result: Any) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{self.key(item)}.pkl"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(result, f, protocol=4)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: a kill leaves the old file or none, never half of one
