"""The linear-attention study's configuration and its presets.

`tiny` (the default values) runs the three experiments at toy sizes in a few CPU minutes; `paper`
is the paper's grid (Sec. 4, App. G.4): hours on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lmlab.executor import ExecutorName
from lmlab.study import StudyConfig

__all__ = ["PAPER", "PRESETS", "TINY", "LinearAttentionConfig"]


@dataclass
class LinearAttentionConfig(StudyConfig):
    """Every knob of the three experiments; `tiny` and `paper` presets below."""

    executor: ExecutorName = "serial"  # where the jobs of each sweep run
    threads: int = 1  # torch threads per job (tiny models run fastest on one; 0: leave as is)
    seeds: int = 3
    # (a) random teacher, Sec. 4.1 (tokens N(0, I/T), teacher entries N(0, 1/d))
    dims: tuple[int, ...] = (2, 4)
    seq_len: int = 20  # T; every prefix is an example
    n_train: int = 512  # N sequences
    n_val: int = 512
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
    rank_dims: tuple[int, ...] = (2, 3, 4)
    # (b) associative memory, Sec. 4.2 (width 2 d, d + 1 tokens)
    memory_d: int = 4
    memory_n: int = 4096
    memory_fractions: tuple[float, ...] = (0.0, 0.5, 0.9, 0.95, 0.98, 0.99, 1.0)
    memory_seeds: int = 2
    memory_heads: int = 4
    memory_steps: int = 1000
    memory_batch_size: int = 256
    memory_lr: float = 3e-2
    memory_gd_steps: int = 1000
    # (c) DFA execution, App. G.4
    dfa_vary: Literal["states", "symbols", "word_len"] = "states"
    dfa_values: tuple[int, ...] = (2,)
    dfa_fixed: int = 2  # the two quantities not varied (4 in the paper)
    dfa_n_train: tuple[int, ...] = (2048,)
    dfa_epochs: int = 10
    dfa_batch_size: int = 64
    dfa_lr: float = 1e-3
    dfa_layers: int = 2
    dfa_heads: int = 4
    dfa_width: int = 64
    dfa_seeds: int = 1

    def __post_init__(self) -> None:
        """Reject settings that cannot run, with one line naming the field (before any work)."""
        from lmlab.errors import LmlabError
        from lmlab.executor import BACKENDS

        def bad(field: str, why: str) -> LmlabError:
            return LmlabError(f"linear-attention: {field} {why}, got {getattr(self, field)!r}")

        if self.executor not in BACKENDS:
            raise bad("executor", f"must be one of {', '.join(BACKENDS)}")
        positive = ("seeds", "seq_len", "n_train", "steps", "batch_size", "exact_d",
                    "exact_seq_len", "exact_n_train", "memory_seeds", "memory_d", "memory_n",
                    "memory_heads", "memory_steps", "memory_batch_size", "dfa_fixed", "dfa_epochs",
                    "dfa_batch_size", "dfa_layers", "dfa_heads", "dfa_width", "dfa_seeds")
        for name in positive:
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        for name in ("threads", "d_out", "softmax_layers", "memory_gd_steps"):
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")
        if self.n_val < 2:
            raise bad("n_val", "must be >= 2")
        for name in ("lr", "memory_lr", "dfa_lr"):
            if not getattr(self, name) > 0:
                raise bad(name, "must be > 0")
        for name in ("dims", "memory_fractions"):
            if not getattr(self, name):
                raise bad(name, "needs at least one value")
        for name in ("dims", "heads", "layers", "rank_dims", "dfa_values", "dfa_n_train"):
            if any(v < 1 for v in getattr(self, name)):
                raise bad(name, "must hold values >= 1")
        if any(not 0.0 <= f <= 1.0 for f in self.memory_fractions):
            raise bad("memory_fractions", "must hold fractions in [0, 1]")
        if self.softmax_width % 4:
            raise bad("softmax_width", "must be divisible by the 4 attention heads")
        if self.dfa_width % self.dfa_heads:
            raise bad("dfa_width", f"must be divisible by dfa_heads = {self.dfa_heads}")


TINY = LinearAttentionConfig()
PAPER = LinearAttentionConfig(
    threads=0,
    dims=(2, 4, 8, 16),
    seq_len=100,
    n_train=2048,
    heads=(1, 2, 4, 8, 16, 64, 256),
    layers=(2, 4),
    softmax_layers=2,
    softmax_width=128,
    steps=16_000,  # 500 epochs of 2048 sequences in batches of 64 (the script)
    memory_n=2**14,
    memory_seeds=3,
    memory_fractions=(0.0, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0),
    memory_steps=20_000,
    memory_gd_steps=10_000,
    dfa_values=(2, 3, 4, 5, 6),
    dfa_fixed=4,
    dfa_n_train=(16, 64, 256, 1024, 4096, 16384, 65536),
    dfa_epochs=100,
    dfa_lr=2.5e-4,
    dfa_layers=4,
    dfa_heads=16,
    dfa_width=2048,
    dfa_batch_size=64,
)

PRESETS: dict[str, LinearAttentionConfig] = {"tiny": TINY, "paper": PAPER}
