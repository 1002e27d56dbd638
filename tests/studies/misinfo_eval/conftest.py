"""A scripted fake language model for plumbing tests (never used for results)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lmlab.llm import Backend, CallStats, Completion, Request
from lmlab.studies.misinfo_eval import conditions as C
from lmlab.studies.misinfo_eval.data import write_feeds
from lmlab.studies.misinfo_eval.synthetic import synthetic_feeds


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


def _make_folder(path, n_feeds=3, personalized=True):
    feeds = synthetic_feeds(n_feeds, seed=5)
    write_feeds(path / "feeds.csv", feeds)
    for c in C.TEMPLATE_CONDITIONS[1:]:
        C.write_condition_file(path, c, C.template_rows(c, feeds))
    C.write_condition_file(path, "llm", [
        C.fill_feed("llm", f, [C.explained_text(p.label, f"Generic {p.post_id}.") for p in f.posts])
        for f in feeds])
    if personalized:
        rows = []
        for key in ("liberal_white_college_male_18-29", "moderate_asian_college_female_45-64"):
            for f in feeds:
                texts = [C.explained_text(p.label, f"For {key}: {p.post_id}.") for p in f.posts]
                rows.append({"group": key, **C.fill_feed("personalized", f, texts)})
        C.write_condition_file(path, "personalized", rows, grouped=True)
    return feeds



@pytest.fixture
def make_folder():
    """Write a feeds folder (synthetic feeds, every condition but mrf) into a path."""
    return _make_folder
