"""Who answers the agent: simulated teammates and the requester.

- `LLMTeammates`: one persona per member, through `lmlab.llm`; the prompt holds the member's own
  documents verbatim and the conversation with the agent, never an item (its constructor takes
  the organization only, so no simulator can see a reference answer). Its model is configured and
  recorded apart from the agent's.
- `TableServer` (a labelled variant, not the paper's simulator): answers from the member's own
  rows in SQLite. A request names a table (its name, or a word of it), optionally
  ``where <column> = <value>``; the member returns the matching rows as JSON, its redirect note
  if it holds one, or declines.
- `ScriptedRequester` (the tiny preset) asks the item's question when greeted and thanks the agent
  afterwards; `LLMRequester` is the release's persona (her question, none of her documents).
"""

from __future__ import annotations

import json
import re
import sqlite3
from functools import cache
from importlib import resources

from lmlab.llm import Request
from lmlab.studies.peoplejoin.data import Organization
from lmlab.studies.peoplejoin.environment import render_document
from lmlab.studies.peoplejoin.sqlexec import build_database
from lmlab.studies.peoplejoin.transcript import AGENT, Message

__all__ = ["LLMRequester", "LLMTeammates", "ScriptedRequester", "TableServer", "joined_lines", "one_line",
           "prompt"]

THANKS = "Thank you, that is all I need."


@cache
def prompt(name: str) -> str:
    """A prompt template shipped in this package's ``prompts/`` folder."""
    return resources.files("lmlab.studies.peoplejoin").joinpath(f"prompts/{name}.txt").read_text()


def _conversation(conv: list[Message], member: str) -> str:
    return "\n".join(f"{'Assistant' if m.sender == AGENT else member}: {m.content}" for m in conv)


def one_line(text: str) -> str:
    """The first non-empty line of a reply, without a speaker prefix or wrapping quotes."""
    for line in text.strip().splitlines():
        line = re.sub(r"^\s*(?:\w+\s*:\s*)?", "", line, count=1) if re.match(r"^\s*\w+\s*:", line) \
            else line
        line = line.strip().strip('"').strip()
        if line:
            return line
    return ""


def joined_lines(text: str, max_chars: int = 1500) -> str:
    """A multi-line reply as one message: a speaker prefix and wrapping quotes removed from the
    first line, the non-empty lines joined by spaces, cut at `max_chars`."""
    first = one_line(text)
    if not first:
        return ""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    rest = lines[1:] if lines else []
    return " ".join([first, *rest])[:max_chars]


class LLMTeammates:
    """Every member but the requester, simulated by a language model from its own documents."""

    def __init__(self, org: Organization, model: str, *, max_tokens: int = 160,
                 max_doc_chars: int = 6000):
        self.org = org
        self.model = model
        self.label = f"llm:{model}"
        self.max_tokens = max_tokens
        self.max_doc_chars = max_doc_chars

    def documents(self, member: str) -> str:
        text = "\n\n".join(render_document(d) for d in self.org.docs(member)) or "(none)"
        return text[: self.max_doc_chars]

    def reply(self, member: str, conversation: list[Message]) -> Request:
        """A chat: the member's persona and documents as the system message (the same for every
        message to that member, so the local backend reuses it), then the conversation with the
        agent's messages as the user's turns and the member's own replies as the assistant's."""
        p = self.org.person(member)
        system = prompt("teammate").format(
            full_name=p.full_name if p else member, user_id=member,
            documents=self.documents(member))
        chat = [{"role": "system", "content": system}]
        chat += [{"role": "user" if m.sender == AGENT else "assistant", "content": m.content}
                 for m in conversation]
        return Request(messages=tuple(chat), temperature=0.0, max_tokens=self.max_tokens)

    def clean(self, text: str) -> str:
        return joined_lines(text)


class TableServer:
    """Members that answer structured requests from their own rows (a labelled variant)."""

    label = "table-server"

    def __init__(self, org: Organization, *, max_rows: int = 50):
        self.org = org
        self.max_rows = max_rows
        self._notes = org.redirects()

    @cache  # noqa: B019 (one small database per member, for the life of the episode)
    def _db(self, member: str) -> sqlite3.Connection:
        return build_database(self.org, [member])

    def reply(self, member: str, conversation: list[Message]) -> str:
        if member in self._notes:
            note = next(d for d in self.org.docs(member))
            return f"{note.title}: {note.content}"
        request = conversation[-1].content.lower()
        conn = self._db(member)
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        asked = [t for t in tables if _mentions(request, t)]
        if not asked:
            return "Sorry, I don't have that information."
        parts = []
        for t in asked:
            cols = [c[1] for c in conn.execute(f'PRAGMA table_info("{t}")')]
            sql, args = f'SELECT * FROM "{t}"', []
            m = re.search(r"where\s+([\w ]+?)\s*=\s*['\"]?([^'\",;]+?)['\"]?\s*(?:$|[,;.])", request)
            if m:
                col = m[1].strip().replace(" ", "_")
                if col in cols:
                    sql += f' WHERE lower(CAST("{col}" AS TEXT)) = ?'
                    args.append(m[2].strip().lower())
            rows = conn.execute(sql + f" LIMIT {self.max_rows}", args).fetchall()
            parts.append(f"{t}: " + json.dumps([dict(zip(cols, r, strict=True)) for r in rows]))
        return " | ".join(parts)

    def clean(self, text: str) -> str:
        return text


def _mentions(request: str, table: str) -> bool:
    words = table.lower().split("_")
    name = " ".join(words)
    if name in request or table.lower() in request:
        return True
    stem = name.rstrip("s")
    return len(stem) > 3 and stem in request


class ScriptedRequester:
    """The requester of the tiny preset: her question when greeted, thanks afterwards."""

    label = "scripted"

    def __init__(self, question: str):
        self.question = question

    def reply(self, member: str, conversation: list[Message]) -> str:
        asked = any(m.sender == member for m in conversation)
        return THANKS if asked else self.question

    def clean(self, text: str) -> str:
        return text


class LLMRequester:
    """The requester simulated by a language model that knows her question (not its answer)."""

    def __init__(self, org: Organization, question: str, model: str, *, max_tokens: int = 80):
        self.org = org
        self.question = question
        self.label = f"llm:{model}"
        self.max_tokens = max_tokens

    def reply(self, member: str, conversation: list[Message]) -> Request:
        p = self.org.person(member)
        text = prompt("requester").format(
            full_name=p.full_name if p else member, user_id=member, question=self.question,
            conversation=_conversation(conversation, member))
        return Request.chat(text, temperature=0.0, max_tokens=self.max_tokens)

    def clean(self, text: str) -> str:
        return one_line(text)
