"""Recording any backend's calls and replaying them offline, bit for bit."""

from __future__ import annotations

import json

import pytest

from lmlab.errors import LmlabError
from lmlab.llm import Recorder, Request, describe_sources, get_backend

REQS = [
    Request.chat("Name a fruit.", n=3, max_tokens=5, seed=1, logprobs=True),
    Request(prompt="One, two,", max_tokens=4, temperature=0.0, hidden_layer=3),
]


def test_recorded_calls_replay_bit_identically(hf, tmp_path, monkeypatch) -> None:
    path = tmp_path / "calls.jsonl"
    rec = Recorder(hf, path)
    live = rec.generate(REQS)
    assert len(path.read_text().splitlines()) == 2  # one complete line per request
    replay = get_backend(f"replay:{path}")
    again = replay.generate(REQS)
    assert again == live  # every field: text, token counts, logprobs, hidden states, latency
    assert again[1][0].hidden_state == live[1][0].hidden_state and len(again[1][0].hidden_state) == 576
    assert replay.source == "hf:smollm2-135m-instruct"
    assert replay.usage.totals["replayed"] == 4 and replay.usage.totals["completion_tokens"] == sum(
        c.completion_tokens for cs in live for c in cs)
    assert describe_sources(path) == {"hf:smollm2-135m-instruct": {"requests": 2, "completions": 4}}

    # A recorder over an existing file is a cache: no model call for what it holds.
    def boom(*a, **k):
        raise AssertionError("the model was called")

    monkeypatch.setattr(hf.lm, "generate", boom)
    cached = Recorder(hf, path)
    assert cached.generate(REQS) == live
    assert cached.usage.totals["replayed"] == 4
    assert len(path.read_text().splitlines()) == 2


def test_repeated_unseeded_requests_replay_in_order(hf, tmp_path) -> None:
    path = tmp_path / "calls.jsonl"
    r = Request.chat("Tell me a word.", max_tokens=4)
    rec = Recorder(hf, path)
    first, second = rec.generate([r])[0], rec.generate([r])[0]
    assert first[0].seed != second[0].seed  # fresh samples for a repeated unseeded request
    replay = get_backend(f"replay:{path}")
    assert replay.generate([r])[0] == first
    assert replay.generate([r])[0] == second
    with pytest.raises(LmlabError) as e:
        replay.generate([r])
    msg = str(e.value)
    assert msg.startswith(f"replay miss: {path} has no recorded answer from hf:smollm2-135m-instruct")
    assert "chat 'Tell me a word.'" in msg and "call 3 of this request; 2 recorded" in msg
    assert "\n" not in msg


def test_a_miss_names_the_request_and_consumes_nothing(hf, tmp_path) -> None:
    path = tmp_path / "calls.jsonl"
    Recorder(hf, path).generate([REQS[1]])
    replay = get_backend(f"replay:{path}")
    other = Request(prompt="One, two,", max_tokens=4, temperature=0.0, hidden_layer=3, seed=9)
    with pytest.raises(LmlabError, match=r"replay miss: .*prompt 'One, two,' .*seed=9"):
        replay.generate([REQS[1], other])
    assert replay.generate([REQS[1]])[0][0].text  # the hit was not used up by the failed call


def test_torn_and_corrupt_files(hf, tmp_path) -> None:
    path = tmp_path / "calls.jsonl"
    live = Recorder(hf, path).generate([REQS[1]])
    good = path.read_text()
    path.write_text(good + good.splitlines()[0][:50])  # a run killed mid-write
    assert get_backend(f"replay:{path}").generate([REQS[1]]) == live
    path.write_text("{not json}\n" + good)
    with pytest.raises(LmlabError, match=r"calls.jsonl:1: not a recorded LLM call"):
        get_backend(f"replay:{path}")


def test_files_with_several_models_need_a_source(hf, tmp_path) -> None:
    path = tmp_path / "calls.jsonl"
    Recorder(hf, path).generate([REQS[1]])
    line = json.loads(path.read_text())
    line["backend"], line["model"] = "openai", "other-model"
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")
    with pytest.raises(LmlabError, match=r"several models \(hf:smollm2-135m-instruct, openai:other-model\)"):
        get_backend(f"replay:{path}")
    b = get_backend(f"replay:{path}#openai:other-model")
    assert b.generate([REQS[1]])[0][0].model == "smollm2-135m-instruct"  # completions as recorded
    with pytest.raises(LmlabError, match="holds no calls of 'hf:nope'"):
        get_backend(f"replay:{path}#hf:nope")
