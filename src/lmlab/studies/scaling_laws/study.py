"""The `scaling-laws` study: its configuration, presets, run and claims.

A run evaluates the paper's protocol on two sources of checkpoint losses:

- `shared`: the ColPret compact table (the paper's public data, packaged with lmlab and found by
  `lmlab.data.resolve`; the run records its source and checksum as `data.colpret.*`). Every
  family with at least 3 models gets the full grid of cells, OLMo (2 models) the one-model fit.
  Skipped, with its claims marked untestable, when the table is not available.
- `grown`: a family of small lmlab GPTs trained here on a synthetic corpus (`grow.py`): every
  width x seed through the executor, checkpoint losses in the same schema (`grown.csv` in the
  run folder), then the same protocol, with the early-token cut scaled to the runs' length.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Literal

from lmlab.errors import LmlabError
from lmlab.study import Claim, Study, StudyConfig

__all__ = ["Config", "ScalingLawsStudy"]

ALL_VARIANTS = ("models", "window", "no-cut", "final-only", "last", "one-model", "scale-down")


@dataclass
class Config(StudyConfig):
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
    executor: str = "serial"

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


PRESETS: dict[str, Config] = {
    "tiny": Config(
        variants=("models", "window", "no-cut", "final-only", "one-model"),
        one_model_families=("olmo", "OPT", "t5-pile"),
        executor="process",
    ),
    # The paper's whole protocol on the shared table (every variant, every family), and a larger
    # grown family (wider, deeper, longer) for a GPU or a cluster (`--set executor=ray`).
    "paper": Config(
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


def _bench(**kwargs: Any) -> dict:
    """The 1024-start Huber grid on one family: batched L-BFGS against a loop of scipy fits."""
    from lmlab.studies.scaling_laws.bench import bench_huber_grid

    return bench_huber_grid(**kwargs)


class ScalingLawsStudy(Study):
    """A Hitchhiker's Guide to Scaling Law Estimation (Choshen, Zhang, Andreas 2024)."""

    id = "scaling-laws"
    Config = Config
    presets = PRESETS

    def __init__(self) -> None:
        from lmlab.studies.scaling_laws.cli import app

        self.cli = app
        self.benchmarks = {"scaling-laws": _bench}

    # -- run ------------------------------------------------------------------------------------
    def run(self, config: Config, run: Any) -> dict[str, Any]:
        from lmlab.studies.scaling_laws.protocol import ProtocolSettings

        settings = ProtocolSettings(
            min_tokens=config.min_tokens, target_fraction=config.target_fraction,
            fractions=tuple(config.fractions), window=config.window,
            max_target_loss=config.max_target_loss, form=config.form, fitter=config.fitter,
            variants=tuple(config.variants),
            one_model_families=tuple(config.one_model_families) or None,
        )
        metrics: dict[str, Any] = {}
        found = _shared_table(config.data)
        if isinstance(found, str):
            metrics["shared.status"] = found
        else:
            table, source = found
            metrics.update(source.to_metrics())  # data.colpret.source, .sha256, .path, .files
            metrics.update(self._shared(config, settings, table, run))
        if config.grow:
            metrics.update(self._grown(config, settings, run))
        return metrics

    def _shared(self, config: Config, settings: Any, table: Any, run: Any) -> dict[str, Any]:
        from lmlab.studies.scaling_laws import figures
        from lmlab.studies.scaling_laws.protocol import evaluate
        from lmlab.studies.scaling_laws.summary import family_params, summarize

        families = list(config.families) or None
        if families:
            unknown = [f for f in families if f not in table.families()]
            if unknown:
                raise LmlabError(f"family {unknown[0]!r} is not in the table; families: "
                                 f"{', '.join(table.families())}")
        t0 = time.perf_counter()
        cells = evaluate(table, settings, families, config.executor)
        elapsed = time.perf_counter() - t0
        names = set(table.model.tolist())
        pair = ("OLMo-1B", "OLMo-7B") if {"OLMo-1B", "OLMo-7B"} <= names else None
        focus = "OPT" if "OPT" in table.families() else None
        m = summarize(cells, "shared", one_model_pair=pair, focus_family=focus)
        m["shared.status"] = "ok"
        m["timing.shared_protocol_s"] = round(elapsed, 2)
        run.log(step=1, stage="shared", cells=len(cells), seconds=round(elapsed, 2),
                are_median_pct=m["shared.are.median_pct"])
        sizes = {i.name: i.num_params for i in table.models()}
        for fam in sorted({c.family for c in cells if c.variant == "models"}):
            if len(table.only_family(fam).models()) >= 4:
                fig = figures.figure1(cells, fam, sizes)
                if fig is not None:
                    run.save_figure(fig, f"fig1_{_slug(fam)}")
        for variant, title in (("models", "median ARE over families"),
                               ("no-cut", "no early-token cut (Fig. 5b)"),
                               ("last", "fit on the end of training only (Fig. 4)"),
                               ("one-model", "one model, A and α borrowed (Fig. 6)"),
                               ("scale-down", "scale down (Fig. 8)")):
            fig = figures.variant_heatmaps(cells, variant, f"shared: {title}")
            if fig is not None:
                run.save_figure(fig, f"shared_{variant}")
        fig = figures.params_scatter(family_params(cells))
        if fig is not None:
            run.save_figure(fig, "shared_params")
        return m

    def _grown(self, config: Config, settings: Any, run: Any) -> dict[str, Any]:
        from lmlab.device import resolve_device
        from lmlab.studies.scaling_laws import figures
        from lmlab.studies.scaling_laws.data import read_table, write_table
        from lmlab.studies.scaling_laws.fit import fit
        from lmlab.studies.scaling_laws.forms import get_form
        from lmlab.studies.scaling_laws.grow import FAMILY, BigramCorpus, grow_family, member_specs
        from lmlab.studies.scaling_laws.protocol import evaluate
        from lmlab.studies.scaling_laws.summary import summarize

        corpus = BigramCorpus(vocab=config.grow_vocab, rank=config.grow_rank, seed=config.seed)
        specs = member_specs(
            config.grow_widths, [config.seed * 1000 + s for s in config.grow_seeds],
            n_layer=config.grow_layers, steps=config.grow_steps, batch_size=config.grow_batch,
            seq_len=config.grow_seq_len, lr=config.grow_lr, eval_every=config.grow_eval_every,
            corpus=corpus, device=str(resolve_device(config.device)),
        )
        path = run.path / "grown.csv"
        t0 = time.perf_counter()
        if run.resume and path.is_file():
            grown = read_table(path)  # a resumed run keeps the family it already trained
        else:
            grown = grow_family(specs, config.executor)
            write_table(grown, path)
        train_s = time.perf_counter() - t0
        run.log(step=2, stage="grow", runs=len(specs), rows=len(grown), seconds=round(train_s, 2))
        cut = config.grow_min_tokens * float(grown.tokens.max())
        gset = dataclasses.replace(settings, min_tokens=cut, variants=tuple(config.grow_variants),
                                   one_model_families=None)
        t0 = time.perf_counter()
        cells = evaluate(grown, gset, None, config.executor)
        proto_s = time.perf_counter() - t0
        m = summarize(cells, "grown")
        m["grown.runs"] = len(specs)
        m["grown.rows"] = len(grown)
        m["grown.min_tokens"] = cut
        m["grown.entropy_rate"] = round(corpus.entropy_rate(), 5)
        m["timing.grow_train_s"] = round(train_s, 2)
        m["timing.grown_protocol_s"] = round(proto_s, 2)
        run.log(step=3, stage="grown", cells=len(cells), seconds=round(proto_s, 2),
                are_median_pct=m["grown.are.median_pct"])
        # The law of the whole family (past the cut), by both fitters: E should sit near the
        # corpus's entropy rate, which no model can beat.
        past = grown.where(grown.tokens > cut)
        form = get_form("chinchilla")
        for fitter in ("least-squares", "huber-grid"):
            r = fit(form, past.num_params, past.tokens, past.loss, fitter)
            key = fitter.replace("-", "_")
            for name, value in r.params().items():
                if name in ("E", "A", "B", "alpha", "beta"):
                    m[f"grown.law.{key}.{name}"] = round(float(value), 6)
            if fitter == "least-squares" and r.success:
                run.save_figure(figures.fit_curves(
                    grown, r.predict, f"{FAMILY}: checkpoints and the fitted law (past the cut)"),
                    "grown_fit")
        sizes = {i.name: i.num_params for i in grown.models()}
        fig = figures.figure1(cells, FAMILY, sizes)
        if fig is not None:
            run.save_figure(fig, "fig1_grown")
        fig = figures.variant_heatmaps(cells, "no-cut", "grown: no early-token cut")
        if fig is not None:
            run.save_figure(fig, "grown_no-cut")
        return m

    # -- claims -------------------------------------------------------------------------------
    def claims(self, config: Config, metrics: dict[str, Any]) -> list[Claim]:
        from lmlab.studies.scaling_laws.claims import claims

        return claims(config, metrics)


def _shared_table(data: str) -> Any:
    """The shared table and its `DataSource`, or a one-line reason (str) why this run goes
    without it."""
    from lmlab.studies.scaling_laws.data import colpret_source, read_table, table_file

    if data == "none":
        return "skipped (data=none)"
    if data == "auto":
        try:
            source = colpret_source(None)
        except LmlabError as e:
            return f"not found: {e}"
    else:
        source = colpret_source(data)  # an explicit path must exist: a clear error if not
    return read_table(table_file(source)), source


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in name)
