"""`lmlab peoplejoin ...`: the study's own tools.

    lmlab peoplejoin download qa-test|qa-dev|doccreation DEST   (pinned commit, SHA-256 checked)
    lmlab peoplejoin rescore RUN_DIR [--data DIR] [--judge SPEC]  (scores from saved transcripts)
    lmlab peoplejoin gold [--data DIR]                            (does the gold SQL reproduce?)
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Annotated

import typer

from lmlab.errors import LmlabError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="PeopleJoin tools: fetch the release, re-score a run, check the gold SQL.")

DataOpt = Annotated[str, typer.Option("--data", help="PeopleJoin-QA folder (default: "
                                      "$LMLAB_DATA_PEOPLEJOIN_QA).")]


@app.command()
def download(part: str, dest: str) -> None:
    """Download a part of the release (qa-test, qa-dev, doccreation) from its pinned commit."""
    from lmlab.studies.peoplejoin.download import download as fetch

    print(fetch(part, dest))  # type: ignore[arg-type]


@app.command()
def rescore(run_dir: str, data: DataOpt = "", judge: Annotated[str, typer.Option(
        help="Judge model whose cached outputs to use (default: the run's).")] = "") -> None:
    """Per-agent means recomputed from a run folder's transcripts and judge cache."""
    from pathlib import Path

    from lmlab.studies.peoplejoin.data import data_dir, load_items
    from lmlab.studies.peoplejoin.evaluate import rescore as redo

    cfg_path = Path(run_dir) / "config.json"
    if not judge and cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text()).get("config", {})
        judge = cfg.get("judge_model") or cfg.get("agent_model", "")
    if not judge:
        raise LmlabError("name the judge model with --judge")
    root = data_dir(data)
    items = {i.datum_id: i for i in load_items(root / "dev.jsonl")}
    test = root / "test.jsonl"
    if test.is_file():
        items.update({i.datum_id: i for i in load_items(test)})
    rows = redo(run_dir, items, judge)
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r["agent"]].append(r)
    for agent, rs in by.items():
        ms = [r["match"] for r in rs if r["match"] is not None]
        print(json.dumps({"agent": agent, "items": len(rs),
                          "match": sum(ms) / len(ms) if ms else None,
                          "exec": sum(r["exec"] for r in rs) / len(rs),
                          "precision": sum(r["precision"] for r in rs) / len(rs),
                          "recall": sum(r["recall"] for r in rs) / len(rs)}))


@app.command()
def gold(data: DataOpt = "") -> None:
    """How many answerable dev items the gold SQL reproduces, and the mismatches."""
    from lmlab.studies.peoplejoin.data import data_dir, load_items
    from lmlab.studies.peoplejoin.evaluate import gold_check

    root = data_dir(data)
    ok, n, bad = gold_check(root, load_items(root / "dev.jsonl"))
    for b in bad:
        print(f"{b['datum_id']}: {b['why'][:160]}")
    print(f"reproduced {ok}/{n} = {100 * ok / max(n, 1):.1f}%")
