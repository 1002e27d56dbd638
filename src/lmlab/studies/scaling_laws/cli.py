"""`lmlab scaling-laws ...`: the study's tools for your own checkpoint losses.

    lmlab scaling-laws validate DATA
    lmlab scaling-laws fit DATA [--family F] [--form chinchilla] [--fitter huber-grid] [--json]
    lmlab scaling-laws predict DATA --family F --n 7e9 --d 2e12      (a law's extrapolation)
    lmlab scaling-laws predict DATA --family F --target MODEL        (the protocol's one cell)
    lmlab scaling-laws evaluate DATA [--family F ...] [--out DIR]    (the protocol and figures)
    lmlab scaling-laws import-colpret --out compact.csv [--clone DIR]

DATA is a CSV or Parquet file in the schema of `lmlab.studies.scaling_laws.data`, or the word
`colpret` for the ColPret table ($LMLAB_DATA_COLPRET, else the copy packaged with lmlab).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from lmlab.errors import LmlabError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Fit, evaluate and extrapolate scaling laws from checkpoint losses.")
console = Console()

DataArg = Annotated[str, typer.Argument(
    help="Checkpoint table (CSV or Parquet), or 'colpret' for the ColPret table packaged with lmlab.")]
FamilyOpt = Annotated[str | None, typer.Option(
    "--family", "-f", help="Family to use (needed when the table has several).")]
FormOpt = Annotated[str, typer.Option(
    help="Functional form: chinchilla, multiplicative, linked, one-model.")]
FitterOpt = Annotated[str, typer.Option(help="least-squares (the paper's) or huber-grid.")]
MinTokOpt = Annotated[float, typer.Option(
    "--min-tokens", help="Drop checkpoints at or before this many tokens (the paper: 1e10).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
BootOpt = Annotated[int, typer.Option(help="Bootstrap resamples for the intervals (0: none).")]


def _json(obj: Any) -> str:
    """JSON with NaN and infinities as null (json.dumps would write invalid NaN tokens)."""
    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        if isinstance(x, float | np.floating):
            return float(x) if np.isfinite(x) else None
        if isinstance(x, np.integer):
            return int(x)
        return x

    return json.dumps(clean(obj))


def _load(data: str) -> Any:
    from lmlab.studies.scaling_laws.data import colpret_path, read_table

    return read_table(colpret_path(None) if data == "colpret" else Path(data))


def _family(table: Any, family: str | None, source: str) -> Any:
    fams = table.families()
    if family is None:
        if len(fams) == 1:
            return table.only_family(fams[0])
        if not fams:
            return table
        raise LmlabError(f"{source}: {len(fams)} families; choose one with --family "
                         f"({', '.join(fams[:8])}{', ...' if len(fams) > 8 else ''})")
    if family not in fams:
        raise LmlabError(f"{source}: no family {family!r}; families: {', '.join(fams)}")
    return table.only_family(family)


def _fit_rows(table: Any, min_tokens: float, source: str) -> Any:
    rows = table.where(table.tokens > min_tokens)
    if len(rows) == 0:
        raise LmlabError(f"{source}: no checkpoint past --min-tokens {min_tokens:g} "
                         f"(the largest is {table.tokens.max():g}); lower --min-tokens")
    return rows


def _form(name: str) -> Any:
    from lmlab.studies.scaling_laws.forms import get_form

    if name == "pca":
        raise LmlabError("the pca form needs a basis fitted on other families; use it from Python "
                         "(PCAForm.from_params) or run `evaluate`")
    return get_form(name)


def _check_fitter(fitter: str) -> None:
    from lmlab.studies.scaling_laws.fit import FITTERS

    if fitter not in FITTERS:
        raise LmlabError(f"unknown fitter {fitter!r}; fitters: {', '.join(FITTERS)}")


@app.command()
def validate(data: DataArg, as_json: JsonOpt = False) -> None:
    """Check a checkpoint table against the schema; print what it holds."""
    table = _load(data)
    info = {
        "rows": len(table), "models": len(table.models()), "families": len(table.families()),
        "families_3plus": len(table.families(min_models=3)),
        "tokens": [float(table.tokens.min()), float(table.tokens.max())],
        "num_params": [float(table.num_params.min()), float(table.num_params.max())],
    }
    if as_json:
        print(_json({"ok": True, **info}))
        return
    console.print(f"[green]ok[/]: {info['rows']} rows, {info['models']} models, "
                  f"{info['families']} families ({info['families_3plus']} with >= 3 models); "
                  f"tokens {info['tokens'][0]:.3g}-{info['tokens'][1]:.3g}, "
                  f"N {info['num_params'][0]:.3g}-{info['num_params'][1]:.3g}")


def _fit_and_intervals(rows: Any, form: Any, fitter: str, bootstrap: int, seed: int
                       ) -> tuple[Any, dict[str, tuple[float, float]]]:
    from lmlab.studies.scaling_laws.fit import bootstrap as boot
    from lmlab.studies.scaling_laws.fit import fit

    result = fit(form, rows.num_params, rows.tokens, rows.loss, fitter)
    if not result.success:
        raise LmlabError(f"the {fitter} fit failed ({result.message or 'no finite optimum'})")
    ci = boot(form, rows.num_params, rows.tokens, rows.loss, fitter, n_boot=bootstrap,
              seed=seed, point=result) if bootstrap > 0 else {}
    return result, ci


@app.command()
def fit(
    data: DataArg,
    family: FamilyOpt = None,
    form: FormOpt = "chinchilla",
    fitter: FitterOpt = "least-squares",
    min_tokens: MinTokOpt = 1e10,
    bootstrap: BootOpt = 100,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Fit a law to every checkpoint of a family past --min-tokens; print E, A, B, α, β."""
    _check_fitter(fitter)
    table = _family(_load(data), family, data)
    rows = _fit_rows(table, min_tokens, data)
    f = _form(form)
    result, ci = _fit_and_intervals(rows, f, fitter, bootstrap, seed)
    params = result.params()
    if as_json:
        print(_json({
            "family": family, "form": f.name, "fitter": fitter, "points": len(rows),
            "models": len(rows.models()), "objective": result.objective, "params": params,
            "intervals": {k: list(v) for k, v in ci.items()}, "bootstrap": bootstrap,
        }))
        return
    t = Table(title=f"{f.name} law, {fitter}, {len(rows)} checkpoints of "
                    f"{len(rows.models())} models" + (f" ({family})" if family else ""))
    t.add_column("parameter")
    t.add_column("value", justify="right")
    t.add_column(f"95% interval ({bootstrap} bootstrap)" if bootstrap else "", justify="right")
    for k, v in params.items():
        lo_hi = ci.get(k)
        t.add_row(k, f"{v:.6g}", f"{lo_hi[0]:.4g} - {lo_hi[1]:.4g}" if lo_hi else "")
    console.print(t)


@app.command()
def predict(
    data: DataArg,
    family: FamilyOpt = None,
    n: Annotated[list[float] | None, typer.Option("--n", help="Model size(s) N to predict.")] = None,
    d: Annotated[list[float] | None, typer.Option("--d", help="Token count(s) D, one per --n.")] = None,
    target: Annotated[str | None, typer.Option(
        help="Predict this model from the family's smaller models (the protocol's cell).")] = None,
    fraction: Annotated[float, typer.Option(
        help="With --target: the fraction of the smaller models' training used.")] = 1.0,
    form: FormOpt = "chinchilla",
    fitter: FitterOpt = "least-squares",
    min_tokens: MinTokOpt = 1e10,
    bootstrap: BootOpt = 100,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Extrapolate: the loss at (N, D) points, or a target model's final checkpoints and ARE."""
    from lmlab.studies.scaling_laws.fit import bootstrap_thetas
    from lmlab.studies.scaling_laws.fit import fit as fit_law
    from lmlab.studies.scaling_laws.protocol import are, target_rows, train_rows

    _check_fitter(fitter)
    table = _family(_load(data), family, data)
    f = _form(form)
    if target is not None:
        if n or d:
            raise LmlabError("give either --target or --n/--d, not both")
        models = table.models()
        names = [m.name for m in models]
        if target not in names:
            raise LmlabError(f"{data}: no model {target!r} in the family; models: {', '.join(names)}")
        tgt = next(m for m in models if m.name == target)
        smaller = [m.name for m in models if m.num_params < tgt.num_params]
        if not smaller:
            raise LmlabError(f"{target} is the family's smallest model: nothing to fit on")
        tr = table.where(train_rows(table, smaller, fraction, min_tokens))
        te = table.where(target_rows(table, target))
        if len(tr) == 0:
            raise LmlabError(f"{data}: no checkpoint of the smaller models past --min-tokens "
                             f"{min_tokens:g} and below {fraction:g} of training")
        r = fit_law(f, tr.num_params, tr.tokens, tr.loss, fitter)
        pred = r.predict(te.num_params, te.tokens)
        out = {"target": target, "fitted_on": smaller, "fraction": fraction, "points": len(tr),
               "are": are(te.loss, pred), "success": r.success, "params": r.params(),
               "final_loss": float(te.loss[np.argmax(te.tokens)]),
               "final_predicted": float(pred[np.argmax(te.tokens)])}
        if as_json:
            print(_json(out))
            return
        console.print(f"{target}: ARE {100 * out['are']:.2f}% over {len(te)} checkpoints past "
                      f"70% of training; final loss {out['final_loss']:.4g}, predicted "
                      f"{out['final_predicted']:.4g} (fitted on {len(smaller)} smaller models, "
                      f"{len(tr)} checkpoints)")
        return
    if not n or not d or len(n) != len(d):
        raise LmlabError("give --n and --d once per point to predict (same number of each), "
                         "or --target MODEL")
    rows = _fit_rows(table, min_tokens, data)
    result, _ = _fit_and_intervals(rows, f, fitter, 0, seed)
    nn, dd = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    if not (np.all(nn > 0) and np.all(dd > 0)):
        raise LmlabError("--n and --d must be positive")
    pred = result.predict(nn, dd)
    lo = hi = None
    if bootstrap > 0:
        # Intervals of the prediction: predict with every bootstrap refit of the law.
        thetas = bootstrap_thetas(f, rows.num_params, rows.tokens, rows.loss, fitter,
                                  n_boot=bootstrap, seed=seed, point=result)
        if len(thetas):
            preds = np.array([f.predict(t, nn, dd) for t in thetas])
            lo, hi = np.nanquantile(preds, [0.025, 0.975], axis=0)
    points = [{"n": float(a), "d": float(b), "loss": float(p),
               **({"low": float(lo[i]), "high": float(hi[i])} if lo is not None else {})}
              for i, (a, b, p) in enumerate(zip(nn, dd, pred, strict=True))]
    if as_json:
        print(_json({"params": result.params(), "points": points}))
        return
    t = Table(title=f"{f.name} law fitted on {len(rows)} checkpoints")
    for col in ("N", "D", "predicted loss", "95% interval"):
        t.add_column(col, justify="right")
    for p in points:
        t.add_row(f"{p['n']:.4g}", f"{p['d']:.4g}", f"{p['loss']:.4f}",
                  f"{p['low']:.4f} - {p['high']:.4f}" if "low" in p else "")
    console.print(t)


@app.command()
def evaluate(
    data: DataArg,
    family: Annotated[list[str] | None, typer.Option(
        "--family", "-f", help="Families to evaluate (default: every one with >= 3 models).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for cells.csv, summary.json and figures.")] = Path(
        "scaling-laws-eval"),
    variants: Annotated[str, typer.Option(
        help="Comma-separated protocol variants.")] = "models,window,no-cut,final-only,one-model",
    fitter: FitterOpt = "least-squares",
    form: FormOpt = "chinchilla",
    min_tokens: MinTokOpt = 1e10,
    executor: Annotated[str, typer.Option(help="serial, process or ray.")] = "serial",
    as_json: JsonOpt = False,
) -> None:
    """Run the paper's protocol on a table; write the cells, the summary and the heatmaps."""
    import csv
    import io

    from lmlab.runs import Run, atomic_write_json, atomic_write_text
    from lmlab.studies.scaling_laws import figures
    from lmlab.studies.scaling_laws.protocol import ProtocolSettings
    from lmlab.studies.scaling_laws.protocol import evaluate as run_protocol
    from lmlab.studies.scaling_laws.summary import summarize

    _check_fitter(fitter)
    if out.exists() and not out.is_dir():
        raise LmlabError(f"--out {out} is a file, not a folder")
    table = _load(data)
    fams = list(family or [])
    for fam in fams:
        if fam not in table.families():
            raise LmlabError(f"{data}: no family {fam!r}; families: {', '.join(table.families())}")
    settings = ProtocolSettings(min_tokens=min_tokens, fitter=fitter, form=form,
                                variants=tuple(v.strip() for v in variants.split(",") if v.strip()))
    cells = run_protocol(table, settings, fams or None, executor)
    if not cells:
        raise LmlabError(f"{data}: no family with at least 2 models to evaluate")
    summary = summarize(cells, "data")
    run = Run(out)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = ["family", "variant", "fraction", "n_models", "target", "scale_up", "compute",
            "n_train", "n_test", "are", "success", "start", "baseline_best", "baseline_last"]
    w.writerow([*cols, "models", "theta"])
    for c in cells:
        w.writerow([getattr(c, k) for k in cols] + [";".join(c.models),
                                                    ";".join(f"{t:.8g}" for t in c.theta)])
    atomic_write_text(out / "cells.csv", buf.getvalue())
    atomic_write_json(out / "summary.json", summary)
    sizes = {i.name: i.num_params for i in table.models()}
    for fam in sorted({c.family for c in cells if c.variant == "models"}):
        fig = figures.figure1(cells, fam, sizes)
        if fig is not None:
            run.save_figure(fig, f"fig1_{fam.replace('/', '_')}")
    for v in settings.variants:
        fig = figures.variant_heatmaps(cells, v, f"{v} (median over families)")
        if fig is not None:
            run.save_figure(fig, f"heatmap_{v}")
    if as_json:
        print(_json(summary))
        return
    t = Table(title=f"protocol on {data}: {len(cells)} fits")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in summary.items():
        t.add_row(k.removeprefix("data."), f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(t)
    console.print(f"cells, summary and figures in {out}")


@app.command("import-colpret")
def import_colpret(
    out: Annotated[Path, typer.Option(help="Where to write the compact table (.csv or .parquet).")],
    clone: Annotated[Path | None, typer.Option(
        help="A local clone of IBM/ColPret (else the files are downloaded at the pinned commit).")
    ] = None,
) -> None:
    """Rebuild the compact ColPret table from the paper's public release (pinned, checksummed)."""
    from lmlab.studies.scaling_laws.colpret import build_compact_table
    from lmlab.studies.scaling_laws.data import write_table

    table, report = build_compact_table(clone)
    write_table(table, out)
    for line in report:
        console.print(line)
    console.print(f"{len(table)} rows, {len(table.models())} models -> {out}")
