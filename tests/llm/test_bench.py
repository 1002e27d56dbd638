"""`lmlab bench llm`: batched sampling against one call per sample, same run (reduced sizes)."""

from __future__ import annotations

import pytest

from lmlab.bench import BENCHMARKS
from lmlab.bench.llm import bench_llm


def test_llm_benchmark_is_registered_and_reports_the_ratio(smol_folder) -> None:
    r = BENCHMARKS["llm"](prompts=2, samples=4, max_tokens=4, sequential_prompts=1)
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
