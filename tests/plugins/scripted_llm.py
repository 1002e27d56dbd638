"""A scripted, deliberately slow language model behind the spec `replay:scripted`, for the
kill-and-resume tests of LLM studies run through the real `lmlab` command (plumbing only, never
results). Loaded in a child process through LMLAB_PLUGINS, it wraps `lmlab.llm.get_backend`:
every other spec goes to the real one. Its calls are recorded like a real backend's (the
`Recorder` is the studies' resume point), and each call sleeps `DELAY` seconds so a test can
kill the run between two calls.
"""

from __future__ import annotations

import os
import time
from typing import Any

import lmlab.llm
from lmlab.llm import Backend, CallStats, Completion, Request
from lmlab.llm.replay import Recorder
from tests.plugins.scripted_replies import reply

SPEC = "replay:scripted"
DELAY = float(os.environ.get("LMLAB_SCRIPTED_DELAY", "0.3"))


class ScriptedSlowLM(Backend):
    kind = "fake"

    def __init__(self) -> None:
        super().__init__("scripted")

    def _generate(self, requests: list[Request], stats: CallStats) -> list[list[Completion]]:
        time.sleep(DELAY)
        return [[Completion(text=reply(r), finish_reason="stop", prompt_tokens=10,
                            completion_tokens=len(reply(r).split()), latency_s=0.0,
                            backend="fake", model="scripted", index=j, seed=r.seed)
                 for j in range(r.n)] for r in requests]


_real = lmlab.llm.get_backend


def get_backend(spec: str, *, run: Any = None, record: Any = None, **options: Any) -> Backend:
    if spec != SPEC:
        return _real(spec, run=run, record=record, **options)
    lm: Backend = ScriptedSlowLM()
    if record is not None:
        lm = Recorder(lm, record)
    return lm.attach(run) if run is not None else lm


lmlab.llm.get_backend = get_backend
