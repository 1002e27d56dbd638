"""A scripted fake backend for plumbing tests only (never used for results)."""

from __future__ import annotations

from collections.abc import Callable

from lmlab.llm import Completion, Request
from lmlab.llm.backend import Backend, CallStats


class FakeLM(Backend):
    """Answers each request with `answer(request)`; remembers every request it saw."""

    kind = "fake"

    def __init__(self, answer: Callable[[Request], str], model: str = "fake-model"):
        super().__init__(model)
        self.answer = answer
        self.seen: list[Request] = []

    def _generate(self, requests: list[Request], stats: CallStats) -> list[list[Completion]]:
        out = []
        for r in requests:
            self.seen.append(r)
            text = self.answer(r)
            out.append([Completion(text, "stop", 10, len(text.split()), 0.0, self.kind, self.model)])
        return out
