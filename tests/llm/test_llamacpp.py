"""The llamacpp backend's plumbing, on a stand-in `llama_cpp` module (CI does not compile it).

`tests.llm.fake_llama_cpp` answers greedy requests with its script ``Abc-42;XyZ!`` and end of
text, records the samplers the backend builds and the tokens each eval reads.
"""

from __future__ import annotations

import math
import sys

import pytest

from lmlab.errors import LmlabError
from lmlab.llm import Request, get_backend, parse_spec, sample_seed
from lmlab.llm.llamacpp import LlamaCppBackend, render_chat
from tests.llm import fake_llama_cpp as fake


@pytest.fixture
def llama_cpp(monkeypatch):
    """The stand-in module, importable as `llama_cpp`, its records reset."""
    fake.reset()
    monkeypatch.setitem(sys.modules, "llama_cpp", fake)
    monkeypatch.delenv("LMLAB_TORCH_THREADS", raising=False)
    return fake


@pytest.fixture
def gguf(tmp_path):
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture
def lm(llama_cpp, gguf):
    backend = get_backend(f"llamacpp:{gguf}", threads=2, n_ctx=1024)
    yield backend
    backend.close()


def test_specs_name_a_catalog_model_or_a_gguf_file() -> None:
    assert parse_spec("llamacpp:qwen2.5-coder-0.5b-instruct").target == "qwen2.5-coder-0.5b-instruct"
    assert parse_spec("llamacpp").target == "smollm2-135m-instruct"
    assert parse_spec("LLAMACPP:/m/x.gguf") == parse_spec("llamacpp:/m/x.gguf")
    assert parse_spec("llamacpp:/m/x.gguf").kind == "llamacpp"


def test_a_missing_package_is_one_line_naming_the_extra(monkeypatch, gguf) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails
    with pytest.raises(LmlabError) as e:
        get_backend(f"llamacpp:{gguf}")
    assert str(e.value) == "llama_cpp is not installed; install it with: pip install 'lmlab[llamacpp]'"


def test_the_missing_package_through_the_command_line(cli, monkeypatch, gguf) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    r = cli("llm", "chat", "--model", f"llamacpp:{gguf}", "Hi")
    assert r.code == 2 and r.out == "" and r.err.count("\n") == 1
    assert "pip install 'lmlab[llamacpp]'" in r.err


def test_bad_models_and_options_are_one_line(llama_cpp, tmp_path) -> None:
    with pytest.raises(LmlabError, match="no GGUF file at"):
        get_backend(f"llamacpp:{tmp_path / 'missing.gguf'}")
    with pytest.raises(LmlabError, match="unknown model 'no-such-model'; the catalog has"):
        get_backend("llamacpp:no-such-model")
    with pytest.raises(LmlabError, match="unknown option"):
        get_backend(f"llamacpp:{tmp_path / 'x.gguf'}", batch_size=4)
    with pytest.raises(LmlabError, match="threads must be >= 0"):
        get_backend(f"llamacpp:{tmp_path / 'x.gguf'}", threads=-1)
    assert fake.MADE == []  # nothing was loaded


def test_a_catalog_id_runs_the_gguf_the_catalog_keeps(llama_cpp, gguf, monkeypatch) -> None:
    from lmlab.models import EMBEDDED

    asked = []
    monkeypatch.setattr(EMBEDDED["qwen2.5-coder-0.5b-instruct"], "ensure_gguf",
                        lambda *a, **k: asked.append(1) or gguf)
    with get_backend("llamacpp:Qwen2.5-Coder-0.5B-Instruct") as lm:
        assert lm.source == "llamacpp:qwen2.5-coder-0.5b-instruct" and lm.path == gguf
    assert asked == [1] and fake.MADE[0]["model_path"] == str(gguf)


def test_threads_and_context_reach_llama_cpp(llama_cpp, gguf, monkeypatch) -> None:
    import torch

    LlamaCppBackend(gguf, threads=2, n_ctx=300).close()
    assert {k: fake.MADE[-1][k] for k in ("n_threads", "n_threads_batch", "n_ctx")} == {
        "n_threads": 2, "n_threads_batch": 2, "n_ctx": 300}
    LlamaCppBackend(gguf).close()  # default: the process's torch thread count
    assert fake.MADE[-1]["n_threads"] == torch.get_num_threads()
    monkeypatch.setenv("LMLAB_TORCH_THREADS", "3")  # forced, as for the hf backend's torch
    LlamaCppBackend(gguf, threads=1).close()
    assert fake.MADE[-1]["n_threads"] == 3


def test_greedy_answers_with_end_of_text_stop_strings_and_token_limits(lm) -> None:
    eot, stop, short, raw = (c[0] for c in lm.generate([
        Request.chat("Hi", temperature=0),
        Request.chat("Hi", temperature=0, stop=(";", "Z")),
        Request.chat("Hi", temperature=0, max_tokens=3),
        Request(prompt="Say it.", temperature=0),
    ]))
    assert (eot.text, eot.finish_reason, eot.completion_tokens) == ("Abc-42;XyZ!", "stop", 12)  # EOS counts
    assert (stop.text, stop.finish_reason, stop.completion_tokens) == ("Abc-42", "stop", 7)
    assert (short.text, short.finish_reason, short.completion_tokens) == ("Abc", "length", 3)
    assert raw.text == "Abc-42;XyZ!"
    assert all(c.freed for c in fake.CHAINS) and [c.steps for c in fake.CHAINS[:1]] == [[("greedy", 0.0)]]


def test_chat_prompts_go_through_the_models_template(lm) -> None:
    req = Request.chat("Hi", system="Be brief.", temperature=0, max_tokens=1)
    expected = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    ids = lm.encode(req)
    assert ids == lm.llm.tokenize(expected.encode(), special=True)
    assert ids[0] == fake.IM_START and ids.count(fake.IM_START) == 3  # special tokens parsed
    assert lm.generate([req])[0][0].prompt_tokens == len(ids)


@pytest.mark.parametrize("system", [None, "You are terse."])
def test_render_chat_matches_transformers(system) -> None:
    from transformers.utils.chat_template_utils import render_jinja_template

    template = (
        "{%- if messages[0]['role'] == 'system' %}{{ '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
        "{%- else %}{{ '<|im_start|>system\\nYou are a default.<|im_end|>\\n' }}{%- endif %}\n"
        "{%- for m in messages %}{%- if m.role != 'system' %}"
        "{{ '<|im_start|>' + m.role + '\\n' + m.content | trim + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}\n"
        "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}\n"
    )
    msgs = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": "  Ünïcode — and {{braces}}  "},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "again"},
    ]
    ours = render_chat(template, msgs)
    theirs, _ = render_jinja_template([msgs], chat_template=template, add_generation_prompt=True)
    assert ours == theirs[0]
    assert ours.endswith("<|im_start|>assistant\n") and ("You are a default." in ours) == (system is None)
    with pytest.raises(LmlabError, match="chat template failed"):
        render_chat("{{ raise_exception('no tools here') }}", msgs)


def test_samples_draw_from_their_own_seeds(lm) -> None:
    req = Request.chat("Hi", n=4, temperature=1.5, top_p=0.9, seed=7, max_tokens=6)
    first = lm.generate([req])[0]
    seeds = [c.seed for c in fake.CHAINS]
    assert seeds == [sample_seed(7, j) for j in range(4)] and len(set(seeds)) == 4
    assert fake.CHAINS[0].steps[:2] == [("temp", 1.5), ("top_p", 0.9)]  # temperature before top-p
    assert [c.index for c in first] == [0, 1, 2, 3] and {c.seed for c in first} == {7}
    assert len({c.text for c in first}) > 1  # distinct streams give distinct samples
    again = lm.generate([req])[0]
    assert [c.text for c in again] == [c.text for c in first]  # the same seed, the same samples
    # no seed: one derived from the backend's seed and a call counter, fresh on each call
    unseeded = Request.chat("Hi", n=2, temperature=1.5, max_tokens=6)
    a, b = lm.generate([unseeded])[0], lm.generate([unseeded])[0]
    assert a[0].seed != b[0].seed and a[0].seed is not None


def test_a_greedy_request_is_decoded_once_for_all_its_samples(lm) -> None:
    out = lm.generate([Request.chat("Hi", n=3, temperature=0)])[0]
    assert len(fake.CHAINS) == 1 and [c.text for c in out] == ["Abc-42;XyZ!"] * 3
    assert [c.index for c in out] == [0, 1, 2]


def test_the_kv_cache_keeps_the_prefix_the_next_call_shares(lm) -> None:
    turn = [{"role": "user", "content": "Find the owner of the pricing files."}]
    first = lm.generate([Request(messages=turn, temperature=0, max_tokens=4)])[0][0]
    n_prompt = first.prompt_tokens
    assert lm.llm.evaluated[0] == n_prompt  # the whole prompt, once
    lm.llm.evaluated.clear()
    turn2 = [*turn, {"role": "assistant", "content": first.text}, {"role": "user", "content": "Next."}]
    second = lm.generate([Request(messages=turn2, temperature=0, max_tokens=4)])[0][0]
    # the cache held the first prompt and the answer's tokens read back (all but the last):
    # the next turn reads only what follows them
    assert lm.llm.evaluated[0] == second.prompt_tokens - (n_prompt + first.completion_tokens - 1)
    lm.llm.evaluated.clear()
    lm.generate([Request(messages=turn2, n=3, temperature=1.0, seed=1, max_tokens=2)])
    assert lm.llm.evaluated[::2] == [1, 1, 1]  # each sample re-reads the prompt's last token only
    lm.reuse_prefix = False
    lm.llm.evaluated.clear()
    lm.generate([Request(messages=turn2, temperature=0, max_tokens=1)])
    assert lm.llm.evaluated == [second.prompt_tokens]


def test_usage_is_accounted_per_call(lm) -> None:
    out = lm.generate([Request.chat("Hi", n=2, temperature=1.0, seed=3, max_tokens=5),
                       Request.chat("Hello there", temperature=0, stop=(";",))])
    u = lm.usage.as_dict()
    assert u["calls"] == 1 and u["requests"] == 2 and u["completions"] == 3
    assert u["prompt_tokens"] == out[0][0].prompt_tokens + out[1][0].prompt_tokens
    assert u["completion_tokens"] == sum(c.completion_tokens for cs in out for c in cs)
    assert {(c.backend, c.model) for cs in out for c in cs} == {("llamacpp", lm.model)}
    assert len({c.latency_s for cs in out for c in cs}) == 1  # the call's wall time, shared


def test_logprobs_are_the_models_own(lm) -> None:
    c = lm.generate([Request.chat("Hi", temperature=0, max_tokens=4, logprobs=True)])[0][0]
    expected = fake.PEAK - math.log(math.exp(fake.PEAK) + fake.N_VOCAB - 1)
    assert c.logprobs == pytest.approx([expected] * 4) and c.tokens == ("A", "b", "c", "-")
    assert lm.generate([Request.chat("Hi", temperature=0, max_tokens=4)])[0][0].logprobs is None
    whole = lm.generate([Request.chat("Hi", temperature=0, logprobs=True)])[0][0]
    assert whole.tokens[-2:] == ("!", "<|im_end|>") and len(whole.logprobs) == whole.completion_tokens


def test_what_llamacpp_cannot_do_is_one_line(lm) -> None:
    with pytest.raises(LmlabError, match="hidden states need the hf backend"):
        lm.generate([Request.chat("Hi", hidden_layer=3)])
    with pytest.raises(LmlabError, match=r"exceeds the llama\.cpp context of 1024 tokens"):
        lm.generate([Request.chat("Hi", max_tokens=1010)])


def test_close_frees_the_model(llama_cpp, gguf) -> None:
    lm = LlamaCppBackend(gguf)
    llm = lm.llm
    lm.close()
    assert llm.closed and lm.llm is None
    lm.close()  # twice is harmless


# -- lmlab bench llm --versus ----------------------------------------------------------------------
def _greedy(text: str, tokens: tuple[str, ...], logprobs: tuple[float, ...], prompt_tokens: int = 10):
    from lmlab.llm import Completion

    return Completion(text=text, finish_reason="stop", prompt_tokens=prompt_tokens,
                      completion_tokens=len(tokens), latency_s=0.1, backend="x", model="m",
                      tokens=tokens, logprobs=logprobs)


def test_agreement_counts_equal_answers_and_where_they_part() -> None:
    from lmlab.bench.llm import agreement

    a = [_greedy("ab", ("a", "b"), (-0.1, -0.2)), _greedy("abc", ("a", "b", "c"), (-0.1, -0.2, -0.3)),
         _greedy("xy", ("x", "y"), (-1.0, -1.0))]
    b = [_greedy("ab", ("a", "b"), (-0.1, -0.3)), _greedy("abd", ("a", "b", "d"), (-0.2, -0.2, -0.9)),
         _greedy("zy", ("z", "y"), (-2.0, -1.0), prompt_tokens=11)]
    r = agreement(a, b)
    assert (r["prompts"], r["exactly_equal"], r["same_prompt_tokens"]) == (3, 1, 2)
    assert [p["first_divergence"] for p in r["per_prompt"]] == [2, 2, 0]
    assert r["first_divergence_median"] == 2 and r["first_divergence_min"] == 0
    # log-probabilities compared where both generated the same tokens: 4 positions
    assert r["logprob_abs_diff_mean"] == pytest.approx((0 + 0.1 + 0.1 + 0) / 4)
    assert r["logprob_abs_diff_max"] == pytest.approx(0.1)


def test_bench_versus_runs_both_backends_on_the_same_workloads(llama_cpp, gguf) -> None:
    from lmlab.bench.llm import bench_llm

    r = bench_llm(model=f"llamacpp:{gguf}", versus=f"llamacpp:{gguf}", threads=1, prompts=2,
                  samples=2, max_tokens=4, sequential_prompts=1, agent_tokens=200, decode_tokens=6,
                  agent_turns=2, turn_tokens=4, agree_prompts=3, agree_tokens=8)
    assert r["model"] == r["versus"]["model"] == f"llamacpp:{gguf}"
    assert r["threads"] == r["versus"]["threads"] == 1
    assert [m["n_threads"] for m in fake.MADE] == [1, 1]  # one model at a time, same threads
    s = r["versus_speedup"]
    assert s["decode_tokens_per_s"] == pytest.approx(r["versus"]["decode_tokens_per_s"] / r["decode_tokens_per_s"])
    assert s["agent_loop_s"] == pytest.approx(r["agent_loop_s"] / r["versus"]["agent_loop_s"])
    a = r["agreement"]  # the same deterministic model twice: every answer agrees
    assert (a["prompts"], a["exactly_equal"], a["same_prompt_tokens"]) == (3, 3, 3)
    assert a["first_divergence_min"] == 8 and a["logprob_abs_diff_max"] == 0.0
    assert "versus" not in bench_llm(model=f"llamacpp:{gguf}", prompts=1, samples=1, max_tokens=2,
                                     sequential_prompts=1, agent_tokens=100, decode_tokens=3,
                                     agent_turns=1, turn_tokens=2)


def test_bench_command_passes_versus_and_threads(cli, monkeypatch) -> None:
    import lmlab.bench as bench

    seen = {}
    monkeypatch.setitem(bench.BENCHMARKS, "llm", lambda **kw: seen.update(kw) or {"ok": 1.0})
    r = cli("bench", "llm", "--model", "hf:m", "--versus", "llamacpp:m", "--threads", "2", "--json")
    assert r.code == 0, r.err
    assert seen == {"model": "hf:m", "versus": "llamacpp:m", "threads": 2}
    r = cli("bench", "train", "--versus", "llamacpp:m")
    assert r.code == 2 and "--versus and --threads belong to `lmlab bench llm`" in r.err
