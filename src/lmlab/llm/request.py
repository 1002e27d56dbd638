"""What goes into a language model and what comes out: `Request` and `Completion`.

A `Request` is one prompt (chat messages, or a raw text prompt) plus its sampling settings; a
backend answers it with `n` `Completion`s. Both are plain frozen dataclasses that round-trip
through JSON exactly (``to_dict`` / ``from_dict``), which is what the replay cache stores.

Seeds: sample ``j`` of a request with seed ``s`` uses the seed ``sample_seed(s, j)``: ``s`` itself
for the first sample and a seed derived from ``(s, j)`` for the others. The local backend seeds
each sample's random stream from ``(s, j)``; the OpenAI-compatible backend sends
``sample_seed(s, j)`` when it has to ask for samples one call at a time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from lmlab.errors import LmlabError

ROLES = ("system", "user", "assistant", "tool", "developer")
FINISH_REASONS = ("stop", "length")


def sample_seed(seed: int, j: int) -> int:
    """The seed of sample `j` of a request seeded with `seed` (`seed` itself for j == 0)."""
    if j == 0:
        return seed
    return int(np.random.SeedSequence([seed % 2**63, j]).generate_state(1, dtype=np.uint32)[0] >> 1)


def default_seed(seed: int, call: int, i: int) -> int:
    """The seed a local backend gives request `i` of its call number `call` when the request has
    none: derived from the backend's own `seed`, so repeated calls draw fresh samples and a whole
    run is still reproducible."""
    return int(np.random.SeedSequence([seed, call, i]).generate_state(1, dtype=np.uint32)[0] >> 1)


def _check_messages(messages: Any) -> tuple[dict[str, str], ...]:
    if isinstance(messages, str | bytes) or not hasattr(messages, "__iter__"):
        raise LmlabError("messages must be a list of {'role': ..., 'content': ...} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise LmlabError(f"message {i} must be a dict with 'role' and 'content', got {m!r}")
        if m["role"] not in ROLES:
            raise LmlabError(f"message {i} has unknown role {m['role']!r}; use one of {', '.join(ROLES)}")
        if not isinstance(m["content"], str):
            raise LmlabError(f"message {i} content must be a string, got {type(m['content']).__name__}")
        out.append({"role": str(m["role"]), "content": m["content"]})
    if not out:
        raise LmlabError("messages is empty: a chat request needs at least one message")
    return tuple(out)


@dataclass(frozen=True)
class Request:
    """One prompt and how to sample it.

    Exactly one of `messages` (chat, rendered with the model's chat template) and `prompt` (raw
    text, continued as is) is given. `n` samples are drawn; temperature 0 is greedy decoding.
    `stop` strings end a sample (the stop string itself is not part of the text). `seed` makes
    the samples reproducible; None lets the backend choose (the local backend then derives one
    from its own seed and a call counter, so a run is still reproducible). `logprobs` asks for
    the log-probability of each generated token; `hidden_layer` asks the local backend for the
    hidden state of the prompt's last token after that layer (0: the embeddings, i: block i,
    -1: the last layer, as in `transformers`' ``output_hidden_states``).
    """

    messages: tuple[dict[str, str], ...] | None = None
    prompt: str | None = None
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    hidden_layer: int | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise LmlabError("a request needs exactly one of messages (chat) or prompt (raw text)")
        if self.messages is not None:
            object.__setattr__(self, "messages", _check_messages(self.messages))
        elif not isinstance(self.prompt, str):
            raise LmlabError(f"prompt must be a string, got {type(self.prompt).__name__}")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(self.stop))
        checks = [
            (isinstance(self.n, int) and not isinstance(self.n, bool) and self.n >= 1,
             f"n must be an integer >= 1, got {self.n!r}"),
            (isinstance(self.max_tokens, int) and self.max_tokens >= 1,
             f"max_tokens must be an integer >= 1, got {self.max_tokens!r}"),
            (isinstance(self.temperature, int | float) and 0.0 <= self.temperature <= 100.0,
             f"temperature must be a number in [0, 100], got {self.temperature!r}"),
            (isinstance(self.top_p, int | float) and 0.0 < self.top_p <= 1.0,
             f"top_p must be a number in (0, 1], got {self.top_p!r}"),
            (all(isinstance(s, str) and s for s in self.stop),
             f"stop must be non-empty strings, got {self.stop!r}"),
            (self.seed is None or (isinstance(self.seed, int) and self.seed >= 0),
             f"seed must be an integer >= 0 or None, got {self.seed!r}"),
            (self.hidden_layer is None or isinstance(self.hidden_layer, int),
             f"hidden_layer must be an integer or None, got {self.hidden_layer!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise LmlabError(msg)
        object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "top_p", float(self.top_p))

    @classmethod
    def chat(cls, text: str, *, system: str | None = None, **settings: Any) -> Request:
        """A chat request with one user message (and an optional system message)."""
        msgs = ([{"role": "system", "content": system}] if system is not None else [])
        return cls(messages=(*msgs, {"role": "user", "content": text}), **settings)

    @property
    def is_chat(self) -> bool:
        """Whether this is a chat request (messages) rather than a raw prompt."""
        return self.messages is not None

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-able dict (lists for tuples), the inverse of `from_dict`."""
        d = asdict(self)
        d["messages"] = [dict(m) for m in self.messages] if self.messages is not None else None
        d["stop"] = list(self.stop)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Request:
        """Rebuild a request from `to_dict`'s output."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise LmlabError(f"unknown request fields: {', '.join(sorted(unknown))}")
        d = dict(d)
        if d.get("messages") is not None:
            d["messages"] = tuple(d["messages"])
        d["stop"] = tuple(d.get("stop") or ())
        return cls(**d)

    def key(self) -> str:
        """A stable hash of every field (the request's identity in the replay cache)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def describe(self, width: int = 60) -> str:
        """A one-line summary for error messages: the start of the last message and the settings."""
        text = self.messages[-1]["content"] if self.messages is not None else self.prompt
        text = " ".join(str(text).split())
        if len(text) > width:
            text = text[: width - 3] + "..."
        kind = "chat" if self.is_chat else "prompt"
        return (
            f"{kind} {text!r} (n={self.n}, temperature={self.temperature:g}, top_p={self.top_p:g}, "
            f"max_tokens={self.max_tokens}, seed={self.seed})"
        )


@dataclass(frozen=True)
class Completion:
    """One sampled answer, with what it cost and where it came from.

    `finish_reason` is ``stop`` (end of text or a stop string) or ``length`` (`max_tokens` reached),
    or what a server reported. `prompt_tokens` is the length of the prompt as the model saw it;
    `completion_tokens` the number of tokens generated (for servers that answer several samples
    at once and report only a total, the total is split across them). `latency_s` is the wall
    time of the backend call that produced it (shared by the completions of one batched call).
    `logprobs` (with the matching `tokens`) are the model's log-probabilities of the generated
    tokens, when asked for and given; `hidden_state` the requested hidden state of the prompt.
    """

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    backend: str
    model: str
    index: int = 0
    seed: int | None = None
    logprobs: tuple[float, ...] | None = None
    tokens: tuple[str, ...] | None = None
    hidden_state: tuple[float, ...] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-able dict; floats round-trip exactly through JSON."""
        d = asdict(self)
        for k in ("logprobs", "tokens", "hidden_state"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Completion:
        """Rebuild a completion from `to_dict`'s output."""
        d = dict(d)
        for k in ("logprobs", "tokens", "hidden_state"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


def as_requests(requests: Request | str | list | tuple) -> list[Request]:
    """Normalize one request, one chat text, or a sequence of them into a list of requests."""
    if isinstance(requests, Request | str):
        requests = [requests]
    out = []
    for r in requests:
        if isinstance(r, str):
            out.append(Request.chat(r))
        elif isinstance(r, Request):
            out.append(r)
        else:
            raise LmlabError(f"expected a Request or a string, got {type(r).__name__}")
    return out
