"""`lmlab peoplejoin ...`: the study's own tools.

    lmlab peoplejoin download qa-test|qa-dev|doccreation DEST   (pinned commit, SHA-256 checked)
    lmlab peoplejoin rescore RUN_DIR [--data DIR] [--judge SPEC]  (scores from saved transcripts)
    lmlab peoplejoin gold [--data DIR]                            (does the gold SQL reproduce?)
    lmlab peoplejoin judge RUN_DIR --judge SPEC [--limit N]       (another judge on a run's transcripts)
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


def _run_items(run_dir: str, data: str) -> tuple[dict, str]:
    """The items a run's transcripts can refer to, and the run's own judge model."""
    from pathlib import Path

    from lmlab.studies.peoplejoin.data import data_dir, load_items

    cfg_path = Path(run_dir) / "config.json"
    judge = ""
    if cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text()).get("config", {})
        judge = cfg.get("judge_model") or cfg.get("agent_model", "")
        data = data or cfg.get("data", "")
    root = data_dir(data)
    items = {i.datum_id: i for i in load_items(root / "dev.jsonl")}
    test = root / "test.jsonl"
    if test.is_file():
        items.update({i.datum_id: i for i in load_items(test)})
    return items, judge


@app.command()
def judge(run_dir: str, judge: Annotated[str, typer.Option(help="The judge model to measure.")],
          data: DataOpt = "", limit: Annotated[int, typer.Option(
              help="Judge at most this many transcripts (0: all).")] = 0) -> None:
    """Judge a run's saved transcripts with another model (its outputs join the run's judge
    cache, so `rescore --judge SPEC` uses them) and report how often its full marks agree with
    the execution check, beside the run's own judge."""
    from pathlib import Path

    from lmlab.llm import get_backend
    from lmlab.studies.peoplejoin.evaluate import judge_all
    from lmlab.studies.peoplejoin.metrics import JudgeCache, answer_text, match_from_judge
    from lmlab.studies.peoplejoin.sqlexec import answer_check
    from lmlab.studies.peoplejoin.transcript import Transcript

    items, own = _run_items(run_dir, data)
    paths = sorted(Path(run_dir).glob("transcripts/*/*.json"))
    if not paths:
        raise LmlabError(f"{run_dir}: no transcripts to judge")
    ts = [Transcript.load(p) for p in paths][: limit or None]
    cache = JudgeCache(Path(run_dir) / "judge_cache.jsonl")
    lm = get_backend(judge, run=run_dir)
    new = judge_all(ts, lm, cache, judge)
    for name, outs in ((judge, new), (own, [cache.get(t, own) for t in ts])):
        pairs = [(match_from_judge(o) == 100.0, bool(answer_check(answer_text(t), items[t.datum_id])))
                 for t, o in zip(ts, outs, strict=True) if o is not None]
        if pairs:
            agree = sum(a == b for a, b in pairs) / len(pairs)
            print(json.dumps({"judge": name, "transcripts": len(pairs), "agree_exec": agree,
                              "full_marks": sum(a for a, _ in pairs),
                              "exec_pass": sum(b for _, b in pairs)}))


@app.command()
def rescore(run_dir: str, data: DataOpt = "", judge: Annotated[str, typer.Option(
        help="Judge model whose cached outputs to use (default: the run's).")] = "") -> None:
    """Per-agent means recomputed from a run folder's transcripts and judge cache."""
    from lmlab.studies.peoplejoin.evaluate import rescore as redo

    items, own = _run_items(run_dir, data)
    judge = judge or own
    if not judge:
        raise LmlabError("name the judge model with --judge")
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
