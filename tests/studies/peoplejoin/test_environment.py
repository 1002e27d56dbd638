"""The world's actions and the turn engine's limits."""

from __future__ import annotations

import json

from lmlab.studies.peoplejoin.actions import parse_action
from lmlab.studies.peoplejoin.environment import GREETING, Limits, World, episode
from lmlab.studies.peoplejoin.rollout import run_episodes
from lmlab.studies.peoplejoin.teammates import ScriptedRequester, TableServer
from lmlab.studies.peoplejoin.transcript import AGENT, Transcript


def test_actions_release_semantics(org):
    w = World(org)
    _obs, eff = w.execute(parse_action('Enterprise.send_message(user_id="BOB@company.com", content="hi")'))
    assert eff == {"send": ("bob", "hi")}
    people = json.loads(w.execute(parse_action('EnterpriseSearch.search_relevant_people(query="weather")'))[0])
    assert list(people) == ["bob", "carol", "dave", "erin", "frank"] and people["erin"] == "unknown"
    # the query is ignored by default: any query gives the same directory
    assert w.execute(parse_action('EnterpriseSearch.search_relevant_people(query="zzz")'))[0] == json.dumps(people)
    aware = World(org, query_aware=True, top_k=2)
    top = json.loads(aware.execute(parse_action('EnterpriseSearch.search_relevant_people(query="weather")'))[0])
    assert next(iter(top)) == "frank" and len(top) == 2
    docs = w.execute(parse_action('EnterpriseSearch.search_documents(query="book prices")'))[0]
    assert "Paris" in docs and "Dune" not in docs  # only the requester's own documents
    assert json.loads(w.execute(parse_action('Enterprise.resolve_person(name="Chen")'))[0])["user_id"] == "carol"
    assert w.execute(parse_action('Enterprise.resolve_person(name="Nobody")'))[0] == "null"
    assert json.loads(w.execute(parse_action("Enterprise.resolve_primary_user()"))[0])["user_id"] == "alice"


def test_search_documents_top5_bm25(org):
    from dataclasses import replace

    from lmlab.studies.peoplejoin.data import Document

    docs = (*tuple(Document(f"x/{i}", f"t{i}", f"filler text {i}") for i in range(7)), Document("x/k", "key", "the zebra table"))
    w = World(replace(org, documents={**org.documents, "alice": docs}))
    out = w.execute(parse_action('EnterpriseSearch.search_documents(query="zebra")'))[0]
    assert out.startswith("Title: key") and out.count("Title:") == 5


class Script:
    """An agent replaying fixed outputs, one per action."""

    name, model = "script", "scripted"

    def __init__(self, outputs):
        self.outputs = list(outputs)

    def act(self, view):
        return self.outputs.pop(0) if self.outputs else "System.finish()"

    def action(self, raw):
        return raw


def _run(org, item, agent, limits=None, mates=None):
    gen = episode(item, org, agent, mates or TableServer(org), ScriptedRequester(item.question),
                  limits or Limits())
    return run_episodes([gen], {})[0]


def test_opening_and_session_completed(org, items):
    t = _run(org, items[0], Script(["Enterprise.send_session_completed()"]))
    assert t.messages[0].content == GREETING and t.messages[1].content == items[0].question
    assert t.end_reason == "session completed" and t.messages[-1].kind == "session_completed"


def test_ten_actions_per_wakeup(org, items):
    agent = Script([f'Reflection.thought(thought="hmm {i}")' for i in range(30)])
    t = _run(org, items[0], agent, Limits(max_turns=5))
    assert len(t.steps) == 10 and t.end_reason == "idle"  # nothing was sent, nothing wakes it


def test_three_invalid_actions_abandon_the_turn(org, items):
    agent = Script(["nonsense", "Reflection.thought(thought='x')", "more nonsense", "junk",
                    "Enterprise.send_session_completed()"])
    t = _run(org, items[0], agent)
    assert [s.valid for s in t.steps] == [False, True, False, False]
    assert t.end_reason == "idle" and "Invalid action" in t.steps[0].observation


def test_skip_replies_are_never_delivered(org, items):
    class Skipper(TableServer):
        def reply(self, member, conversation):
            return "skip" if member == "frank" else super().reply(member, conversation)

    agent = Script(['Enterprise.send_message(user_id="frank", content="book?")',
                    'Enterprise.send_message(user_id="bob", content="book table please")',
                    "System.finish()", "Enterprise.send_session_completed()"])
    t = _run(org, items[1], agent, mates=Skipper(org))
    senders = [m.sender for m in t.messages if m.recipient == AGENT]
    assert "frank" not in senders and "bob" in senders


def test_message_and_turn_caps(org, items):
    sends = [f'Enterprise.send_message(user_id="bob", content="book {i}")' for i in range(5)]
    t = _run(org, items[1], Script(sends), Limits(max_messages=3))
    assert t.end_reason == "message cap" and sum(m.sender == AGENT for m in t.messages) == 4  # + greeting
    loop = Script(['Enterprise.send_message(user_id="bob", content="book again")', "System.finish()"] * 10)
    t = _run(org, items[1], loop, Limits(max_turns=2))
    assert t.end_reason == "turn cap" and t.turns == 3


def test_table_server_and_redirect(org, items):
    agent = Script(['Enterprise.send_message(user_id="dave", content="who knows authors?")',
                    'Enterprise.send_message(user_id="bob", content="the book table where title = Emma.")',
                    "System.finish()"])
    t = _run(org, items[2], agent)
    replies = {m.sender: m.content for m in t.messages if m.recipient == AGENT and m.sender != "alice"}
    assert replies["dave"].startswith("Try contacting Erin Eze")
    assert '"Emma"' in replies["bob"] and "Dune" not in replies["bob"]


def test_transcript_round_trip(org, items, tmp_path):
    t = _run(org, items[1], Script(['Enterprise.send_message(user_id="bob", content="book?")', "System.finish()",
                                    'Enterprise.send_message(user_id="alice", content="4 books")']))
    again = Transcript.load(t.save(tmp_path / "t.json"))
    assert again == t and again.digest() == t.digest()


def test_repeated_action_is_invalid(org, items):
    send = 'Enterprise.send_message(user_id="bob", content="book?")'
    t = _run(org, items[1], Script([send, send, send, send]))
    assert [s.valid for s in t.steps[:4]] == [True, False, False, False]
    t = _run(org, items[1], Script([send, send]), Limits(reject_repeats=False))
    assert [s.valid for s in t.steps[:2]] == [True, True]
