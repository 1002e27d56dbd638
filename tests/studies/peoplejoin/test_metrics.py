"""Metrics on hand-built transcripts: the release's edge cases, per-direction counts, the judge."""

from __future__ import annotations

import pytest

from lmlab.studies.peoplejoin.evaluate import judge_one
from lmlab.studies.peoplejoin.metrics import (
    NO_ANSWER,
    JudgeCache,
    answer_text,
    efficiency,
    judge_request,
    match_from_judge,
    parse_judge,
    people_scores,
    score_transcript,
)
from lmlab.studies.peoplejoin.transcript import AGENT, Message, Transcript


def make(messages, reference=("bob", "carol"), datum="bookshop_1", answer="[[4]]"):
    return Transcript(datum_id=datum, tenant_id="tenant_data_v2/bookshop", question="How many books?",
                      agent="test", agent_model="scripted", teammates="table-server",
                      requester_sim="scripted", reference_answer=answer,
                      reference_people=tuple(reference), item_kind="split",
                      messages=[Message(*m, turn=0) for m in messages])


OPEN = [(AGENT, "alice", "Hi Alice, how can I help you today?"), ("alice", AGENT, "How many books are there?")]


def test_no_contacts_precision_zero():
    t = make([*OPEN, (AGENT, "alice", "I do not know.")])
    assert people_scores(t) == (0.0, 0.0)


def test_empty_reference_recall_one():
    t = make([*OPEN, (AGENT, "bob", "books?")], reference=("alice",))
    assert people_scores(t) == (0.0, 1.0)
    assert people_scores(make(OPEN, reference=())) == (0.0, 1.0)


def test_precision_recall_values():
    t = make([*OPEN, (AGENT, "bob", "books?"), (AGENT, "frank", "books?"), (AGENT, "bob", "again?")])
    p, r = people_scores(t)
    assert p == pytest.approx(0.5) and r == pytest.approx(0.5)


def test_per_direction_counts():
    t = make([*OPEN, (AGENT, "bob", "how many books"), ("bob", AGENT, "two books here"), (AGENT, "carol", "how many books"), ("carol", AGENT, "two"), (AGENT, "alice", "There are 4 books."), ("alice", AGENT, "Thanks")])
    t.messages.append(Message(AGENT, "alice", "session completed", 1, kind="session_completed"))
    e = efficiency(t)
    assert e["msgs.requester_to_agent"] == 2 and e["msgs.agent_to_requester"] == 2
    assert e["msgs.agent_to_teammates"] == 2 and e["msgs.teammates_to_agent"] == 2
    assert e["words.teammates_to_agent"] == 4 and e["words.agent_to_teammates"] == 6
    assert e["words.requester_to_agent"] == 6 and e["msgs.total"] == 8 and e["people_contacted"] == 2
    assert answer_text(t) == "There are 4 books."


@pytest.mark.parametrize("text, score, match", [
    ("score: 2", 2, 100.0), ("The answer is partly right.\nScore: 1", 1, 50.0), ("score: 0", 0, 0.0),
    ("**Score:** 2", 2, 100.0), ("score: 7", 2, 100.0), ("score: -1", 0, 0.0),
    ("I think it is good", None, 0.0), ("", None, 0.0), ("2", 2, 100.0), (" 1\n", 1, 50.0),
    ("3 stars", None, 0.0),
])
def test_judge_parsing(text, score, match):
    assert parse_judge(text) == score
    assert match_from_judge(text) == match


def test_judge_prompt_and_cache(tmp_path):
    t = make([*OPEN, (AGENT, "alice", "There are 4 books.")])
    req = judge_request(t)
    prompt = req.messages[-1]["content"]
    assert "Reference: [[4]]" in prompt and "Answer: There are 4 books." in prompt
    # the rubric is the fixed system message (one prefix for every judged episode)
    assert "score: <0, 1 or 2>" in req.messages[0]["content"] and "Question:" not in prompt.split("\n")[1]
    # no answer to the requester: Match 0 without asking any model
    silent = make([*OPEN, (AGENT, "bob", "How many books do you have?")])
    assert judge_request(silent) is None
    assert judge_one(silent, lambda: pytest.fail("the judge was asked")) == NO_ANSWER
    assert match_from_judge(NO_ANSWER) == 0.0
    cache = JudgeCache(tmp_path / "j.jsonl")
    cache.put(t, "hf:m", "score: 2")
    again = JudgeCache(tmp_path / "j.jsonl")
    assert again.get(t, "hf:m") == "score: 2"
    assert again.get(t, "hf:other") is None  # keyed by judge model
    t2 = make([*OPEN, (AGENT, "alice", "There are 5 books.")])
    assert again.get(t2, "hf:m") is None  # keyed by transcript, not only the item


def test_score_transcript(items):
    t = make([*OPEN, (AGENT, "bob", "books?"), (AGENT, "carol", "books?"), (AGENT, "alice", "There are 4 books.")])
    row = score_transcript(t, items[1], "score: 2")
    assert row["match"] == 100.0 and row["exec"] == 1.0 and row["precision"] == 1.0 and row["recall"] == 1.0
    assert score_transcript(t, items[1], None)["match"] is None
