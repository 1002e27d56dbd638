"""A scripted fake language model for plumbing tests (never used for results)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lmlab.llm import Backend, CallStats, Completion, Request


class ScriptedLM(Backend):
    """Answers each request with `reply(request, call_index)`; records the requests it saw."""

    kind = "fake"

    def __init__(self, reply: Callable[[Request, int], str]):
        super().__init__("scripted")
        self.reply = reply
        self.seen: list[Request] = []

    def _generate(self, requests: list[Request], stats: CallStats) -> list[list[Completion]]:
        out = []
        for r in requests:
            self.seen.append(r)
            text = self.reply(r, len(self.seen) - 1)
            out.append([Completion(text=text, finish_reason="stop", prompt_tokens=10,
                                   completion_tokens=len(text.split()), latency_s=0.0,
                                   backend="fake", model="scripted", index=j, seed=r.seed)
                        for j in range(r.n)])
        return out


@pytest.fixture
def scripted():
    return ScriptedLM
