"""The linear-attention study's configuration and its presets.

One sub-config per experiment (`--set teacher.dims=2,4`, `--set memory.seeds=3`, `--set dfa.width=32`):

- `teacher`: (a) the random MHLA teacher of Sec. 4.1 (Algorithm 1 against gradient training);
- `memory`: (b) the associative memories of Sec. 4.2 (certificate against recovery);
- `dfa`: (c) DFA execution of App. G.4.

`tiny` (the default values) runs the three experiments at toy sizes, 63 jobs: 181 CPU-s measured
on one thread (about 3-4 minutes wall on a quiet 2-core machine; 22:48 wall at load ~17). `paper` is the paper's grid (Sec. 4,
App. G.4): hours on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lmlab.errors import LmlabError
from lmlab.executor import ExecutorName
from lmlab.study import StudyConfig

__all__ = ["PAPER", "PRESETS", "TINY", "DfaConfig", "LinearAttentionConfig", "MemoryConfig",
           "TeacherConfig"]


@dataclass(frozen=True)
class TeacherConfig:
    """(a) Random teacher, Sec. 4.1: tokens N(0, I/T), teacher entries N(0, 1/d)."""

    seeds: int = 3  # teachers per d (each model is trained on every one: paired comparisons)
    dims: tuple[int, ...] = (2, 4)
    seq_len: int = 20  # T; every prefix is an example
    n_train: int = 512  # N sequences
    n_val: int = 512  # held-out sequences the error is reported on
    teacher_heads: int = 1  # the paper's script draws a one-head teacher ...
    d_out: int = 1  # ... with V in R^{1 x d} (0: d_out = d)
    heads: tuple[int, ...] = (1, 2, 4, 16)  # MHLA students (only those <= d^2 run)
    layers: tuple[int, ...] = (2, 4)  # stacks of single-head linear attention
    softmax_layers: int = 1  # lmlab GPT blocks in the softmax baseline (0: none)
    softmax_width: int = 32
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-2
    exact_d: int = 4  # Algorithm 1 at the paper's size, d_out = d (W is d^2 x d^2)
    exact_seq_len: int = 100
    exact_n_train: int = 2048
    rank_dims: tuple[int, ...] = (2, 3, 4)  # the cubic design's rank, checked for these d


@dataclass(frozen=True)
class MemoryConfig:
    """(b) Associative memory, Sec. 4.2: width 2d, d + 1 tokens, a fraction of orthonormal keys."""

    d: int = 4
    n: int = 4096  # memories per dataset
    fractions: tuple[float, ...] = (0.0, 0.5, 0.9, 0.95, 0.98, 0.99, 1.0)
    seeds: int = 2
    heads: int = 4  # of the MHLA trained by Adam
    steps: int = 1000
    batch_size: int = 256
    lr: float = 3e-2
    gd_steps: int = 1000  # full-batch gradient descent on Algorithm 1's objective


@dataclass(frozen=True)
class DfaConfig:
    """(c) DFA execution, App. G.4: one of states / symbols / word length varied over `values`."""

    vary: Literal["states", "symbols", "word_len"] = "states"
    values: tuple[int, ...] = (2,)
    fixed: int = 2  # the two quantities not varied (4 in the paper)
    n_train: tuple[int, ...] = (2048,)
    n_val: int = 512  # stops training and chooses the run
    n_test: int = 512  # reported; disjoint from train and validation
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    layers: int = 2
    heads: int = 4
    width: int = 64
    seeds: int = 1


@dataclass
class LinearAttentionConfig(StudyConfig):
    """The three experiments' settings (nested) and where their jobs run."""

    executor: ExecutorName = "serial"  # where the jobs run
    threads: int = 1  # torch threads per job (tiny models run fastest on one; 0: leave as is)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    dfa: DfaConfig = field(default_factory=DfaConfig)

    def __post_init__(self) -> None:
        """Reject settings that cannot run, with one line naming the field (before any work)."""
        from lmlab.executor import BACKENDS

        if self.executor not in BACKENDS:
            raise _bad(self, "executor", f"must be one of {', '.join(BACKENDS)}")
        if self.threads < 0:
            raise _bad(self, "threads", "must be >= 0")
        t, m, a = self.teacher, self.memory, self.dfa
        _positive(t, "teacher", "seeds", "seq_len", "n_train", "steps", "batch_size", "exact_d",
                  "exact_seq_len", "exact_n_train")
        _positive(m, "memory", "seeds", "d", "n", "heads", "steps", "batch_size")
        _positive(a, "dfa", "fixed", "epochs", "batch_size", "layers", "heads", "width", "seeds",
                  "n_val", "n_test")
        for sub, group, names in ((t, "teacher", ("d_out", "softmax_layers")),
                                  (m, "memory", ("gd_steps",))):
            for name in names:
                if getattr(sub, name) < 0:
                    raise _bad(sub, name, "must be >= 0", group)
        if t.n_val < 2:
            raise _bad(t, "n_val", "must be >= 2", "teacher")
        for sub, group in ((t, "teacher"), (m, "memory"), (a, "dfa")):
            if not sub.lr > 0:
                raise _bad(sub, "lr", "must be > 0", group)
        for sub, group, name in ((t, "teacher", "dims"), (m, "memory", "fractions")):
            if not getattr(sub, name):
                raise _bad(sub, name, "needs at least one value", group)
        for sub, group, names in ((t, "teacher", ("dims", "heads", "layers", "rank_dims")),
                                  (a, "dfa", ("values", "n_train"))):
            for name in names:
                if any(v < 1 for v in getattr(sub, name)):
                    raise _bad(sub, name, "must hold values >= 1", group)
        if any(not 0.0 <= f <= 1.0 for f in m.fractions):
            raise _bad(m, "fractions", "must hold fractions in [0, 1]", "memory")
        if t.softmax_width % 4:
            raise _bad(t, "softmax_width", "must be divisible by the 4 attention heads", "teacher")
        if a.width % a.heads:
            raise _bad(a, "width", f"must be divisible by dfa.heads = {a.heads}", "dfa")


def _bad(obj: object, name: str, why: str, group: str = "") -> LmlabError:
    key = f"{group}.{name}" if group else name
    return LmlabError(f"linear-attention: {key} {why}, got {getattr(obj, name)!r}")


def _positive(obj: object, group: str, *names: str) -> None:
    for name in names:
        if getattr(obj, name) < 1:
            raise _bad(obj, name, "must be >= 1", group)


TINY = LinearAttentionConfig()
PAPER = LinearAttentionConfig(
    threads=0,
    teacher=TeacherConfig(
        dims=(2, 4, 8, 16),
        seq_len=100,
        n_train=2048,
        heads=(1, 2, 4, 8, 16, 64, 256),
        layers=(2, 4),
        softmax_layers=2,
        softmax_width=128,
        steps=16_000,  # 500 epochs of 2048 sequences in batches of 64 (the script)
    ),
    memory=MemoryConfig(
        n=2**14,
        seeds=3,
        fractions=(0.0, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0),
        steps=20_000,
        gd_steps=10_000,
    ),
    dfa=DfaConfig(
        values=(2, 3, 4, 5, 6),
        fixed=4,
        n_train=(16, 64, 256, 1024, 4096, 16384, 65536),
        epochs=100,
        lr=2.5e-4,
        layers=4,
        heads=16,
        width=2048,
        batch_size=64,
    ),
)
"""The paper's grid: hours on a GPU."""

PRESETS: dict[str, LinearAttentionConfig] = {"tiny": TINY, "paper": PAPER}
