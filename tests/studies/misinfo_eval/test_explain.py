"""Explanations: word limit and no-AI check with regeneration, recorded and replayable."""

from __future__ import annotations

import pytest

from lmlab.llm import get_backend
from lmlab.llm.replay import Recorder
from lmlab.studies.misinfo_eval.explain import (
    clean,
    generate_explanations,
    mentions_ai,
    problems,
    repair,
    word_count,
)


@pytest.mark.parametrize("text", [
    "As an AI, I think this is false.", "An artificial intelligence would say so.",
    "Our language model checked it.", "A.I. systems agree.", "Ask any chatbot.", "GPT says no.",
])
def test_ai_mentions_are_caught(text):
    assert mentions_ai(text)


@pytest.mark.parametrize("text", [
    "The aid package was approved.", "Officials said it was fair.", "Said the mayor.",
    "This headline is false because no such tunnels exist.",
])
def test_plain_text_is_not_an_ai_mention(text):
    assert not mentions_ai(text)


def test_problems_and_repair():
    long = " ".join(["word"] * 120) + "."
    assert problems(long) == ["120 words > 100"]
    assert word_count(repair(long)) <= 100
    fixed = repair("It is false. As an AI I know. The tunnels do not exist.")
    assert fixed == "It is false. The tunnels do not exist."
    assert clean('Explanation: "It is true."') == "It is true."


def test_failures_are_regenerated_with_new_seeds_then_repaired(scripted):
    def reply(req, i):
        prompt = req.messages[-1]["content"]
        if "good" in prompt:
            return "Short and fine."
        if "second" in prompt:  # fails once (mentions AI), then passes
            return "As an AI, no." if i < 3 else "Fine the second time."
        if "hopeless" in prompt:
            return "As an AI, I cannot say."
        return "As an AI model I say so. " + " ".join(["x"] * 150)  # always fails

    lm = scripted(reply)
    out = generate_explanations(lm, [("a", "good"), ("b", "second"), ("c", "bad"),
                                         ("d", "hopeless")], seed=1, attempts=3)
    assert [e.attempts for e in out] == [1, 2, 3, 3]
    assert [e.repaired for e in out] == [False, False, True, True]
    assert [e.failed for e in out] == [False, False, False, True]
    assert out[1].text == "Fine the second time."
    assert not problems(out[2].text) and out[2].words == 100
    seeds = [r.seed for r in lm.seen if "second" in r.messages[-1]["content"]]
    assert len(set(seeds)) == 2  # a new seed for the retry


def test_generation_is_recorded_and_replays_offline(scripted, tmp_path):
    lm = Recorder(scripted(lambda r, i: f"Because {i}."), tmp_path / "calls.jsonl")
    first = generate_explanations(lm, [("a", "p1"), ("b", "p2")], seed=0)
    replay = get_backend(f"replay:{tmp_path / 'calls.jsonl'}")
    again = generate_explanations(replay, [("a", "p1"), ("b", "p2")], seed=0)
    assert [e.text for e in first] == [e.text for e in again] == ["Because 0.", "Because 1."]
