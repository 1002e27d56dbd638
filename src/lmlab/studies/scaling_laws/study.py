"""The `scaling-laws` study: its run (the configuration and presets are in `config`).

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
from typing import Any

from lmlab.errors import LmlabError
from lmlab.runs import Run
from lmlab.seeding import derive
from lmlab.studies.scaling_laws.claims import checks, claims
from lmlab.studies.scaling_laws.config import PRESETS, Config, ScalingLawsConfig
from lmlab.study import Check, Claim, Study

__all__ = ["Config", "ScalingLawsConfig", "ScalingLawsStudy"]


def _bench(**kwargs: Any) -> dict:
    """The 1024-start Huber grid on one family: batched L-BFGS against a loop of scipy fits."""
    from lmlab.studies.scaling_laws.bench import bench_huber_grid

    return bench_huber_grid(**kwargs)


class ScalingLawsStudy(Study):
    """A Hitchhiker's Guide to Scaling Law Estimation (Choshen, Zhang, Andreas 2024)."""

    id = "scaling-laws"
    Config = ScalingLawsConfig
    presets = PRESETS
    expected_s = {"tiny": 50}  # wall s measured in `make demo` on a fresh clone, quiet 2-core machine (83 CPU-s)

    def __init__(self) -> None:
        from lmlab.studies.scaling_laws.cli import app

        self.cli = app
        self.benchmarks = {"scaling-laws": _bench}

    # -- run ------------------------------------------------------------------------------------
    def run(self, config: ScalingLawsConfig, run: Run) -> dict[str, Any]:
        settings = config.protocol()
        metrics: dict[str, Any] = {}
        found = _shared_table(config.data)
        if isinstance(found, str):
            metrics["shared.status"] = found
        else:
            table, source = found
            metrics.update(source.to_metrics())  # data.colpret.source, .sha256, .path, .files
            metrics.update(self._shared(config, settings, table, run))
        if config.grow.enabled:
            metrics.update(self._grown(config, settings, run))
        return metrics

    def _shared(self, config: ScalingLawsConfig, settings: Any, table: Any, run: Any) -> dict[str, Any]:
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

    def _grown(self, config: ScalingLawsConfig, settings: Any, run: Any) -> dict[str, Any]:
        from lmlab.device import device_name
        from lmlab.studies.scaling_laws import figures
        from lmlab.studies.scaling_laws.data import read_table, write_table
        from lmlab.studies.scaling_laws.fit import fit
        from lmlab.studies.scaling_laws.forms import get_form
        from lmlab.studies.scaling_laws.grow import FAMILY, BigramCorpus, grow_family, member_specs
        from lmlab.studies.scaling_laws.protocol import evaluate
        from lmlab.studies.scaling_laws.summary import summarize

        g = config.grow
        # every seed derived from the run's, so `--seed 1` never reruns a member of `--seed 0`
        corpus = BigramCorpus(vocab=g.vocab, rank=g.rank, seed=derive(config.seed, "corpus"))
        seeds = [derive(config.seed, "grow", s) for s in range(g.seeds)]
        specs = member_specs(g, seeds, corpus, device_name(config.device))
        path = run.path / "grown.csv"
        t0 = time.perf_counter()
        if run.resume and path.is_file():
            grown = read_table(path)  # a resumed run keeps the family it already trained
        else:
            grown = grow_family(specs, config.executor, run=run)  # members kept for --resume
            write_table(grown, path)
        train_s = time.perf_counter() - t0
        run.log(step=2, stage="grow", runs=len(specs), rows=len(grown), seconds=round(train_s, 2))
        cut = g.min_tokens * float(grown.tokens.max())
        gset = dataclasses.replace(settings, min_tokens=cut, variants=tuple(g.variants),
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
    def claims(self, config: ScalingLawsConfig, metrics: dict[str, Any]) -> list[Claim]:
        return claims(config, metrics)

    def checks(self, config: ScalingLawsConfig, metrics: dict[str, Any]) -> list[Check]:
        return checks(config, metrics)


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


STUDY = ScalingLawsStudy()
