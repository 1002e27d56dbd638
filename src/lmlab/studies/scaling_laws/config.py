"""The scaling-laws study's configuration and its presets."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from lmlab.errors import LmlabError
from lmlab.executor import ExecutorName
from lmlab.studies.scaling_laws.protocol import VARIANTS, ProtocolSettings
from lmlab.study import StudyConfig

__all__ = ["ALL_VARIANTS", "PRESETS", "Config", "Grow", "ScalingLawsConfig"]

ALL_VARIANTS = VARIANTS


_P = ProtocolSettings()  # the protocol's defaults are the paper's, declared once (protocol.py)


@dataclass(frozen=True)
class Grow:
    """The grown family: small lmlab GPTs of several widths and seeds trained on a synthetic
    corpus (`grow.py`); each (width, seed) run is a job carrying this sub-config."""

    enabled: bool = True
    widths: tuple[int, ...] = (8, 12, 16, 24, 32, 48, 64)
    seeds: int = 3  # runs per width (their seeds derived from the run's seed)
    layers: int = 1
    steps: int = 300
    batch: int = 32
    seq_len: int = 32
    lr: float = 1e-2
    warmup: int = 10
    eval_every: int = 10
    n_eval: int = 256  # held-out sequences of each evaluation
    vocab: int = 128
    rank: int = 64  # rank of the corpus's bilinear term: how much there is to learn
    variants: tuple[str, ...] = ("models", "window", "no-cut", "final-only", "seeds")
    # The early-token cut of the grown family, as a fraction of its longest run: the analogue
    # of 1e10 tokens (the end of warmup and of the fast initial drop of the loss).
    min_tokens: float = 0.2


@dataclass
class ScalingLawsConfig(StudyConfig):
    """Every knob of a run; `--set key=value` overrides any of them (`--set grow.steps=100`)."""

    # The ColPret table: "auto" ($LMLAB_DATA_COLPRET, else the copy packaged with lmlab; skipped
    # when neither is there), "none" (skip), or a path: a CSV/Parquet table or a folder holding
    # compact.csv (lmlab.data.resolve).
    data: str = "auto"
    families: tuple[str, ...] = ()  # empty: every family with >= 2 models
    variants: tuple[str, ...] = ALL_VARIANTS
    one_model_families: tuple[str, ...] = ()  # the one-model variant's families; empty: all
    form: Literal["chinchilla", "multiplicative", "linked"] = "chinchilla"
    fitter: Literal["least-squares", "huber-grid"] = "least-squares"
    min_tokens: float = _P.min_tokens
    target_fraction: float = _P.target_fraction
    fractions: tuple[float, ...] = _P.fractions
    window: int = _P.window
    max_target_loss: float = _P.max_target_loss
    grow: Grow = field(default_factory=Grow)
    executor: ExecutorName = "serial"

    def protocol(self) -> ProtocolSettings:
        """The protocol's settings for the shared table, from this configuration."""
        return replace(_P, min_tokens=self.min_tokens, target_fraction=self.target_fraction,
                       fractions=tuple(self.fractions), window=self.window,
                       max_target_loss=self.max_target_loss, form=self.form, fitter=self.fitter,
                       variants=tuple(self.variants),
                       one_model_families=tuple(self.one_model_families) or None)

    def __post_init__(self) -> None:
        # Checked here, so a bad override fails before a run touches the disk.
        from lmlab.executor import BACKENDS

        g = self.grow
        for v in (*self.variants, *g.variants):
            if v not in VARIANTS:
                raise LmlabError(f"unknown variant {v!r}; variants: {', '.join(VARIANTS)}")
        if self.executor not in BACKENDS:
            raise LmlabError(f"unknown executor {self.executor!r}; choose one of "
                             f"{', '.join(BACKENDS)}")
        if not all(0 < q <= 1 for q in self.fractions) or not self.fractions:
            raise LmlabError(f"fractions must lie in (0, 1], got {self.fractions}")
        if g.enabled and len(g.widths) < 3:
            raise LmlabError("grow.widths: the protocol needs at least 3 sizes")
        if g.enabled and g.seeds < 1:
            raise LmlabError(f"grow.seeds must be >= 1, got {g.seeds}")
        if g.enabled and (g.steps < g.eval_every or g.eval_every < 1):
            raise LmlabError("grow.steps must be at least grow.eval_every (>= 1)")
        if not 0 <= g.min_tokens < 1:
            raise LmlabError(f"grow.min_tokens is a fraction in [0, 1), got {g.min_tokens}")
        if self.data not in ("auto", "none"):
            from lmlab.studies.scaling_laws.data import colpret_path

            colpret_path(self.data)  # an explicit table must exist: one clear line if not


Config = ScalingLawsConfig  # the name the study used first

# `tiny`: the protocol on the shared table plus a small grown family: measured 97 CPU-s
# (14:15 wall on a 2-core machine at load ~20; a few minutes when quiet);
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
        grow=Grow(widths=(16, 24, 32, 48, 64, 96, 128, 192, 256), layers=2, steps=3000, batch=64,
                  seq_len=64, lr=3e-3, eval_every=50, vocab=512, rank=256,
                  variants=("models", "window", "no-cut", "final-only", "last", "scale-down",
                            "seeds")),
        executor="process",
    ),
}
