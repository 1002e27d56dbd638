"""`lmlab misinfo-eval ...`: run the human study and score it.

    lmlab misinfo-eval serve --feeds DIR --db FILE [--host 127.0.0.1] [--port 8000] [--seed 0]
    lmlab misinfo-eval export --db FILE [--out responses.csv]
    lmlab misinfo-eval score RESPONSES.csv [--json]
    lmlab misinfo-eval annotation-stats SHEET.csv
    lmlab misinfo-eval download --out DIR       (the release's two CSVs, pinned commit, checksummed)
    lmlab misinfo-eval feeds --out DIR [--n-feeds 4]   (a synthetic feeds folder to try the app)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from lmlab.errors import LmlabError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Serve the mock feed, export and score its responses.")


@app.command()
def serve(
    feeds: Annotated[Path, typer.Option(help="Folder with feeds.csv and <condition>.csv files.")],
    db: Annotated[Path, typer.Option(help="SQLite database (created if missing).")],
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless --allow-remote).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    seed: Annotated[int, typer.Option(help="Seed of the condition and feed assignment.")] = 0,
    conditions: Annotated[str, typer.Option(help="Comma-separated conditions (default: all "
                                            "the folder can fill).")] = "",
    allow_remote: Annotated[bool, typer.Option(help="Allow a non-loopback --host.")] = False,
) -> None:
    """Serve the feed study (consent, demographics, five posts) and store answers in SQLite."""
    from lmlab.errors import require

    require("fastapi", extra="misinfo")
    from lmlab.studies.misinfo_eval.web import serve as run_server

    conds = [c.strip() for c in conditions.split(",") if c.strip()] or None
    run_server(feeds, db, host=host, port=port, seed=seed, conditions=conds,
               allow_remote=allow_remote)


@app.command()
def export(
    db: Annotated[Path, typer.Option(help="The study's SQLite database.")],
    out: Annotated[Path | None, typer.Option(help="CSV to write (default: stdout).")] = None,
) -> None:
    """Write every response as the CSV the scorer reads (a local command: never served)."""
    import io

    from lmlab.studies.misinfo_eval.data import RESPONSE_COLUMNS, write_csv
    from lmlab.studies.misinfo_eval.store import Store, export_rows

    if not db.is_file():
        raise LmlabError(f"{db}: database not found")
    rows = export_rows(Store(db))
    if out is not None:
        write_csv(out, RESPONSE_COLUMNS, rows)
        print(f"{len(rows)} responses -> {out}", file=sys.stderr)
    else:
        import csv

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(RESPONSE_COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        sys.stdout.write(buf.getvalue())


@app.command()
def score(
    responses: Annotated[Path, typer.Argument(help="A response table (export's CSV).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print every metric as JSON.")] = False,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Accuracy per condition, gains over control, intervals and the cluster-robust test."""
    from lmlab.runs import jsonable
    from lmlab.studies.misinfo_eval.data import read_responses
    from lmlab.studies.misinfo_eval.scoring import score as score_rows

    m = score_rows(read_responses(responses), n_boot=n_boot, seed=seed)
    if as_json:
        print(json.dumps(jsonable(m)))
        return
    print(f"{m['responses']} responses from {m['participants']} participants")
    for k in sorted(k for k in m if k.startswith("accuracy.") and k.endswith(".mean")):
        c = k.split(".")[1]
        line = f"{c:>14}: accuracy {m[k]:.3f} [{m[f'accuracy.{c}.ci_lo']:.3f}, " \
               f"{m[f'accuracy.{c}.ci_hi']:.3f}]  n={m[f'accuracy.{c}.n']}"
        if f"gain_abs.{c}.mean" in m:
            line += f"  gain {m[f'gain_abs.{c}.mean']:+.3f} ({100 * m[f'gain_rel.{c}.mean']:+.1f}%)"
        print(line)


@app.command("annotation-stats")
def annotation_stats_cmd(
    sheet: Annotated[Path, typer.Argument(help="An annotation sheet (the release's exp_annot.csv).")],
) -> None:
    """The five annotation percentages, computed as the release does."""
    from lmlab.studies.misinfo_eval.annotation import annotation_stats

    s = annotation_stats(sheet)
    print(f"{s.kept} of {s.rows} rows kept")
    for k, v in s.rounded(2).items():
        print(f"{k:>12}: {v:.2f}% ({s.yes[k]})")


@app.command()
def download(out: Annotated[Path, typer.Option(help="Folder for the release's CSVs.")]) -> None:
    """Download the release's feed and annotation CSVs (pinned commit, SHA-256 checked)."""
    from lmlab.studies.misinfo_eval.release import download as fetch

    for name, path in fetch(out).items():
        print(f"{name}: {path}")


@app.command()
def feeds(
    out: Annotated[Path, typer.Option(help="Folder to write feeds.csv and template conditions.")],
    n_feeds: Annotated[int, typer.Option(help="Number of synthetic feeds.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """Write a synthetic feeds folder (control, label, generic-human, generic-ai) to try `serve`."""
    from lmlab.studies.misinfo_eval.conditions import TEMPLATE_CONDITIONS, template_rows
    from lmlab.studies.misinfo_eval.conditions import write_condition_file as write_cond
    from lmlab.studies.misinfo_eval.data import write_feeds
    from lmlab.studies.misinfo_eval.synthetic import synthetic_feeds

    if n_feeds < 1:
        raise LmlabError("--n-feeds must be at least 1")
    fs = synthetic_feeds(n_feeds, seed)
    out.mkdir(parents=True, exist_ok=True)
    write_feeds(out / "feeds.csv", fs)
    for c in TEMPLATE_CONDITIONS[1:]:
        write_cond(out, c, template_rows(c, fs))
    print(f"{n_feeds} synthetic feeds -> {out}")
