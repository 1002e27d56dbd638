"""Agents and teammates: scripted policies' people scores, LLM plumbing, no gold leak."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest

from lmlab.studies.peoplejoin.agents import AGENTS, make_agent
from lmlab.studies.peoplejoin.environment import episode
from lmlab.studies.peoplejoin.metrics import people_scores
from lmlab.studies.peoplejoin.rollout import run_episodes
from lmlab.studies.peoplejoin.teammates import (
    LLMRequester,
    LLMTeammates,
    ScriptedRequester,
    TableServer,
)

from .fakes import FakeLM


def _run(org, items, name, backends=None, mates=None, requester=None):
    gens = [episode(it, org, make_agent(name, org, "fake", it.reference_people),
                    mates(org) if mates else TableServer(org),
                    requester(it) if requester else ScriptedRequester(it.question)) for it in items]
    return run_episodes(gens, backends or {})


def test_oracle_contacts_precision_recall_one(org, items):
    ts = _run(org, items, "oracle-contacts")
    nonempty = [t for t in ts if set(t.reference_people) - {"alice"}]
    assert len(nonempty) == 3
    for t in nonempty:
        assert people_scores(t) == (1.0, 1.0), t.datum_id
    for t in ts:
        assert t.end_reason == "session completed"


def test_broadcast_and_none(org, items):
    for t in _run(org, items, "broadcast"):
        assert people_scores(t)[1] == 1.0
    for t in _run(org, items, "none"):
        assert people_scores(t)[0] == 0.0 and not [m for m in t.messages if m.recipient not in ("alice", "agent")]


def session_text(request):
    """The real session of a reactive agent's chat (after its example sessions), as one text."""
    msgs = request.messages
    starts = [i for i, m in enumerate(msgs) if "real session starts now" in m["content"]]
    return "\n".join(m["content"] for m in msgs[starts[-1] if starts else 0:])


def fake_agent_brain(request):
    """Plays the reactive agent well enough to exercise every branch."""
    text = request.messages[-1]["content"]
    session = session_text(request)
    if "Write a short plan" in text:
        return "ask: bob\nask: carol"
    if "Your one-line answer" in text:
        return "There are 4 books." if "two" in text.lower() or "book" in text.lower() else "Not enough information."
    if "[bob -> you]" in session and "[carol -> you]" in session:
        if "Message sent to alice" in session:
            return "Enterprise.send_session_completed()"
        return '```python\nEnterprise.send_message(user_id="alice", content="There are 4 books.")\n```'
    if "Message sent to carol" in session:
        return "System.finish()"
    if "Message sent to bob" in session:
        return 'Sure. Action: Enterprise.send_message(content="How many books do you have?", user_id="carol")'
    if "search_relevant_people" in session:
        return 'Enterprise.send_message("bob", "How many books do you have?")'
    return 'EnterpriseSearch.search_relevant_people(query="books")'


@pytest.mark.parametrize("name", ["reactive", "reactive-nothought", "plan-execute", "message-all",
                                  "message-none"])
def test_llm_agents_plumbing(org, items, name):
    lm = FakeLM(fake_agent_brain)
    ts = _run(org, [items[1]], name, {"agent": lm})
    t = ts[0]
    assert t.llm_calls.get("agent", 0) >= 1 and t.agent == name
    assert t.end_reason in ("session completed", "idle", "turn cap"), t.end_reason
    if name != "message-none":
        assert {"bob", "carol"} <= {m.recipient for m in t.messages}
    if name in ("reactive", "message-all", "plan-execute"):
        assert any(m.sender == "agent" and m.recipient == "alice" and "4 books" in m.content for m in t.messages)
    if name == "reactive":
        assert "Reflection.thought" in lm.seen[0].messages[0]["content"]
    if name == "reactive-nothought":
        assert "Reflection.thought" not in "".join(m["content"] for m in lm.seen[0].messages)


def test_no_simulator_sees_the_gold(org, items):
    """Every teammate and requester prompt holds only that member's own documents and the
    conversation: never the reference answer, the gold SQL or another member's documents."""
    mates = FakeLM(lambda r: "I have some rows.")
    req = FakeLM(lambda r: "Thanks, that is all.")
    agent = FakeLM(fake_agent_brain)
    for it in items:
        _run(org, [it], "message-all", {"agent": agent, "teammate": mates, "requester": req},
             mates=lambda o: LLMTeammates(o, "fake"),
             requester=lambda i: LLMRequester(org, i.question, "fake"))
    assert mates.seen and req.seen
    gold = [it.answer for it in items] + [it.gold_sql for it in items]
    for r in mates.seen + req.seen:
        prompt = "\n".join(m["content"] for m in r.messages)
        for g in gold:
            assert g not in prompt
        member = re.search(r"\(user id: (\w+)\)", prompt)[1]
        for other, docs in org.documents.items():
            if other != member:
                for d in docs:
                    assert d.content[:40] not in prompt, (member, other)
    # the constructors take no item: nothing but the organization (and the question) goes in
    import inspect

    assert "item" not in inspect.signature(LLMTeammates).parameters
    assert set(inspect.signature(LLMRequester).parameters) == {"org", "question", "model", "max_tokens"}


def test_make_agent_rejects_unknown(org):
    assert len(AGENTS) == 8
    with pytest.raises(ValueError, match="unknown agent"):
        make_agent("genius", org, "x")


def test_reactive_prompt_is_a_chat_with_examples_and_next_steps(org, items):
    """The reactive agent's prompt: a fixed system message, the example sessions as chat turns,
    then the real session with each observation saying what changed and what comes next."""
    lm = FakeLM(fake_agent_brain)
    _run(org, [items[1]], "reactive", {"agent": lm})
    first, last = lm.seen[0].messages, lm.seen[-1].messages
    assert first[0]["role"] == "system" and "Enterprise.send_message(user_id=" in first[0]["content"]
    n_fixed = next(i for i, m in enumerate(first) if "real session starts now" in m["content"])
    assert n_fixed > 10 and last[:n_fixed] == first[:n_fixed]  # one fixed prefix for every call
    roles = [m["role"] for m in last[1:]]
    assert all(a != b for a, b in pairwise(roles))  # user and assistant alternate
    session = "\n".join(m["content"] for m in last[n_fixed:])
    assert "[alice -> you]" in session and "Its reply will arrive after you call System.finish()" in session
    assert "Replies with records arrived" in session and "[bob -> you]" in session
    # actions are shown in their canonical form (what the model should write)
    assert 'Enterprise.send_message(user_id="bob", content="How many books do you have?")' in session
