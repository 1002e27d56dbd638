"""The scaling-laws study's configuration and its presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lmlab.errors import LmlabError
from lmlab.executor import ExecutorName
from lmlab.study import StudyConfig

__all__ = ["ALL_VARIANTS", "PRESETS", "Config", "ScalingLawsConfig"]

ALL_VARIANTS = ("models", "window", "no-cut", "final-only", "last", "one-model", "scale-down")


@dataclass
class ScalingLawsConfig(StudyConfig):
    """Every knob of a run; `--set key=value` overrides any of them."""

    # The ColPret table: "auto" ($LMLAB_DATA_COLPRET, else the copy packaged with lmlab; skipped
    # when neither is there), "none" (skip), or a path: a CSV/Parquet table or a folder holding
    # compact.csv (lmlab.data.resolve).
    data: str = "auto"
    families: tuple[str, ...] = ()  # empty: every family with >= 2 models
    variants: tuple[str, ...] = ALL_VARIANTS
    one_model_families: tuple[str, ...] = ()  # the one-model variant's families; empty: all
    form: Literal["chinchilla", "multiplicative", "linked"] = "chinchilla"
    fitter: Literal["least-squares", "huber-grid"] = "least-squares"
    min_tokens: float = 1e10
    target_fraction: float = 0.7
    fractions: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    window: int = 4
    max_target_loss: float = 10.0
    # The grown family.
    grow: bool = True
    grow_widths: tuple[int, ...] = (8, 12, 16, 24, 32, 48, 64)
    grow_seeds: tuple[int, ...] = (0, 1, 2)
    grow_layers: int = 1
    grow_steps: int = 300
    grow_batch: int = 32
    grow_seq_len: int = 32
    grow_lr: float = 1e-2
    grow_eval_every: int = 10
    grow_vocab: int = 128
    grow_rank: int = 64  # rank of the corpus's bilinear term: how much there is to learn
    grow_variants: tuple[str, ...] = ("models", "window", "no-cut", "final-only")
    # The early-token cut of the grown family, as a fraction of its longest run: the analogue
    # of 1e10 tokens (the end of warmup and of the fast initial drop of the loss).
    grow_min_tokens: float = 0.2
    executor: ExecutorName = "serial"

    def __post_init__(self) -> None:
        # Checked here, so a bad override fails before a run touches the disk.
        from lmlab.executor import BACKENDS
        from lmlab.studies.scaling_laws.protocol import VARIANTS

        for v in (*self.variants, *self.grow_variants):
            if v not in VARIANTS:
                raise LmlabError(f"unknown variant {v!r}; variants: {', '.join(VARIANTS)}")
        if self.executor not in BACKENDS:
            raise LmlabError(f"unknown executor {self.executor!r}; choose one of "
                             f"{', '.join(BACKENDS)}")
        if not all(0 < q <= 1 for q in self.fractions) or not self.fractions:
            raise LmlabError(f"fractions must lie in (0, 1], got {self.fractions}")
        if self.grow and len(self.grow_widths) < 3:
            raise LmlabError("grow_widths: the protocol needs at least 3 sizes")
        if self.grow and (self.grow_steps < self.grow_eval_every or self.grow_eval_every < 1):
            raise LmlabError("grow_steps must be at least grow_eval_every (>= 1)")
        if not 0 <= self.grow_min_tokens < 1:
            raise LmlabError(f"grow_min_tokens is a fraction in [0, 1), got {self.grow_min_tokens}")
        if self.data not in ("auto", "none"):
            from lmlab.studies.scaling_laws.data import colpret_path

            colpret_path(self.data)  # an explicit table must exist: one clear line if not


Config = ScalingLawsConfig  # the name the study used first

# `tiny`: the protocol on the shared table plus a small grown family (a few CPU minutes);
# `paper`: every variant, every family, and a larger grown family (a GPU or a cluster).
PRESETS: dict[str, ScalingLawsConfig] = {
    "tiny": ScalingLawsConfig(
        variants=("models", "window", "no-cut", "final-only", "one-model"),
        one_model_families=("olmo", "OPT", "t5-pile"),
        executor="process",
    ),
    # The paper's whole protocol on the shared table (every variant, every family), and a larger
    # grown family (wider, deeper, longer) for a GPU or a cluster (`--set executor=ray`).
    "paper": ScalingLawsConfig(
        variants=ALL_VARIANTS,
        grow_widths=(16, 24, 32, 48, 64, 96, 128, 192, 256),
        grow_layers=2,
        grow_steps=3000,
        grow_batch=64,
        grow_seq_len=64,
        grow_lr=3e-3,
        grow_eval_every=50,
        grow_vocab=512,
        grow_rank=256,
        grow_variants=("models", "window", "no-cut", "final-only", "last", "scale-down"),
        executor="process",
    ),
}
