"""From items to numbers: choosing items, judging, per-item scores, and their summary.

`rescore(run_dir)` recomputes every per-item score of a finished run from its saved transcripts
and judge cache, without any model: the numbers a run reports are a function of its files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmlab.errors import LmlabError
from lmlab.llm import Backend
from lmlab.seeding import derive, numpy_rng
from lmlab.stats import bootstrap_ci, bootstrap_diff
from lmlab.studies.peoplejoin.data import (
    Organization,
    QAItem,
    load_items,
    load_organization,
    load_test_ids,
)
from lmlab.studies.peoplejoin.metrics import NO_ANSWER, JudgeCache, judge_request, score_transcript
from lmlab.studies.peoplejoin.sqlexec import reproduce
from lmlab.studies.peoplejoin.transcript import Transcript

__all__ = ["gold_check", "judge_all", "judge_one", "rescore", "select_items", "summarize"]


def select_items(root: Path, *, split: str, organizations: Sequence[str], max_member_chars: int,
                 n: int, seed: int) -> list[tuple[QAItem, Organization]]:
    """The run's items with their organizations, drawn reproducibly."""
    if split == "dev":
        items = load_items(root / "dev.jsonl")
    else:
        test = root / "test.jsonl"
        if not test.is_file():
            raise LmlabError(f"{test}: missing; run `lmlab peoplejoin download qa-test {root}` first")
        wanted = {d for d, _ in load_test_ids(root / "selected_test_ids.txt")}
        items = [i for i in load_items(test) if i.datum_id in wanted]
    if organizations:
        items = [i for i in items if i.db_id in set(organizations)]
    out = []
    for it in items:
        org = load_organization(root, it.tenant_id)
        if max_member_chars and max(org.doc_chars(u) for u in org.member_ids) > max_member_chars:
            continue
        out.append((it, org))
    if not out:
        raise LmlabError("no items left after the organization and size filters")
    if n and n < len(out):
        rng = numpy_rng(derive(seed, "items"))
        keep = sorted(rng.choice(len(out), size=n, replace=False).tolist())
        out = [out[i] for i in keep]
    return out


def gold_check(root: Path, items: Sequence[QAItem]) -> tuple[int, int, list[dict[str, str]]]:
    """How many answerable items the gold SQL reproduces from the organizations' tables:
    (reproduced, answerable, mismatches)."""
    ok, n, bad = 0, 0, []
    for it in items:
        if it.unanswerable:
            continue
        n += 1
        good, why = reproduce(it, load_organization(root, it.tenant_id))
        ok += good
        if not good:
            bad.append({"datum_id": it.datum_id, "sql": it.gold_sql, "why": why})
    return ok, n, bad


def judge_one(t: Transcript, backend: Callable[[], Backend]) -> str:
    """The judge's output for one transcript: `NO_ANSWER` (Match 0) without a model call when the
    agent sent no answer, else one call of the judge (`backend()` gives it, only when needed)."""
    req = judge_request(t)
    if req is None:
        return NO_ANSWER
    return backend().generate([req])[0][0].text


def judge_all(transcripts: Sequence[Transcript], backend: Backend | None, cache: JudgeCache,
              judge: str) -> list[str | None]:
    """Each transcript's judge output: from the cache, else `judge_one` (one call at a time, so
    the local backend reuses the judge's fixed system message); None without a backend."""
    outs: list[str | None] = [cache.get(t, judge) for t in transcripts]
    for i, t in enumerate(transcripts):
        if outs[i] is not None or (backend is None and judge_request(t) is not None):
            continue
        outs[i] = judge_one(t, lambda: backend)  # type: ignore[arg-type,return-value]
        cache.put(t, judge, outs[i])  # type: ignore[arg-type]
    return outs


def transcript_path(run_dir: Path, agent: str, datum_id: str) -> Path:
    return Path(run_dir) / "transcripts" / agent / f"{datum_id}.json"


def rescore(run_dir: str | os.PathLike, items: dict[str, QAItem], judge: str) -> list[dict[str, Any]]:
    """Per-item scores recomputed from a run folder's transcripts and judge cache."""
    run_dir = Path(run_dir)
    paths = sorted((run_dir / "transcripts").glob("*/*.json"))
    if not paths:
        raise LmlabError(f"{run_dir}: no transcripts to score")
    cache = JudgeCache(run_dir / "judge_cache.jsonl")
    rows = []
    for p in paths:
        t = Transcript.load(p)
        if t.datum_id not in items:
            raise LmlabError(f"{p}: item {t.datum_id!r} is not in the data")
        rows.append(score_transcript(t, items[t.datum_id], cache.get(t, judge)))
    return rows


def _ci(values: Sequence[float], n_boot: int, seed: int) -> dict[str, float]:
    iv = bootstrap_ci(np.asarray(values, dtype=float), n_boot=n_boot, seed=seed)
    return {"mean": iv.value, "ci_lo": iv.lo, "ci_hi": iv.hi}


def summarize(rows: Sequence[dict[str, Any]], agents: Sequence[str], *, n_boot: int,
              seed: int, llm_agents: Sequence[str]) -> dict[str, Any]:
    """Per-agent means with 95% bootstrap intervals, paired differences, difficulty by kind."""
    m: dict[str, Any] = {}
    by_agent = {a: sorted((r for r in rows if r["agent"] == a), key=lambda r: r["datum_id"])
                for a in agents}
    for a, rs in by_agent.items():
        if not rs:
            continue
        m[f"{a}.items"] = len(rs)
        for key in ("match", "exec", "precision", "recall"):
            vals = [r[key] for r in rs if r[key] is not None]
            if vals:
                for k, v in _ci(vals, n_boot, derive(seed, a, key)).items():
                    m[f"{key}.{a}.{k}"] = v
        for key in ("msgs.total", "msgs.requester_to_agent", "msgs.agent_to_requester",
                    "msgs.teammates_to_agent", "msgs.agent_to_teammates", "words.total",
                    "words.agent_to_teammates", "words.teammates_to_agent", "people_contacted",
                    "wall_s", "tokens", "actions", "invalid_actions", "answered"):
            m[f"eff.{a}.{key}"] = float(np.mean([r[key] for r in rs]))
    # paired differences (same items) between agents the claims compare
    for a, b in (("reactive", "message-none"), ("message-all", "reactive"), ("broadcast", "reactive"),
                 ("reactive-nothought", "message-none"), ("plan-execute", "message-none")):
        ra, rb = by_agent.get(a, []), by_agent.get(b, [])
        if not ra or [r["datum_id"] for r in ra] != [r["datum_id"] for r in rb]:
            continue
        for key in ("match", "exec", "precision", "recall"):
            if any(r[key] is None for r in ra + rb):
                continue
            d = bootstrap_diff([r[key] for r in ra], [r[key] for r in rb], n_boot=n_boot,
                               seed=derive(seed, a, b, key))
            m[f"diff.{a}_vs_{b}.{key}"] = d.value
            m[f"diff.{a}_vs_{b}.{key}.ci_lo"] = d.lo
            m[f"diff.{a}_vs_{b}.{key}.ci_hi"] = d.hi
    # difficulty: plain vs split/redirection items, pooled over the language-model agents
    pooled = [r for r in rows if r["agent"] in set(llm_agents)]
    plain = [r for r in pooled if r["kind"] == "plain"]
    hard = [r for r in pooled if "split" in r["kind"] or "redirection" in r["kind"]]
    m["kind.plain.n"], m["kind.hard.n"] = len(plain), len(hard)
    for key in ("match", "exec"):
        a = [r[key] for r in plain if r[key] is not None]
        b = [r[key] for r in hard if r[key] is not None]
        if a and b:
            d = bootstrap_diff(a, b, paired=False, n_boot=n_boot, seed=derive(seed, "kind", key))
            m[f"kind.plain.{key}"] = float(np.mean(a))
            m[f"kind.hard.{key}"] = float(np.mean(b))
            m[f"diff.plain_vs_hard.{key}"] = d.value
            m[f"diff.plain_vs_hard.{key}.ci_lo"] = d.lo
            m[f"diff.plain_vs_hard.{key}.ci_hi"] = d.hi
    return m


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    from lmlab.runs import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
