"""The in-process PeopleJoin environment: what each action does, and the turn engine.

`World` executes the 8 actions against an organization with the release's semantics:
``search_documents`` is BM25 (Okapi, through `bm25s`) over the requester's own documents, top 5;
``search_relevant_people`` returns every other member's directory entry and ignores its query
(``query_aware=True`` ranks the entries by BM25 against the query instead, top 5);
``send_message`` matches the id exactly, else case-insensitively without ``@domain``;
``resolve_person`` returns the first member whose id equals the name or whose full name contains
it. (The original ran the same over websockets; this runs in one process.)

`episode(...)` is the turn engine, written as a generator: it yields `Call`s (or lists of them)
for the language models and receives their `Completion`s, so a driver can batch the calls of many
episodes into one model call (`rollout.run_episodes`). Rules:

- the agent greets the requester with a fixed line; her reply (the request) wakes the agent;
- on each wake-up the agent takes at most `max_actions` actions (one model call each);
  `System.finish` ends the turn, the third invalid action abandons it;
- every message the agent sent is answered once by its recipient, after the turn; a reply
  ``skip`` is never delivered; the replies that arrived wake the agent together (the release's
  asynchronous agent likewise finds several replies waiting when they arrive while it works);
- the episode ends on ``send_session_completed``, when no reply wakes the agent (the release's
  idle timeout), or at the caps on wake-ups, messages and wall time.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol

from lmlab.llm import Completion, Request
from lmlab.studies.peoplejoin.actions import Action, ActionError, parse_action
from lmlab.studies.peoplejoin.data import Document, Organization, QAItem
from lmlab.studies.peoplejoin.transcript import AGENT, Message, Step, Transcript

__all__ = ["GREETING", "Call", "Limits", "World", "episode", "render_document"]

GREETING = "Hi Alice, how can I help you today?"
SESSION_COMPLETED = "session completed"


@dataclass(frozen=True)
class Limits:
    """The turn engine's caps (the release: 10 actions, 3 invalid, 1,250 s; no message cap)."""

    max_actions: int = 10
    max_invalid: int = 3
    max_turns: int = 8  # agent wake-ups
    max_messages: int = 20  # messages the agent may send (0: no cap)
    max_time_s: float = 1250.0  # wall time of one episode (0: no cap)
    # Not in the release: the same action twice in a row within a turn counts as invalid (small
    # models loop on one call until the 10-action cap; this ends such a turn after 3 repeats).
    reject_repeats: bool = True


@dataclass(frozen=True)
class Call:
    """A model call an episode needs: `role` picks the backend (agent, teammate, requester)."""

    role: str
    request: Request


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


class _BM25:
    """BM25-Okapi over a few texts (the release's tokenizer: lowercased \\w+ runs)."""

    def __init__(self, texts: list[str]):
        from lmlab.errors import require

        bm25s = require("bm25s", extra="peoplejoin")

        self.n = len(texts)
        self.retriever = None
        if self.n:
            self.retriever = bm25s.BM25(method="robertson")
            vocab: dict[str, int] = {}
            ids = [[vocab.setdefault(w, len(vocab)) for w in _tokens(t)] for t in texts]
            self.vocab = vocab
            self.retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab),
                                 show_progress=False)

    def top(self, query: str, k: int) -> list[int]:
        """Indices of the `k` best texts, best first (every text scores when the query is empty)."""
        if not self.n:
            return []
        q = [w for w in _tokens(query) if w in self.vocab]
        if not q:
            return list(range(min(k, self.n)))
        scores = self.retriever.get_scores(q)
        order = sorted(range(self.n), key=lambda i: (-float(scores[i]), i))
        return order[:k]


def render_document(doc: Document) -> str:
    """A document as the agent and teammates read it: title, then one record per line."""
    rows = doc.rows()
    if rows is None:
        return f"Title: {doc.title}\nContent: {doc.content}"
    lines = [f"Title: {doc.title}"] + [
        f"Record {i + 1}: " + json.dumps(r, ensure_ascii=False) for i, r in enumerate(rows)]
    return "\n".join(lines)


class World:
    """The actions' effects in one organization, seen from the requester's assistant."""

    def __init__(self, org: Organization, *, query_aware: bool = False, top_k: int = 5):
        self.org = org
        self.query_aware = query_aware
        self.top_k = top_k
        self._docs = org.docs(org.requester)
        self._doc_index = _BM25([d.content for d in self._docs])
        self._others = [p.user_id for p in org.people if p.user_id != org.requester]
        self._people_index = _BM25([org.description(u) for u in self._others]) if query_aware else None

    def find_user(self, user_id: str) -> str | None:
        """The member id `user_id` names: exact, else case-insensitive without ``@domain``."""
        if self.org.person(user_id) is not None:
            return user_id
        key = user_id.split("@")[0].strip().lower()
        return next((p.user_id for p in self.org.people if p.user_id.lower() == key), None)

    def execute(self, action: Action) -> tuple[str, dict[str, Any]]:
        """Run one action: (observation, effect). Raises ActionError for an invalid one.

        Effects: ``{"send": (user_id, content)}``, ``{"finish": True}``, ``{"complete": True}``.
        """
        name, a = action.name, action.args
        if name == "Enterprise.send_message":
            uid = self.find_user(a["user_id"])
            if uid is None:
                raise ActionError(f"no person with id {a['user_id']!r}; use resolve_person or "
                                  "search_relevant_people to find ids")
            return f"Message sent to {uid}.", {"send": (uid, a["content"])}
        if name == "Enterprise.resolve_person":
            needle = a["name"].strip()
            for p in self.org.people:
                if p.user_id == needle or needle.lower() in p.full_name.lower():
                    return json.dumps(p.to_dict()), {}
            return "null", {}
        if name == "Enterprise.resolve_primary_user":
            return json.dumps(self.org.person(self.org.requester).to_dict()), {}  # type: ignore[union-attr]
        if name == "Enterprise.send_session_completed":
            return "Session completed.", {"complete": True}
        if name == "EnterpriseSearch.search_documents":
            hits = [self._docs[i] for i in self._doc_index.top(a["query"], self.top_k)]
            if not hits:
                return "No documents found.", {}
            return "\n\n".join(render_document(d) for d in hits), {}
        if name == "EnterpriseSearch.search_relevant_people":
            if self.query_aware and self._people_index is not None:
                order = self._people_index.top(a.get("query", ""), self.top_k)
                people = [self._others[i] for i in order]
            else:
                people = self._others  # the release ignores the query
            return json.dumps({u: self.org.description(u) for u in people}), {}
        if name == "Reflection.thought":
            return "OK.", {}
        if name == "System.finish":
            return "Turn finished.", {"finish": True}
        raise ActionError(f"unknown action {name}")


@dataclass(frozen=True)
class AgentView:
    """What the agent knows: its own steps and the messages it sent or received."""

    messages: tuple[Message, ...]
    steps: tuple[Step, ...]
    turn: int
    requester: str


class AgentPolicy(Protocol):
    """An agent: given its view, the next action text, or a model request for it."""

    name: str
    model: str

    def act(self, view: AgentView) -> Request | str: ...

    def action(self, raw: str) -> str:
        """The action text a model output stands for (most agents: the output itself)."""
        ...


class Responder(Protocol):
    """A teammate simulator or the requester: a reply to the last message of a conversation."""

    label: str

    def reply(self, member: str, conversation: list[Message]) -> Request | str: ...

    def clean(self, text: str) -> str: ...


def _view(t: Transcript, turn: int, requester: str) -> AgentView:
    return AgentView(tuple(m for m in t.messages if AGENT in (m.sender, m.recipient)),
                     tuple(t.steps), turn, requester)


def _count(t: Transcript, role: str, comp: Completion) -> None:
    t.tokens[role] = t.tokens.get(role, 0) + comp.prompt_tokens + comp.completion_tokens
    t.llm_calls[role] = t.llm_calls.get(role, 0) + 1


def episode(
    item: QAItem,
    org: Organization,
    agent: AgentPolicy,
    teammates: Responder,
    requester: Responder,
    limits: Limits = Limits(),
    *,
    query_aware: bool = False,
) -> Generator[Call | list[Call], Any, Transcript]:
    """Run one item under one agent; yields model calls, returns the transcript."""
    world = World(org, query_aware=query_aware)
    me = org.requester
    t = Transcript(
        datum_id=item.datum_id, tenant_id=item.tenant_id, question=item.question,
        agent=agent.name, agent_model=agent.model, teammates=teammates.label,
        requester_sim=requester.label, reference_answer=item.answer,
        reference_people=item.reference_people, item_kind=item.kind, requester_id=me)
    start = time.perf_counter()

    def now() -> float:
        return round(time.perf_counter() - start, 3)

    def conversation(member: str, upto: Message) -> list[Message]:
        conv = [m for m in t.messages if {m.sender, m.recipient} == {member, AGENT}
                and m.kind == "message"]
        return conv[: conv.index(upto) + 1]

    t.messages.append(Message(AGENT, me, GREETING, 0, now()))
    outgoing = [t.messages[-1]]
    turn = 0
    while True:
        # -- replies to what the agent sent: each message answered once, "skip" never delivered
        calls: list[tuple[Message, Responder, Request | str]] = []
        for m in outgoing:
            who = requester if m.recipient == me else teammates
            calls.append((m, who, who.reply(m.recipient, conversation(m.recipient, m))))
        pending = [(i, c[2]) for i, c in enumerate(calls) if isinstance(c[2], Request)]
        texts: dict[int, str] = {i: c[2] for i, c in enumerate(calls) if isinstance(c[2], str)}
        if pending:
            roles = ["requester" if calls[i][0].recipient == me else "teammate" for i, _ in pending]
            comps = yield [Call(role, r) for role, (_, r) in zip(roles, pending, strict=True)]
            for (i, _), role, comp in zip(pending, roles, comps, strict=True):
                _count(t, role, comp)
                texts[i] = comp.text
        woke = False
        for i, (m, who, _) in enumerate(calls):
            text = who.clean(texts[i])
            if text and text.strip().lower().strip(".") != "skip":
                t.messages.append(Message(m.recipient, AGENT, text, turn, now()))
                woke = True
        if not woke:
            t.end_reason = "idle"  # nothing wakes the agent: the release's idle timeout
            break
        turn += 1
        if turn > limits.max_turns:
            t.end_reason = "turn cap"
            break
        if limits.max_time_s and now() > limits.max_time_s:
            t.end_reason = "time cap"
            break
        # -- the agent's turn
        outgoing, invalid, done = [], 0, False
        for _ in range(limits.max_actions):
            out = agent.act(_view(t, turn, me))
            if isinstance(out, Request):
                comp = yield Call("agent", out)
                _count(t, "agent", comp)
                raw = comp.text
                text = agent.action(raw)
            else:
                raw = text = out
            try:
                action = parse_action(text)
                last = next((s for s in reversed(t.steps) if s.turn == turn and s.valid), None)
                if limits.reject_repeats and last is not None and last.action == str(action):
                    done_obs = last.observation.splitlines()[0][:80] if last.observation else ""
                    raise ActionError(
                        f"you just did exactly this and it already worked ({done_obs}). Do not "
                        "repeat it: do the next step, or call System.finish() to wait for replies")
                obs, effect = world.execute(action)
            except ActionError as e:
                invalid += 1
                t.steps.append(Step(turn, raw, "", f"Invalid action: {e}", False))
                if invalid >= limits.max_invalid:
                    break  # the turn is abandoned
                continue
            if "send" in effect:
                sent = sum(m.sender == AGENT for m in t.messages) - 1  # the greeting is free
                if limits.max_messages and sent >= limits.max_messages:
                    t.steps.append(Step(turn, raw, str(action), "Message cap reached.", False))
                    t.end_reason = "message cap"
                    done = True
                    break
                uid, content = effect["send"]
                msg = Message(AGENT, uid, content, turn, now())
                t.messages.append(msg)
                outgoing.append(msg)
            t.steps.append(Step(turn, raw, str(action), obs, True))
            if effect.get("complete"):
                t.messages.append(Message(AGENT, me, SESSION_COMPLETED, turn, now(),
                                          kind="session_completed"))
                t.end_reason = "session completed"
                done = True
                break
            if effect.get("finish"):
                break
        if done:
            break
    t.turns = turn
    t.wall_s = now()
    return t
