"""The local backend on the embedded SmolLM2: batched, seeded, and faithful to the model."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.errors import LmlabError
from lmlab.llm import Request
from lmlab.llm.hf import HFBackend, _RowSampler, _top_p_filter

Q = "What is the capital of France?"


def _texts(completions) -> list[str]:
    return [c.text for c in completions]


@pytest.fixture
def generate_calls(hf, monkeypatch) -> list[int]:
    """Count `model.generate` calls and the rows of each."""
    calls: list[int] = []
    real = hf.lm.generate

    def spy(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(hf.lm, "generate", spy)
    return calls


# -- batching ---------------------------------------------------------------------------------


def test_samples_and_requests_share_one_generate_call(hf, generate_calls) -> None:
    reqs = [
        Request.chat(Q, n=3, max_tokens=5, seed=1),
        Request(prompt="Once upon a time", n=2, max_tokens=3, seed=2),
        Request.chat("Name a color.", n=1, max_tokens=4, seed=3, temperature=0.0),
    ]
    out = hf.generate(reqs)
    assert generate_calls == [6]  # 3 + 2 + 1 rows, one pass
    assert [len(c) for c in out] == [3, 2, 1]
    for r, comps in zip(reqs, out, strict=True):
        assert [c.index for c in comps] == list(range(r.n))
        for c in comps:
            assert (c.backend, c.model, c.seed) == ("hf", "smollm2-135m-instruct", r.seed)
            assert 1 <= c.completion_tokens <= r.max_tokens and c.prompt_tokens > 0
            assert c.finish_reason in ("stop", "length")
            assert c.latency_s > 0 and c.logprobs is None and c.hidden_state is None
    assert out[1][0].completion_tokens == 3 and out[1][0].finish_reason == "length"


def test_batch_size_splits_rows_into_chunks(hf, generate_calls, monkeypatch) -> None:
    monkeypatch.setattr(hf, "batch_size", 2)
    hf.generate([Request.chat(Q, n=3, max_tokens=2, seed=0), Request.chat("Hi", n=2, max_tokens=2, seed=0)])
    assert sorted(generate_calls) == [1, 2, 2]


def test_greedy_samples_are_computed_once(hf, generate_calls) -> None:
    out = hf.generate([Request.chat(Q, n=4, max_tokens=6, temperature=0.0)])[0]
    assert generate_calls == [1]
    assert len(set(_texts(out))) == 1 and [c.index for c in out] == [0, 1, 2, 3]


def test_sharing_each_prompts_cache_across_its_samples_changes_nothing(hf, monkeypatch) -> None:
    reqs = [
        Request.chat(Q, n=3, max_tokens=6, seed=2, logprobs=True),
        Request.chat("Write a short poem about the moon.", n=2, max_tokens=6, seed=3, logprobs=True),
    ]
    shared = hf.generate(reqs)
    monkeypatch.setattr(hf, "share_prompts", False)
    plain = hf.generate(reqs)
    for a, b in zip(shared, plain, strict=True):
        assert _texts(a) == _texts(b)
        for x, y in zip(a, b, strict=True):
            assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)


# -- seeds ------------------------------------------------------------------------------------


def test_same_seed_same_samples_in_any_batch(hf) -> None:
    target = Request.chat("Write one sentence about the sea.", n=4, max_tokens=8, seed=11)
    alone = hf.generate([target])[0]
    again = hf.generate([target])[0]
    longer = Request.chat("A much longer question, so that the target's rows are padded: " * 3,
                          n=2, max_tokens=3, seed=5)
    mixed = hf.generate([longer, target])[1]
    assert len(hf.encode(longer)) > len(hf.encode(target))
    assert _texts(alone) == _texts(again) == _texts(mixed)
    assert len(set(_texts(alone))) > 1  # the n samples are different samples
    other = hf.generate([Request.chat("Write one sentence about the sea.", n=4, max_tokens=8, seed=12)])[0]
    assert _texts(other) != _texts(alone)


def test_unseeded_requests_are_reproducible_per_backend_but_fresh_per_call(smol_folder) -> None:
    a, b = HFBackend("smollm2-135m-instruct", seed=3), HFBackend("smollm2-135m-instruct", seed=3)
    r = Request.chat("Say something.", n=2, max_tokens=6)
    a1, b1 = a.generate([r])[0], b.generate([r])[0]
    a2 = a.generate([r])[0]
    assert _texts(a1) == _texts(b1) and a1[0].seed == b1[0].seed
    assert a2[0].seed != a1[0].seed


# -- faithful to the model --------------------------------------------------------------------


def test_greedy_matches_transformers_generate_and_the_chat_template(hf) -> None:
    c = hf.generate([Request.chat(Q, max_tokens=8, temperature=0.0)])[0][0]
    text = hf.tokenizer.apply_chat_template([{"role": "user", "content": Q}], add_generation_prompt=True,
                                            tokenize=False)
    ids = hf.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    assert c.prompt_tokens == ids.shape[1]
    with torch.no_grad():
        ref = hf.lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                             do_sample=False, pad_token_id=hf.pad_id)
    expected = hf.tokenizer.decode(ref[0, ids.shape[1]:], skip_special_tokens=True)
    assert c.text == expected and "Paris" in c.text


def test_logprobs_are_the_models_own(hf) -> None:
    greedy = Request(prompt="The capital of France is", max_tokens=6, temperature=0.0, logprobs=True)
    sampled = Request(prompt="Once upon a time", n=2, max_tokens=5, temperature=0.8, seed=4, logprobs=True)
    g, s = hf.generate([greedy, sampled])
    c = g[0]
    prompt = torch.tensor([hf.tokenizer(greedy.prompt)["input_ids"]])
    with torch.no_grad():
        ids = hf.lm.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=6,
                             do_sample=False, pad_token_id=hf.pad_id)
        logp = torch.log_softmax(hf.lm(input_ids=ids).logits[0].float(), -1)
    P = prompt.shape[1]
    gen = ids[0, P:].tolist()[: c.completion_tokens]
    ref = [logp[P - 1 + t, tok].item() for t, tok in enumerate(gen)]
    assert c.logprobs == pytest.approx(ref, abs=1e-4)
    assert c.tokens == tuple(hf.tokenizer.decode([t]) for t in gen)
    for x in s:
        assert len(x.logprobs) == len(x.tokens) == x.completion_tokens
        assert all(lp <= 0 for lp in x.logprobs)
        if x.finish_reason == "length":
            assert "".join(x.tokens) == x.text


def test_hidden_states_of_the_prompt(hf) -> None:
    r = Request.chat(Q, max_tokens=2, temperature=0.0, hidden_layer=5)
    c = hf.generate([r, Request.chat("Hi", max_tokens=2, hidden_layer=-1)])
    h = torch.tensor(c[0][0].hidden_state)
    assert h.shape == (576,) and c[1][0].hidden_state is not None
    ids = torch.tensor([hf.encode(r)])
    with torch.no_grad():
        ref = hf.lm(input_ids=ids, output_hidden_states=True).hidden_states[5][0, -1]
    assert torch.allclose(h, ref, atol=1e-4)
    batch = hf.hidden_states([r, "Hi", "A longer second prompt, padded"], layer=5)
    assert batch.shape == (3, 576) and torch.allclose(batch[0], ref, atol=1e-4)
    mean = hf.hidden_states([r], layer=5, pool="mean")
    with torch.no_grad():
        ref_mean = hf.lm(input_ids=ids, output_hidden_states=True).hidden_states[5][0].mean(0)
    assert torch.allclose(mean[0], ref_mean, atol=1e-4)
    with pytest.raises(LmlabError, match="hidden layer 31 out of range"):
        hf.generate([Request.chat(Q, hidden_layer=31)])


def test_stop_strings_and_token_limits_per_request(hf) -> None:
    stop, length = hf.generate([
        Request(prompt="The capital of France is", max_tokens=12, temperature=0.0, stop=("."),),
        Request(prompt="The capital of France is", max_tokens=3, temperature=0.0),
    ])
    s, n = stop[0], length[0]
    assert s.finish_reason == "stop" and s.text == " Paris" and s.completion_tokens == 2
    assert n.finish_reason == "length" and n.completion_tokens == 3 and n.text.startswith(" Paris")


def test_end_of_text_finishes_with_stop(hf) -> None:
    c = hf.generate([Request.chat(Q, max_tokens=40, temperature=0.0)])[0][0]
    assert c.finish_reason == "stop" and c.completion_tokens < 40
    assert "<|im_end|>" not in c.text and c.text.strip().endswith(".")


def test_prompts_that_do_not_fit_and_models_without_a_chat_template(hf) -> None:
    with pytest.raises(LmlabError, match="exceeds smollm2-135m-instruct's context of 8192 tokens"):
        hf.generate([Request.chat(Q, max_tokens=9000)])
    tok = copy.deepcopy(hf.tokenizer)
    tok.chat_template = None
    bare = HFBackend.from_model(hf.lm, tok, "bare")
    with pytest.raises(LmlabError, match="model 'bare' has no chat template; send a raw prompt"):
        bare.generate([Request.chat(Q)])
    assert bare.generate([Request(prompt="Hello", max_tokens=2)])[0][0].model == "bare"


# -- the sampler itself -----------------------------------------------------------------------


def test_row_sampler_draws_from_the_tempered_distribution() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5]])
    temp, draws = 0.7, 4000
    gen = torch.Generator().manual_seed(0)
    sampler = _RowSampler([temp], [1.0], [gen], want_logprobs=True)
    counts = torch.zeros(5)
    chosen = []
    for _ in range(draws):
        out = sampler(None, logits.clone())
        chosen.append(int(out[0].argmax()))
        counts[chosen[-1]] += 1
        assert (out[0] == 0).sum() == 1 and torch.isinf(out[0]).sum() == 4
    p = torch.softmax(logits[0] / temp, -1)
    sd = torch.sqrt(p * (1 - p) / draws)
    assert torch.all((counts / draws - p).abs() < 4 * sd + 1e-3)
    lp = torch.log_softmax(logits[0], -1)  # recorded log-probabilities are the model's (T = 1)
    assert [x.item() for x in sampler.logprobs] == [lp[k].item() for k in chosen]


def test_greedy_rows_take_the_argmax_and_use_no_randomness() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0], [5.0, 0.0, 1.0]])
    out = _RowSampler([0.0, 0.0], [1.0, 1.0], [None, None], want_logprobs=False)(None, logits)
    assert out.argmax(-1).tolist() == [1, 0]


@given(
    st.lists(st.integers(-500, 500), min_size=2, max_size=8, unique=True).map(
        lambda xs: [x / 100 for x in xs]  # distinct logits: no ties in the ranking
    ),
    st.floats(0.05, 1.0),
)
@settings(max_examples=80, deadline=None)
def test_top_p_keeps_the_smallest_set_reaching_p(logits: list[float], top_p: float) -> None:
    z = torch.tensor([logits], dtype=torch.float64)
    kept = ~torch.isinf(_top_p_filter(z, torch.tensor([top_p], dtype=torch.float64)))[0]
    p = torch.softmax(z[0], -1)
    order = p.argsort(descending=True)
    k = int(kept.sum())
    assert kept[order[:k]].all()  # a prefix of the most likely tokens
    assert p[order[:k]].sum() >= top_p - 1e-9 or k == len(logits)
    assert k == 1 or p[order[: k - 1]].sum() < top_p + 1e-9  # and no smaller prefix would do
