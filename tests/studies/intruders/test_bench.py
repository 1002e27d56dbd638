"""`lmlab bench intruders` at small size: the tiny Llama in place of SmolLM2 (the full run is
`lmlab bench intruders --json`, about a minute on 2 cores)."""

from __future__ import annotations

import pytest
import torch

from lmlab.studies.intruders.bench import (
    base_left_vectors,
    bench_intruders,
    lora_tuned_copy,
    reference_max_cos,
    svds_max_cos,
)
from lmlab.studies.intruders.detect import analyze, select_matrices

KEYS = {"reference_s", "fast_s", "fast_warm_s", "speedup", "speedup_warm", "counts_identical",
        "intruders_fast", "intruders_reference", "matrices", "goal_met", "fast_cpu_s",
        "reference_cpu_s", "max_abs_cos_diff", "device", "threads", "baseline", "baseline_s",
        "baseline_cpu_s", "baseline_warm_s", "intruders_baseline", "speedup_vs_full_svd",
        "lowrank_mismatched_matrices"}


def test_the_lora_copy_is_deterministic_with_intruders_every_third_layer(llama_folders):
    base, tuned = lora_tuned_copy(str(llama_folders["base"]), r=4, alpha=8, seed=3)
    _, again = lora_tuned_copy(str(llama_folders["base"]), r=4, alpha=8, seed=3)
    _, other = lora_tuned_copy(str(llama_folders["base"]), r=4, alpha=8, seed=4)
    names = select_matrices(base)
    assert len(names) == 14
    assert all(torch.equal(tuned[n], again[n]) for n in names)
    assert not all(torch.equal(tuned[n], other[n]) for n in names)
    assert all(not torch.equal(tuned[n], base[n]) for n in names)  # every B is nonzero
    rep = analyze(base, tuned, device="cpu")
    # the spiked adapters (every third, in PEFT's module order) move by at least half sigma_1
    big = [m for m in rep.matrices if m.dw_over_sigma_k > 0.5]
    assert 4 <= len(big) <= 6 and rep.total >= 1


def _ratio_of_rounded(ratio: float, num: float, den: float) -> bool:
    """Whether `ratio` (rounded to 0.01) is num/den, given times rounded to 1 ms."""
    lo = (num - 5e-4) / (den + 5e-4) - 0.005
    hi = (num + 5e-4) / max(den - 5e-4, 1e-9) + 0.005
    return lo <= ratio <= hi


def test_bench_in_process_counts_agree_with_the_reference(llama_folders):
    out = bench_intruders(model=str(llama_folders["base"]), r=4, isolate=False, device="cpu")
    assert KEYS <= set(out)
    assert out["matrices"] == 14 and out["device"] == "cpu"
    assert out["counts_identical"] and out["mismatched_matrices"] == 0
    assert out["intruders_fast"] == out["intruders_reference"] >= 1
    assert out["max_abs_cos_diff"] < 1e-4  # float32 numpy SVD against float64 Gram routes
    assert out["fast_s"] > 0 and out["reference_s"] > 0 and out["speedup"] > 0
    # the headline is against the top-k baseline (base SVD + svds), the full SVD beside it
    assert out["intruders_baseline"] == out["intruders_reference"]
    assert out["baseline_s"] == pytest.approx(out["baseline_base_s"] + out["baseline_warm_s"],
                                              abs=2e-3)
    assert _ratio_of_rounded(out["speedup"], out["baseline_s"], out["fast_s"])
    assert _ratio_of_rounded(out["speedup_vs_full_svd"], out["reference_s"], out["fast_s"])
    assert _ratio_of_rounded(out["speedup_warm"], out["baseline_warm_s"], out["fast_warm_s"])
    assert out["goal_met"] == (out["speedup_cpu"] >= 5)


def test_the_svds_baseline_gives_the_full_svd_max_cos(llama_folders):
    base, tuned = lora_tuned_copy(str(llama_folders["base"]), r=4, alpha=8, seed=1)
    names = select_matrices(base)
    ref = reference_max_cos(base, tuned, names, k=10)
    got = svds_max_cos(tuned, names, base_left_vectors(base, names), k=10)
    assert set(got) == set(names)
    for n in names:
        assert got[n].shape == (10,)
        assert abs(got[n] - ref[n]).max() < 1e-4


def test_bench_runs_in_a_one_thread_child_process(llama_folders):
    out = bench_intruders(model=str(llama_folders["base"]), r=4, layers=1, threads=1)
    assert out["threads"] == 1 and out["matrices"] == 7
    assert out["counts_identical"]


def test_registered_as_lmlab_bench_intruders(llama_folders):
    from lmlab.bench import benchmarks, run_benchmark

    assert "intruders" in benchmarks()
    out = run_benchmark("intruders", model=str(llama_folders["base"]), r=4, layers=1,
                        isolate=False, device="cpu")
    assert out["matrices"] == 7 and out["counts_identical"]
