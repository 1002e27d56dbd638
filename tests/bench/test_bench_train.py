"""The training benchmark runs and reports every number it promises (not how fast it is)."""

from __future__ import annotations

import math

import pytest

from lmlab.bench import BENCHMARKS
from lmlab.bench.train import compiled_vs_eager, matmul_peak_flops, model_flops_per_token


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


@pytest.mark.slow
def test_compiled_vs_eager_reports_the_compile_and_the_steady_state(tmp_path, monkeypatch):
    # a micro shape (the compile costs ~10 CPU-s, not the bench shape's ~35); an empty inductor
    # cache, so the compile is a cold one
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    micro = {"d_model": 32, "n_layer": 1, "n_head": 2, "vocab_size": 64, "seq_len": 16,
             "batch_size": 4}
    r = compiled_vs_eager(reps=1, steps=2, shape=micro)
    for key in ("compile_wall_s", "compile_cpu_s", "eager_cpu_s_per_step",
                "compiled_cpu_s_per_step", "speedup_cpu"):
        assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, key
    assert r["compile_cpu_s"] > 10 * r["eager_cpu_s_per_step"]  # compiling is the cost
    assert r["break_even_steps"] is None or r["break_even_steps"] > 0
    assert r["graphs"] == 1  # one graph, no break and no recompile at a fixed shape
    # the same initial weights and batches: the same training, to float rounding
    assert abs(r["eager_final_loss"] - r["compiled_final_loss"]) < 1e-3
    assert r["config"]["vocab_size"] == 64 and r["mode"] == "default"


def test_compile_belongs_to_bench_train(cli):
    r = cli("bench", "llm", "--compile")
    assert r.code != 0 and "--compile belongs to `lmlab bench train`" in r.err
