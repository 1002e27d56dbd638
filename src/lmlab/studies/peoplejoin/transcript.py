"""Episode records: every message, every agent step, and what the episode is scored against.

A `Transcript` is plain data that round-trips through JSON exactly (``from_dict(to_dict(t)) ==
t``), so any metric can be recomputed from the files of a finished run without re-running it.
`Transcript.digest()` hashes what a judge reads (the messages) and keys the judge cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lmlab.errors import LmlabError
from lmlab.runs import atomic_write_text

__all__ = ["AGENT", "Message", "Step", "Transcript"]

AGENT = "agent"  # the sender/recipient id of the assistant itself


@dataclass(frozen=True)
class Message:
    """One delivered message. `kind` is ``message`` or ``session_completed``."""

    sender: str
    recipient: str
    content: str
    turn: int
    time_s: float = 0.0
    kind: str = "message"


@dataclass(frozen=True)
class Step:
    """One agent action: the model's raw output, the action it parsed to, what it observed."""

    turn: int
    raw: str
    action: str
    observation: str
    valid: bool


@dataclass
class Transcript:
    """A whole episode of one item under one agent."""

    datum_id: str
    tenant_id: str
    question: str
    agent: str  # the agent's name (reactive, message-all, oracle-contacts, ...)
    agent_model: str  # backend spec, or "scripted"
    teammates: str  # teammate kind and model, e.g. "llm:hf:qwen..." or "table-server"
    requester_sim: str  # how the requester was simulated (scripted, or llm:MODEL)
    reference_answer: str
    reference_people: tuple[str, ...]
    item_kind: str
    requester_id: str = "alice"
    messages: list[Message] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    end_reason: str = ""
    turns: int = 0
    wall_s: float = 0.0
    tokens: dict[str, int] = field(default_factory=dict)  # role -> prompt+completion tokens
    llm_calls: dict[str, int] = field(default_factory=dict)  # role -> calls

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reference_people"] = list(self.reference_people)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        names = {f.name for f in fields(cls)}
        missing = {"datum_id", "messages", "steps"} - set(d)
        if missing:
            raise LmlabError(f"transcript: missing field(s) {', '.join(sorted(missing))}")
        d = {k: v for k, v in d.items() if k in names}
        d["messages"] = [Message(**m) for m in d.get("messages", [])]
        d["steps"] = [Step(**s) for s in d.get("steps", [])]
        d["reference_people"] = tuple(d.get("reference_people", ()))
        return cls(**d)

    def save(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        atomic_write_text(p, json.dumps(self.to_dict(), ensure_ascii=False, indent=1))
        return p

    @classmethod
    def load(cls, path: str | os.PathLike) -> Transcript:
        p = Path(path)
        try:
            return cls.from_dict(json.loads(p.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError) as e:
            raise LmlabError(f"{p}: not a transcript ({type(e).__name__}: {e})") from None

    def digest(self) -> str:
        """SHA-256 of the messages (sender, recipient, content, kind): what a judge reads."""
        blob = json.dumps([[m.sender, m.recipient, m.content, m.kind] for m in self.messages],
                          ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def render(self) -> str:
        """The conversation as ``sender-to-recipient: text`` lines (the judge's view)."""
        return "\n".join(f"{m.sender}-to-{m.recipient}: {m.content}" for m in self.messages
                         if m.kind == "message")
