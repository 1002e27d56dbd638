"""DocCreation: the reference-people fix, per-item ROUGE-L, the lead-k baseline, validation."""

from __future__ import annotations

import json

import pytest

from lmlab.errors import LmlabError
from lmlab.studies.peoplejoin.data import Organization
from lmlab.studies.peoplejoin.doccreation import lead_k, load_doc_items, reference_people, rouge_l


def _org():
    doc = lambda i, text: {"url": f"file://test/2/1/{i}", "title": f"test/2/1/{i}", "content": text}  # noqa: E731
    return Organization.from_dict({
        "tenant_id": "multinews/test_2",
        "primary_user": {"user_id": "alice", "full_name": "Alice A", "email": "a@c.com"},
        "users": [{"user_id": u, "full_name": u.title(), "email": f"{u}@c.com"} for u in ("alice", "cassie", "dan")],
        "user_id_to_documents": {"alice": [], "cassie": [doc(0, "The painting was found. It was lost."),
                                                          doc(1, "Other news here.")],
                                 "dan": [doc(2, "Unrelated story.")]},
        "user_id_to_descriptions": {"cassie": "art, museums", "dan": "sports"},
    })


def _items(tmp_path, rows):
    p = tmp_path / "test.scenario.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_reference_people_fixed(tmp_path):
    row = {"datum_id": "test_2_0", "tenant_id": "multinews/test_2", "summary_prompt": "painting",
           "gold_summary": "A painting was found.", "gold_document_ids": ["test/2/1/0"]}
    item = load_doc_items(_items(tmp_path, [row]))[0]
    org = _org()
    # the release compared "file://test/2/1/0" with "test/2/1/0": always empty
    assert [u for u, docs in org.documents.items() if any(d.url in item.gold_document_ids for d in docs)] == []
    assert reference_people(item, org) == ("cassie",)
    assert lead_k(item, org, k=1) == "The painting was found."


def test_rouge_l_per_item():
    assert rouge_l("a painting was found", "a painting was found") == pytest.approx(1.0)
    assert rouge_l("completely different words", "a painting was found") == 0.0
    assert 0 < rouge_l("the painting was lost", "a painting was found") < 1


def test_bad_scenario_line(tmp_path):
    with pytest.raises(LmlabError, match=r"test.scenario.jsonl:1: missing field 'gold_summary'"):
        load_doc_items(_items(tmp_path, [{"datum_id": "x", "tenant_id": "t", "summary_prompt": "p",
                                          "gold_document_ids": []}]))
