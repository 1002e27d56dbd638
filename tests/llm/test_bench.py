"""`lmlab bench llm`: batched sampling against one call per sample, same run (reduced sizes)."""

from __future__ import annotations

import pytest

from lmlab.bench import BENCHMARKS
from lmlab.bench.llm import bench_llm


def test_llm_benchmark_is_registered_and_reports_the_ratio(smol_folder) -> None:
    r = BENCHMARKS["llm"](prompts=2, samples=4, max_tokens=4, sequential_prompts=1,
                          agent_tokens=400, decode_tokens=6)
    assert r["model"] == "hf:smollm2-135m-instruct" and r["load_s"] > 0
    assert 400 <= r["agent_prompt_tokens"] < r["agent_next_prompt_tokens"] < 600
    assert r["prefill_tokens_per_s"] == pytest.approx(r["agent_prompt_tokens"] / r["ttft_cold_s"])
    assert r["decode_tokens_per_s"] > 0 and 2 <= r["decode_tokens"] <= 6
    # The next agent turn reuses the first turn's prefix: it computes ~40 new tokens, not ~450.
    assert r["ttft_warm_cpu_s"] < r["ttft_next_cold_cpu_s"]
    assert r["ttft_reuse_speedup"] == pytest.approx(r["ttft_next_cold_s"] / r["ttft_warm_s"])
    assert r["batched_samples"] == 8 and r["per_sample_samples"] == 4
    assert r["speedup"] == pytest.approx(r["batched_samples_per_s"] / r["per_sample_samples_per_s"])
    assert r["batched_samples_per_s"] > 0 and r["per_sample_samples_per_s"] > 0
    assert 1 <= r["mean_tokens_per_sample"] <= 4
    assert r["config"]["samples"] == 4 and r["goal_speedup"] == 4.0
    # Even at this tiny size, one batched call beats a call per sample.
    assert r["speedup"] > 1.0


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"prompts must be in 1\.\.16"):
        bench_llm(prompts=17)
    with pytest.raises(ValueError, match="sequential_prompts"):
        bench_llm(prompts=2, sequential_prompts=3)


def test_bench_command_passes_the_model(cli, smol_folder, monkeypatch) -> None:
    import lmlab.bench as bench

    seen = {}

    def fake(**kw):
        seen.update(kw)
        return {"ok": 1.0}

    monkeypatch.setitem(bench.BENCHMARKS, "llm", fake)
    r = cli("bench", "llm", "--model", "hf:qwen2.5-coder-0.5b-instruct", "--json")
    assert r.code == 0, r.err
    assert seen == {"model": "hf:qwen2.5-coder-0.5b-instruct"}
    r = cli("bench", "--model", "hf:x")
    assert r.code == 2 and "--model needs a benchmark" in r.err
