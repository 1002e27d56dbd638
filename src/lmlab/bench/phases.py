"""Where a study's time goes: a sampling profiler that splits wall and CPU seconds by phase.

A background thread looks at the profiled thread's Python stack every `interval` seconds and
charges the wall time and the thread's CPU time (its own CPU clock) elapsed since the last look
to one phase, decided by the innermost frame on the stack that a rule recognizes:

- `generation`: language-model sampling (lmlab.llm backends' generate/sample, Hugging Face
  `generate`, llama.cpp);
- `evaluation`: functions named for measuring a model (evaluate, measure, score, accuracy,
  eval..., predict...) and anything under `torch.no_grad` helpers named so;
- `training`: backward passes, optimizer steps, and functions named fit / train... (a forward
  pass inside a training loop counts as training, one inside an evaluation as evaluation);
- `analysis`: everything else under the study's own code (statistics, claims, figures, data);
- `other`: imports, loading (functions named load... / from_pretrained: models, data, records),
  the run's bookkeeping.

The innermost-match rule makes nesting come out right: an evaluation called from a training loop
is evaluation, a generation called from an evaluation is generation. Only the profiled thread is
sampled: studies must run with the serial executor (the benchmark forces it where it can), and
the CPU time of torch's own worker threads is in the process total, not in a phase; the
remainder is reported as `unattributed_cpu_s`.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = ["PHASES", "PhaseProfile", "classify", "profile_phases"]

PHASES = ("training", "evaluation", "generation", "analysis", "other")

_GEN_FILE = re.compile(r"lmlab[/\\]llm[/\\]|transformers[/\\]generation[/\\]|llama_cpp[/\\]")
_GEN_NAME = re.compile(r"generate|sample|complete|decode")
_EVAL_NAME = re.compile(r"^(_?)(evaluate|evaluation|measure|score|accuracy|eval|predict)|"
                        r"_(evaluate|eval|measure|score|accuracy)$")
_TRAIN_NAME = re.compile(r"^(_?)(fit|train|backward|training_step|train_step)|_(fit|train)$|"
                         r"^(fit|train)_")
_LOAD_NAME = re.compile(r"^_?(load|from_pretrained)")
_TRAIN_FILE = re.compile(r"torch[/\\](autograd|optim)[/\\]")
_STUDY_FILE = re.compile(r"lmlab[/\\](studies|stats|nn|models)[/\\]")


def classify(filename: str, name: str) -> str | None:
    """The phase one frame (its file and function name) stands for, or None when neutral."""
    if _GEN_FILE.search(filename) and _GEN_NAME.search(name):
        return "generation"
    if _TRAIN_FILE.search(filename) and name in ("backward", "step", "_use_grad", "wrapper"):
        return "training"
    if _LOAD_NAME.search(name):
        return "other"
    if _EVAL_NAME.search(name):
        return "evaluation"
    if _TRAIN_NAME.search(name):
        return "training"
    return None


_LMLAB_FILE = re.compile(r"[/\\]lmlab[/\\](.+)\.py$")


def _where(frame: FrameType | None) -> str:
    """The innermost frame in lmlab's own code, as `module/path:function` (else `-`)."""
    while frame is not None:
        m = _LMLAB_FILE.search(frame.f_code.co_filename)
        if m:
            return f"{m.group(1).replace(chr(92), '/')}:{frame.f_code.co_name}"
        frame = frame.f_back
    return "-"


def _phase(frame: FrameType | None, roots: frozenset[Any] = frozenset()) -> str:
    """The phase of a whole stack: its innermost recognized frame; else analysis when inside
    the study's code (a file under lmlab/studies, or one of the `roots` code objects, e.g. the
    study's run/claims/checks), else other."""
    in_study = False
    while frame is not None:
        code = frame.f_code
        kind = classify(code.co_filename, code.co_name)
        if kind is not None:
            return kind
        in_study = in_study or code in roots or bool(_STUDY_FILE.search(code.co_filename))
        frame = frame.f_back
    return "analysis" if in_study else "other"


@dataclass
class PhaseProfile:
    """Wall and CPU seconds per phase of one profiled block."""

    wall_s: float = 0.0
    cpu_s: float = 0.0  # the whole process (all threads, children waited for excluded)
    phases: dict[str, dict[str, float]] = field(
        default_factory=lambda: {p: {"wall_s": 0.0, "cpu_s": 0.0} for p in PHASES})
    samples: int = 0
    # phase -> innermost lmlab function -> CPU seconds (where inside each phase the time goes)
    where: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self, top: int = 5) -> dict[str, Any]:
        attributed = sum(p["cpu_s"] for p in self.phases.values())
        return {"wall_s": self.wall_s, "cpu_s": self.cpu_s, "samples": self.samples,
                "phases": {k: dict(v) for k, v in self.phases.items()},
                "unattributed_cpu_s": max(0.0, self.cpu_s - attributed),
                "top": {k: dict(sorted(v.items(), key=lambda kv: -kv[1])[:top])
                        for k, v in self.where.items() if v}}


class _Sampler(threading.Thread):
    def __init__(self, target: threading.Thread, profile: PhaseProfile, interval: float,
                 roots: frozenset[Any]):
        super().__init__(daemon=True, name="lmlab-phase-sampler")
        self.roots = roots
        self.target_id = target.ident
        self.clock = time.pthread_getcpuclockid(target.ident) if hasattr(
            time, "pthread_getcpuclockid") else None
        self.profile, self.interval = profile, interval
        self.stop = threading.Event()

    def _cpu(self) -> float:
        return time.clock_gettime(self.clock) if self.clock is not None else time.process_time()

    def run(self) -> None:
        wall, cpu = time.perf_counter(), self._cpu()
        while not self.stop.wait(self.interval):
            self.sample_once(wall, cpu)
            wall, cpu = time.perf_counter(), self._cpu()
        self.sample_once(wall, cpu)

    def sample_once(self, wall: float, cpu: float) -> None:
        frame = sys._current_frames().get(self.target_id)
        phase = _phase(frame, self.roots)
        slot = self.profile.phases[phase]
        slot["wall_s"] += time.perf_counter() - wall
        spent = self._cpu() - cpu
        slot["cpu_s"] += spent
        where = self.profile.where.setdefault(phase, {})
        key = _where(frame)
        where[key] = where.get(key, 0.0) + spent
        self.profile.samples += 1


@contextlib.contextmanager
def profile_phases(interval: float = 0.005, roots: Iterable[Any] = ()) -> Iterator[PhaseProfile]:
    """`with profile_phases() as prof: ...` then `prof.to_dict()`: the block's phases. `roots`:
    functions (or code objects) whose callees count as analysis unless recognized otherwise."""
    import resource

    profile = PhaseProfile()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    codes = frozenset(getattr(r, "__code__", r) for r in roots)
    sampler = _Sampler(threading.current_thread(), profile, interval, codes)
    sampler.start()
    try:
        yield profile
    finally:
        sampler.stop.set()
        sampler.join()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        profile.wall_s = time.perf_counter() - t0
        profile.cpu_s = (ru.ru_utime - ru0.ru_utime) + (ru.ru_stime - ru0.ru_stime)
