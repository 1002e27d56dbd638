"""The training benchmark runs and reports every number it promises (not how fast it is)."""

from __future__ import annotations

import math

from lmlab.bench import BENCHMARKS
from lmlab.bench.train import matmul_peak_flops, model_flops_per_token


def test_bench_train_reports_positive_numbers():
    result = BENCHMARKS["train"](reps=1, steps=1, warmup=0)
    for key in [
        "lmlab_tokens_per_s",
        "hf_tokens_per_s",
        "ratio",
        "mfu_lmlab",
        "mfu_hf",
        "peak_flops",
        "flops_per_token",
        "lmlab_cpu_s_per_step",
        "hf_cpu_s_per_step",
        "ratio_cpu",
    ]:
        assert isinstance(result[key], float) and math.isfinite(result[key]) and result[key] > 0
    assert math.isclose(result["ratio"], result["lmlab_tokens_per_s"] / result["hf_tokens_per_s"])
    assert math.isclose(result["ratio_cpu"],
                        result["hf_cpu_s_per_step"] / result["lmlab_cpu_s_per_step"])
    assert "compiled_vs_eager" not in result  # opt-in: compiling costs a minute or more
    assert result["lmlab_params"] == result["hf_params"]  # same shape, same parameter count
    # Random tokens: both start near ln(vocab) and train on the same batch.
    for key in ["lmlab_final_loss", "hf_final_loss"]:
        assert abs(result[key] - math.log(8192)) < 0.5
    assert result["config"]["seq_len"] == 64 and result["config"]["batch_size"] == 64
    assert result["torch"] and result["threads"] >= 1


def test_flop_formula():
    # 6 N per token with N = 12 L d^2 + V d, plus the attention term 6 L T d.
    assert model_flops_per_token(128, 4, 8192, 64) == 6 * (12 * 4 * 128**2 + 8192 * 128) + (
        6 * 4 * 64 * 128
    )
    assert matmul_peak_flops(n=64, reps=2) > 0
