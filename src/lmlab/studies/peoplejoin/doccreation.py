"""PeopleJoin-DocCreation: items, reference people (fixed), per-item ROUGE-L, a lead-k baseline.

The release computed each scenario's reference people by comparing document URLs
(``file://test/2/1/0``) with the gold ids (``test/2/1/0``), which never match: every scenario's
reference set was empty and people precision/recall meaningless. `reference_people` compares
the ids with the ``file://`` prefix removed. ROUGE-L F1 is computed per item (`rouge-score`) and
averaged, rather than ROUGE-Lsum over all summaries joined into one text (a fork's choice).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlab.errors import LmlabError
from lmlab.studies.peoplejoin.data import Organization

__all__ = ["DocItem", "lead_k", "load_doc_items", "reference_people", "rouge_l"]

_FIELDS = ("datum_id", "tenant_id", "summary_prompt", "gold_summary", "gold_document_ids")


@dataclass(frozen=True)
class DocItem:
    """One DocCreation scenario."""

    datum_id: str
    tenant_id: str
    summary_prompt: str
    gold_summary: str
    gold_document_ids: tuple[str, ...]

    @classmethod
    def from_dict(cls, d: Any, where: str) -> DocItem:
        if not isinstance(d, dict):
            raise LmlabError(f"{where}: not a JSON object")
        for k in _FIELDS:
            if k not in d:
                raise LmlabError(f"{where}: missing field {k!r}")
        if not isinstance(d["gold_document_ids"], list):
            raise LmlabError(f"{where}: gold_document_ids must be a list")
        return cls(str(d["datum_id"]), str(d["tenant_id"]), str(d["summary_prompt"]),
                   str(d["gold_summary"]), tuple(map(str, d["gold_document_ids"])))


def load_doc_items(path: str | os.PathLike) -> list[DocItem]:
    """The scenarios of a ``*.scenario.jsonl`` file (errors name file:line and the field)."""
    p = Path(path)
    if not p.is_file():
        raise LmlabError(f"{p}: no such scenario file")
    out = []
    for no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise LmlabError(f"{p.name}:{no}: not JSON ({e.msg})") from None
            out.append(DocItem.from_dict(d, f"{p.name}:{no}"))
    return out


def _doc_id(url: str) -> str:
    return url.removeprefix("file://").strip("/")


def reference_people(item: DocItem, org: Organization) -> tuple[str, ...]:
    """The members holding one of the item's gold documents (the requester excluded)."""
    gold = {_doc_id(g) for g in item.gold_document_ids}
    return tuple(uid for uid, docs in org.documents.items()
                 if uid != org.requester and any(_doc_id(d.url) in gold for d in docs))


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of one prediction against its reference (stemmed, as rouge-score does)."""
    from lmlab.errors import require

    rouge_scorer = require("rouge_score.rouge_scorer", extra="peoplejoin")

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return float(scorer.score(reference, prediction)["rougeL"].fmeasure)


def lead_k(item: DocItem, org: Organization, k: int = 3) -> str:
    """The extractive baseline: the first k sentences of each gold document."""
    import re

    gold = {_doc_id(g) for g in item.gold_document_ids}
    parts = []
    for docs in org.documents.values():
        for d in docs:
            if _doc_id(d.url) in gold:
                sents = re.split(r"(?<=[.!?])\s+", d.content.strip())
                parts.append(" ".join(sents[:k]))
    return " ".join(parts)
