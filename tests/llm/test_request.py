"""Requests and completions: validation at the boundary, exact JSON round trips, stable keys."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.errors import LmlabError
from lmlab.llm import Completion, Request, sample_seed

texts = st.text(min_size=1, max_size=40)
messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=40)}),
    min_size=1, max_size=4,
)
requests = st.builds(
    lambda chat, msgs, prompt, **kw: Request(messages=msgs, **kw) if chat else Request(prompt=prompt, **kw),
    chat=st.booleans(),
    msgs=messages,
    prompt=texts,
    n=st.integers(1, 16),
    temperature=st.floats(0, 2),
    top_p=st.floats(0.01, 1),
    max_tokens=st.integers(1, 4096),
    stop=st.lists(texts, max_size=3).map(tuple),
    seed=st.none() | st.integers(0, 2**40),
    logprobs=st.booleans(),
    hidden_layer=st.none() | st.integers(-3, 30),
)
finite = st.floats(allow_nan=False, allow_infinity=False, width=32) | st.floats(allow_nan=False, allow_infinity=False)


@given(requests)
@settings(max_examples=60, deadline=None)
def test_request_round_trips_through_json_with_a_stable_key(r: Request) -> None:
    back = Request.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r and back.key() == r.key()


@given(st.lists(finite, max_size=20), st.lists(finite, max_size=20))
@settings(max_examples=60, deadline=None)
def test_completion_floats_round_trip_exactly(logprobs: list[float], hidden: list[float]) -> None:
    c = Completion(text="x", finish_reason="stop", prompt_tokens=3, completion_tokens=len(logprobs),
                   latency_s=0.125, backend="hf", model="m", logprobs=tuple(logprobs),
                   tokens=tuple("t" for _ in logprobs), hidden_state=tuple(hidden))
    assert Completion.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_request_key_is_a_golden_value() -> None:
    # The key names recorded calls in replay files: a silent change would orphan them all.
    r = Request.chat("What is 2+2?", n=2, temperature=0.5, max_tokens=16, seed=7)
    assert r.to_dict() == {
        "messages": [{"role": "user", "content": "What is 2+2?"}], "prompt": None, "n": 2,
        "temperature": 0.5, "top_p": 1.0, "max_tokens": 16, "stop": [], "seed": 7,
        "logprobs": False, "hidden_layer": None,
    }
    assert r.key() == "02132f0cf5e1a396de8b511f8eb9557d8e9ac24cb6063d4c3f036f936f752903"
    assert r.key() != Request.chat("What is 2+2?", n=2, temperature=0.5, max_tokens=16, seed=8).key()


def test_chat_helper_and_stop_string() -> None:
    r = Request.chat("hi", system="be brief", stop=".")
    assert r.messages == ({"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"})
    assert r.stop == (".",) and r.is_chat
    assert not Request(prompt="x").is_chat
    assert "chat 'hi'" in r.describe() and "seed=None" in r.describe()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of messages"),
        ({"prompt": "a", "messages": [{"role": "user", "content": "b"}]}, "exactly one of messages"),
        ({"prompt": "a", "n": 0}, "n must be an integer >= 1"),
        ({"prompt": "a", "n": True}, "n must be an integer >= 1"),
        ({"prompt": "a", "temperature": -0.1}, "temperature"),
        ({"prompt": "a", "top_p": 0.0}, "top_p"),
        ({"prompt": "a", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "a", "stop": ("",)}, "stop"),
        ({"prompt": "a", "seed": -1}, "seed"),
        ({"prompt": 3}, "prompt must be a string"),
        ({"messages": []}, "messages is empty"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "unknown role 'robot'"),
        ({"messages": [{"content": "x"}]}, "must be a dict with 'role' and 'content'"),
        ({"messages": "hello"}, "list of"),
    ],
)
def test_bad_requests_are_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(LmlabError, match=message) as e:
        Request(**kwargs)
    assert "\n" not in str(e.value)


def test_unknown_fields_in_a_recorded_request_are_rejected() -> None:
    d = Request(prompt="a").to_dict() | {"best_of": 3}
    with pytest.raises(LmlabError, match="unknown request fields: best_of"):
        Request.from_dict(d)


def test_sample_seeds_keep_the_first_and_spread_the_rest() -> None:
    assert sample_seed(123, 0) == 123
    seeds = [sample_seed(123, j) for j in range(1, 200)]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2**31 for s in seeds)
    assert seeds == [sample_seed(123, j) for j in range(1, 200)]
    assert sample_seed(124, 1) not in seeds
