"""The llama.cpp backend on the embedded SmolLM2's GGUF (Q4_1, from its wheel): same requests,
same completions' shape, the hf backend's exact prompt tokens, and llama.cpp's prefix reuse."""

from __future__ import annotations

import pytest

from lmlab.errors import LmlabError
from lmlab.llm import Request, get_backend, parse_spec
from lmlab.llm.llamacpp import LlamaCppBackend, gguf_file

SMOL = "smollm2-135m-instruct"
SYSTEM = ("You are an agent. Tools: search(query), message(person, text), finish(answer). "
          "One tool call per turn. Colleagues: Ana (budget), Ben (hiring), Chen (pricing).")


@pytest.fixture(scope="module")
def lcpp() -> LlamaCppBackend:
    backend = get_backend(f"llamacpp:{SMOL}", threads=1)
    yield backend
    backend.close()


@pytest.fixture
def evaluated(lcpp, monkeypatch) -> list[int]:
    """How many tokens llama.cpp reads (evaluates) per eval call."""
    counts: list[int] = []
    real = lcpp.llm.eval

    def spy(tokens):
        counts.append(len(tokens))
        return real(tokens)

    monkeypatch.setattr(lcpp.llm, "eval", spy)
    return counts


def test_spec_and_model_resolution() -> None:
    assert parse_spec("llamacpp").target == "qwen2.5-coder-0.5b-instruct"
    assert parse_spec(f"llamacpp:{SMOL}").kind == "llamacpp"
    assert gguf_file(SMOL).name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(LmlabError, match="neither a catalog model"):
        gguf_file("no-such-model")
    with pytest.raises(LmlabError, match="unknown option"):
        get_backend(f"llamacpp:{SMOL}", batch_size=4)


def test_prompt_tokens_equal_the_hf_backends(lcpp, hf) -> None:
    reqs = [
        Request.chat("What is the capital of France?"),
        Request.chat("Hi", system="Be brief."),
        Request(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                          {"role": "user", "content": "c"}]),
    ]
    for r in reqs:
        assert lcpp.encode(r) == hf.encode(r)


def test_completions_greedy_sampled_stop_and_errors(lcpp) -> None:
    greedy = lcpp.generate([Request.chat("Name a color.", n=3, temperature=0.0, max_tokens=6)])[0]
    assert len({c.text for c in greedy}) == 1 and [c.index for c in greedy] == [0, 1, 2]
    c = greedy[0]
    assert (c.backend, c.model) == ("llamacpp", SMOL) and 1 <= c.completion_tokens <= 6
    assert c.finish_reason in ("stop", "length") and c.prompt_tokens > 10
    req = Request.chat("Name a prime.", n=3, temperature=1.0, max_tokens=8, seed=3)
    a, b = lcpp.generate([req])[0], lcpp.generate([req])[0]
    assert [x.text for x in a] == [x.text for x in b]  # seeded: reproducible
    assert len({x.text for x in a}) > 1  # three different samples
    raw = lcpp.generate([Request(prompt="One, two, three,", max_tokens=20, temperature=0.0,
                                 stop=(" six",))])[0][0]
    assert raw.finish_reason == "stop" and " six" not in raw.text and "five" in raw.text
    with pytest.raises(LmlabError, match="no logprobs or hidden states"):
        lcpp.generate([Request.chat("x", logprobs=True)])
    with pytest.raises(LmlabError, match="exceeds the llamacpp context"):
        lcpp.generate([Request.chat("x", max_tokens=5000)])


def test_next_agent_turn_reads_only_its_new_tokens(lcpp, evaluated) -> None:
    first = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Who owns pricing?"}]
    second = [*first, {"role": "assistant", "content": "message(Chen, Do you own pricing?)"},
              {"role": "user", "content": "Observation: Chen says yes."}]
    n1 = len(lcpp.encode(Request(messages=first)))
    n2 = len(lcpp.encode(Request(messages=second)))
    lcpp.generate([Request(messages=[{"role": "user", "content": "unrelated"}], max_tokens=2, temperature=0.0)])
    evaluated.clear()
    lcpp.generate([Request(messages=first, max_tokens=1, temperature=0.0)])
    read_first = sum(evaluated)
    evaluated.clear()
    lcpp.generate([Request(messages=second, max_tokens=1, temperature=0.0)])
    read_second = sum(evaluated)
    assert read_first >= n1 - 5  # nearly all of it: only the template's first tokens were shared
    assert read_second <= n2 - n1 + 2  # the new turn, not the whole conversation
