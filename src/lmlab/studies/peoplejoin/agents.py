"""The agents: language-model architectures and scripted contact policies.

Language-model agents (one model call per action, temperature 0):

- `ReactiveAgent`: the release's ReAct-style loop; its prompt is a chat: a fixed system message
  (the actions with their exact syntax, how to work), two complete example sessions as chat
  turns (the user holds the records; a table split between two colleagues), then the session so
  far, each observation followed by a line saying what the action changed and what usually comes
  next. ``thought=True`` adds the `Reflection.thought` action (the release's configuration "with
  reflection").
- `PlanExecuteAgent` (not in the release): reads the directory, asks the model once for the
  people to contact, messages them (and whoever a reply redirects to), then asks the model once
  to compose the answer from the replies.
- `MessageAllAgent` (the release's Message-All): broadcasts the request to every member once, then
  composes the answer from the replies with the model.
- `MessageNoneAgent` (Message-None): contacts nobody; searches the requester's own documents and
  composes the answer from them.

Scripted policies (no model; labelled as such in every table): `ScriptedAgent` with
``oracle-contacts`` (exactly the reference people), ``broadcast`` (everyone) or ``none``
(nobody); each forwards the question and relays the replies verbatim.
"""

from __future__ import annotations

import contextlib
import json
import re

from lmlab.llm import Request
from lmlab.studies.peoplejoin.actions import format_action
from lmlab.studies.peoplejoin.data import Organization
from lmlab.studies.peoplejoin.environment import AgentView
from lmlab.studies.peoplejoin.teammates import prompt
from lmlab.studies.peoplejoin.transcript import AGENT

__all__ = ["AGENTS", "LLM_AGENTS", "SCRIPTED", "make_agent"]

LLM_AGENTS = ("reactive", "reactive-nothought", "plan-execute", "message-all", "message-none")
SCRIPTED = ("oracle-contacts", "broadcast", "none")
AGENTS = LLM_AGENTS + SCRIPTED
_OBS_CHARS = 1500

_DOCS = {
    "EnterpriseSearch.search_documents": ('query="..."', "search your user's own documents"),
    "EnterpriseSearch.search_relevant_people": ('query="..."',
                                                "list your colleagues and what records each may hold"),
    "Enterprise.send_message": ('user_id="...", content="..."',
                                "send a message to a colleague or to your user"),
    "Enterprise.resolve_person": ('name="..."', "find a person's user id from their name"),
    "Enterprise.resolve_primary_user": ("", "your user's own record"),
    "Reflection.thought": ('thought="..."', "think in private (nobody sees it)"),
    "System.finish": ("", "end your turn; replies to your messages arrive only after it"),
    "Enterprise.send_session_completed": ("", "end the session, once your user has her answer"),
}


def _question(view: AgentView) -> str:
    return next((m.content for m in view.messages if m.sender == view.requester), "")


def _replies(view: AgentView) -> list[tuple[str, str]]:
    return [(m.sender, m.content) for m in view.messages
            if m.recipient == AGENT and m.sender != view.requester]


def _hint(action: str, observation: str, requester: str) -> str:
    """What an action changed and what usually comes next (the reactive agent's observation)."""
    if action.startswith("Enterprise.send_message"):
        if observation == f"Message sent to {requester}.":
            return (f"Your message to {requester} was sent. Call System.finish() to wait for her "
                    "reply.")
        return ("Its reply will arrive after you call System.finish(). Message anyone else whose "
                "records you need, or call System.finish() now.")
    if action.startswith("EnterpriseSearch.search_relevant_people"):
        return ("These are your colleagues and what each may hold. Message those whose records "
                "the question needs.")
    if action.startswith("EnterpriseSearch.search_documents"):
        return (f"These are {requester}'s own documents. If they hold the answer, send it to "
                f"{requester}; if not, look for the colleagues who hold the records.")
    return ""


def example_turns(text: str) -> list[dict[str, str]]:
    """Example sessions as chat turns: a line ``You: ACTION`` is an assistant turn, every other
    line joins the user turn before it; a ``---`` line separates sessions."""
    turns: list[dict[str, str]] = []
    user: list[str] = []
    for line in text.strip().splitlines():
        if line.startswith("You: "):
            turns += [{"role": "user", "content": "\n".join(user)},
                      {"role": "assistant", "content": line[5:]}]
            user = []
        elif line.strip() != "---":
            user.append(line)
    if user:
        turns.append({"role": "user", "content": "\n".join(user)})
        turns.append({"role": "assistant", "content": "Enterprise.send_session_completed()"})
    return turns


def _arrival_hint(senders: set[str], requester: str) -> str:
    """What to do with the messages that woke the agent: colleagues' records call for an answer
    to the requester; the requester's own reply (her thanks) ends the session."""
    if senders == {requester}:
        return (f"{requester} replied. If she needs nothing more, call "
                "Enterprise.send_session_completed().")
    return (f"Replies with records arrived. Work out the answer from them and send it to "
            f"{requester} with Enterprise.send_message(user_id=\"{requester}\", content=\"...\"), "
            "or message the colleague they point you to.")


class ReactiveAgent:
    """The reactive (ReAct-style) agent, with or without the thought action.

    Its prompt is a chat: a fixed system message (the action list with exact syntax, how to
    work, one complete example session), then the session so far as turns: each action the
    agent took is an assistant message, and each observation (with a line saying what the action
    changed and what usually comes next) or batch of incoming messages is a user message. The
    fixed system message and the growing chat let the local backend reuse the kept prefix.
    """

    def __init__(self, org: Organization, model: str, *, thought: bool = True,
                 max_tokens: int = 96):
        self.org = org
        self.model = model
        self.thought = thought
        self.name = "reactive" if thought else "reactive-nothought"
        self.max_tokens = max_tokens
        names = [n for n in _DOCS if thought or n != "Reflection.thought"]
        actions = "\n".join(f"- {n}({_DOCS[n][0]})   {_DOCS[n][1]}" for n in names)
        t = ('You: Reflection.thought(thought="Tom\'s documents are about room bookings, not the '
             'chess club: I must ask the colleagues who hold member records.")\n'
             "Observation: OK.\n") if thought else ""
        self.system = prompt("agent_reactive").format(actions=actions)
        self.examples = example_turns(prompt("example_reactive").format(thought=t))

    def messages(self, view: AgentView) -> list[dict[str, str]]:
        """The chat so far: system, then alternating observations (user) and actions (assistant)."""
        incoming = [m for m in view.messages if m.recipient == AGENT]
        last = max([s.turn for s in view.steps] + [m.turn + 1 for m in incoming] + [0])
        p = self.org.person(view.requester)
        who = f"{p.full_name if p else view.requester} (user id: {view.requester})"
        chat = [{"role": "system", "content": self.system}, *self.examples]
        pending = [f"The example sessions are over. Your real session starts now. Your user is {who}."]
        for turn in range(1, last + 1):
            arrived = [m for m in incoming if m.turn == turn - 1]
            new = [f"[{m.sender} -> you] {m.content}" for m in arrived]
            if new and turn > 1:
                new.append(_arrival_hint({m.sender for m in arrived}, view.requester))
            pending += new
            for s in view.steps:
                if s.turn != turn:
                    continue
                chat.append({"role": "user", "content": "\n".join(pending)})
                act = s.action or (s.raw.strip().splitlines() or [""])[0][:200]
                chat.append({"role": "assistant", "content": act})
                obs = s.observation if len(s.observation) <= _OBS_CHARS else \
                    s.observation[:_OBS_CHARS] + " ...(truncated)"
                pending = [f"Observation: {obs}"]
                hint = _hint(s.action, s.observation, view.requester) if s.valid else ""
                if hint:
                    pending.append(hint)
        chat.append({"role": "user", "content": "\n".join(pending)})
        return chat

    def act(self, view: AgentView) -> Request:
        return Request(messages=tuple(self.messages(view)), temperature=0.0,
                       max_tokens=self.max_tokens, stop=("\nObservation", "\n["))

    def action(self, raw: str) -> str:
        return raw


class _ComposingAgent:
    """Shared by plan-execute, Message-All and Message-None: contact a set of people (and whoever
    their replies redirect to), then one model call composes the answer from what came back."""

    name = ""

    def __init__(self, org: Organization, model: str, *, max_tokens: int = 120):
        self.org = org
        self.model = model
        self.max_tokens = max_tokens
        self.contacts: list[str] | None = None
        self.sent: set[str] = set()
        self.answered = False
        self._composing = False
        self._requester = org.requester

    def prepare(self, view: AgentView) -> str | Request | None:
        """Actions before the contacts are chosen (None when there are none left)."""
        return None

    def choose(self, view: AgentView) -> list[str]:
        raise NotImplementedError

    def material(self, view: AgentView) -> str:
        rep = _replies(view)
        return "\n".join(f"{who} wrote: {text}" for who, text in rep) or "(nobody replied)"

    def act(self, view: AgentView) -> Request | str:
        acted_now = bool(view.steps) and view.steps[-1].turn == view.turn
        if self.answered:
            if acted_now:
                return format_action("System.finish")
            return format_action("Enterprise.send_session_completed")
        if self.contacts is None:
            pre = self.prepare(view)
            if pre is not None:
                return pre
            self.contacts = self.choose(view)
        for who, text in _replies(view):  # follow redirects: a reply naming another member
            for uid in self.org.member_ids:
                if uid not in self.contacts and uid not in (view.requester, who) \
                        and re.search(rf"\b{re.escape(uid)}\b", text.lower()):
                    self.contacts.append(uid)
        todo = [u for u in self.contacts if u not in self.sent]
        if todo:
            self.sent.add(todo[0])
            return format_action("Enterprise.send_message", user_id=todo[0],
                                 content=f"Hi, could you help with this: {_question(view)}")
        if acted_now and view.steps[-1].action.startswith("Enterprise.send_message"):
            return format_action("System.finish")  # wait for the replies
        self._composing = True
        text = (f"Question: {_question(view)}\n\nRecords:\n{self.material(view)}\n\n"
                "Your one-line answer:")
        return Request.chat(text, system=prompt("agent_compose"), temperature=0.0,
                            max_tokens=self.max_tokens)

    def action(self, raw: str) -> str:
        if self._composing:
            self._composing = False
            self.answered = True
            answer = " ".join(raw.strip().split()) or "I could not find the answer."
            return format_action("Enterprise.send_message", user_id=self._requester, content=answer)
        return raw


class PlanExecuteAgent(_ComposingAgent):
    """Plan the contacts once with the model, execute the plan, compose the answer."""

    name = "plan-execute"
    _planned: list[str] | None = None
    _planning = False

    def prepare(self, view: AgentView) -> str | Request | None:
        directory = next((s.observation for s in view.steps
                          if s.action.startswith("EnterpriseSearch.search_relevant_people")), None)
        if directory is None:
            return format_action("EnterpriseSearch.search_relevant_people", query=_question(view))
        if self._planned is not None:
            return None
        with contextlib.suppress(json.JSONDecodeError, AttributeError):
            directory = "\n".join(f"{k}: {v}" for k, v in json.loads(directory).items())
        p = self.org.person(view.requester)
        self._planning = True
        text = prompt("agent_plan").format(
            requester=view.requester, requester_name=p.full_name if p else view.requester,
            question=_question(view), directory=directory)
        return Request.chat(text, temperature=0.0, max_tokens=60)

    def choose(self, view: AgentView) -> list[str]:
        return list(self._planned or [])

    def action(self, raw: str) -> str:
        if self._planning:
            self._planning = False
            ids: list[str] = []
            for word in re.findall(r"[A-Za-z]+", raw):
                uid = word.lower()
                if uid in self.org.member_ids and uid != self.org.requester and uid not in ids:
                    ids.append(uid)
            self._planned = ids
            return format_action("Reflection.thought", thought="plan: ask " + (", ".join(ids) or "nobody"))
        return super().action(raw)


class MessageAllAgent(_ComposingAgent):
    """The release's Message-All baseline: everyone is asked once."""

    name = "message-all"

    def choose(self, view: AgentView) -> list[str]:
        return [u for u in self.org.member_ids if u != view.requester]


class MessageNoneAgent(_ComposingAgent):
    """The release's Message-None baseline: only the requester's own documents."""

    name = "message-none"

    def prepare(self, view: AgentView) -> str | None:
        if not any(s.action.startswith("EnterpriseSearch.search_documents") for s in view.steps):
            return format_action("EnterpriseSearch.search_documents", query=_question(view))
        return None

    def choose(self, view: AgentView) -> list[str]:
        return []

    def material(self, view: AgentView) -> str:
        obs = next((s.observation for s in view.steps
                    if s.action.startswith("EnterpriseSearch.search_documents")), "")
        return "(your user's own documents)\n" + obs[:4000]


class ScriptedAgent:
    """A scripted contact policy (no model): forward the question, relay the replies."""

    model = "scripted"

    def __init__(self, org: Organization, policy: str, reference_people: tuple[str, ...] = ()):
        self.org = org
        self.name = policy
        self.policy = policy
        self.reference = [u for u in reference_people if u != org.requester]
        self.sent: set[str] = set()
        self.relayed = False

    def act(self, view: AgentView) -> str:
        if self.relayed:
            return format_action("Enterprise.send_session_completed")
        if self.policy == "oracle-contacts":
            targets = self.reference
        elif self.policy == "broadcast":
            targets = [u for u in self.org.member_ids if u != view.requester]
        else:
            targets = []
        todo = [u for u in targets if u not in self.sent]
        if todo:
            self.sent.add(todo[0])
            return format_action("Enterprise.send_message", user_id=todo[0],
                                 content=f"Hi, could you help with this: {_question(view)}")
        repliers = {m.sender for m in view.messages if m.recipient == AGENT}
        if self.sent - repliers and view.steps and view.steps[-1].turn == view.turn \
                and view.steps[-1].action.startswith("Enterprise.send_message"):
            return format_action("System.finish")
        self.relayed = True
        replies = _replies(view)
        text = " ".join(f"{who} says: {t}" for who, t in replies) or \
            "I could not find anyone with this information; there isn't enough information."
        return format_action("Enterprise.send_message", user_id=view.requester, content=text)

    def action(self, raw: str) -> str:
        return raw


def make_agent(name: str, org: Organization, model: str,
               reference_people: tuple[str, ...] = ()) -> ReactiveAgent | _ComposingAgent | ScriptedAgent:
    """A fresh agent for one episode (agents keep per-episode state)."""
    if name == "reactive":
        return ReactiveAgent(org, model, thought=True)
    if name == "reactive-nothought":
        return ReactiveAgent(org, model, thought=False)
    if name == "plan-execute":
        return PlanExecuteAgent(org, model)
    if name == "message-all":
        return MessageAllAgent(org, model)
    if name == "message-none":
        return MessageNoneAgent(org, model)
    if name in SCRIPTED:
        return ScriptedAgent(org, name, reference_people)
    raise ValueError(f"unknown agent {name!r}; agents: {', '.join(AGENTS)}")
