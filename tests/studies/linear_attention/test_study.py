"""The study contract: presets, typed overrides, computed claims, executor equivalence, bench."""

from __future__ import annotations

import dataclasses
import math

import pytest

from lmlab.errors import LmlabError
from lmlab.executor import get_executor
from lmlab.studies.linear_attention import STUDY
from lmlab.studies.linear_attention.experiments import ExactJob, exact_job
from lmlab.study import Check, StudyConfig, apply_overrides, get_study


def test_registered_with_presets():
    study = get_study("linear-attention")
    assert study is STUDY and set(study.presets) == {"tiny", "paper"}
    for cfg in study.presets.values():
        assert isinstance(cfg, StudyConfig) and cfg.executor == "serial"
    paper = study.preset("paper")
    assert paper.dims == (2, 4, 8, 16) and paper.seq_len == 100 and paper.n_train == 2048
    assert paper.memory_n == 2**14 and paper.dfa_width == 2048 and paper.dfa_fixed == 4


def test_overrides_are_typed():
    cfg = apply_overrides(STUDY.preset("tiny"), ["dims=2,3", "memory_fractions=0,0.5,1",
                                                 "dfa_vary=word_len", "lr=3e-3", "executor=process"])
    assert cfg.dims == (2, 3) and cfg.memory_fractions == (0.0, 0.5, 1.0)
    assert cfg.dfa_vary == "word_len" and cfg.lr == 3e-3
    with pytest.raises(LmlabError, match="expected one of"):
        apply_overrides(cfg, ["dfa_vary=colors"])
    with pytest.raises(LmlabError, match="did you mean 'heads'"):
        apply_overrides(cfg, ["head=3"])


def _metrics() -> dict:
    """A complete metrics dict of a run where every claim holds."""
    m = {
        "alg1_paper_size_val_nmse": 1e-29, "alg1_paper_size_pdist_rel": 1e-14,
        "alg1_paper_size_heads_gap_rel": 1e-15, "alg1_paper_size_n_heads": 16,
        "design_rank_d2": 6, "design_rank_d3": 18, "design_rank_d4": 40,
        "mem_lambda_min_gaussian": 0.03, "mem_lambda_min_orthonormal": 1e-16,
        "mem_identifiable_max_erm_pdist": 0.0, "mem_nonidentifiable_min_erm_pdist": 0.3,
        "mem_n_identifiable": 6, "mem_n_nonidentifiable": 1,
        "mem_spearman_gd": -0.9, "mem_spearman_sgd": -0.8,
        "dfa_format_ok": 1, "dfa_history_consistent": 1, "dfa_history_acc": 0.995,
        "dfa_state_acc": 0.99, "dfa_val_history_acc": 0.996, "dfa_states2_tokens_to_99": 1000,
    }
    for d in (2, 4):
        m[f"d{d}_alg1_val_nmse"] = 1e-30
        for h in (1, 2, 4, 16):
            if h <= d * d:
                m[f"d{d}_mhla_{h}h_val_nmse"] = 1e-3 / h
        m[f"d{d}_mhla_{d * d}h_val_nmse"] = 1e-7
        m[f"d{d}_stacked_2L_val_nmse"] = 1e-2
        m[f"d{d}_softmax_1L_val_nmse"] = 1e-2
    return m


def _verdicts(metrics: dict) -> dict:
    cfg = STUDY.preset("tiny")
    return {c.id: c.holds for c in [*STUDY.claims(cfg, metrics), *STUDY.checks(cfg, metrics)]}


def test_invariants_are_checks_not_claims():
    cfg, m = STUDY.preset("tiny"), _metrics()
    claim_ids = {c.id for c in STUDY.claims(cfg, m)}
    checks = STUDY.checks(cfg, m)
    assert {c.id for c in checks} == {"design_rank", "positive_lambda_unique", "dfa_generator"}
    assert all(isinstance(c, Check) for c in checks) and not claim_ids & {c.id for c in checks}


def test_claims_are_computed_from_the_metrics():
    good = _verdicts(_metrics())
    assert good.pop("dfa_subexponential") is None  # one grid point cannot show a trend
    assert all(good.values()), good
    flips = {
        "alg1_exact": {"alg1_paper_size_val_nmse": 1e-6},
        "alg1_heads": {"alg1_paper_size_n_heads": 17},
        "design_rank": {"design_rank_d3": 17},
        "d2_heads_best": {"d4_stacked_2L_val_nmse": 1e-9},
        "d2_heads_match_alg1": {"d2_mhla_4h_val_nmse": 1e-3},
        "certificate_separates": {"mem_lambda_min_orthonormal": 1e-3},
        "positive_lambda_unique": {"mem_identifiable_max_erm_pdist": 0.1},
        "pdist_falls_gd": {"mem_spearman_gd": 0.2},
        "pdist_falls_sgd": {"mem_spearman_sgd": 0.0},
        "dfa_learned": {"dfa_history_acc": 0.9},
    }
    for claim, change in flips.items():
        assert _verdicts({**_metrics(), **change})[claim] is False, claim
    assert _verdicts({**_metrics(), "mem_spearman_sgd": math.nan})["pdist_falls_sgd"] is None
    # the verdict reads the test accuracy: a validation accuracy of 1.0 does not rescue it
    assert _verdicts({**_metrics(), "dfa_history_acc": 0.9,
                      "dfa_val_history_acc": 1.0})["dfa_learned"] is False
    assert _verdicts({**_metrics(), "mem_n_nonidentifiable": 0})["positive_lambda_unique"] is None


def test_subexponential_claim_with_a_grid():
    cfg = dataclasses.replace(STUDY.preset("tiny"), dfa_values=(2, 3, 4))
    m = {**_metrics(), "dfa_states2_tokens_to_99": 100, "dfa_states3_tokens_to_99": 1000,
         "dfa_states4_tokens_to_99": 5000}
    claims = {c.id: c for c in STUDY.claims(cfg, m)}
    assert claims["dfa_subexponential"].holds is True  # log increments 2.3, 1.6: slowing down
    m["dfa_states4_tokens_to_99"] = 10**5
    assert {c.id: c for c in STUDY.claims(cfg, m)}["dfa_subexponential"].holds is False


def test_jobs_give_the_same_result_on_every_executor():
    jobs = [ExactJob(seed=s, d=2, T=6, N=40, n_val=16) for s in (0, 1)]
    serial = get_executor("serial").map(exact_job, jobs)
    pooled = get_executor("process", max_workers=2).map(exact_job, jobs)
    for a, b in zip(serial, pooled, strict=True):
        assert a["val_nmse"] == b["val_nmse"] and a["pdist_rel"] == b["pdist_rel"]


def test_bench_is_registered_and_measures_a_ratio():
    from lmlab.bench import benchmarks
    from lmlab.studies.linear_attention.bench import bench_linear_attention

    assert "linear-attention" in benchmarks()
    res = bench_linear_attention(d=2, T=10, N=128, target=1e-3, max_steps=400, eval_every=50)
    assert res["alg1_reached"] and res["alg1_nmse"] < 1e-20
    assert res["speedup"] == pytest.approx(res["sgd_s"] / res["alg1_s"], rel=0.05)
    assert res["speedup_is_lower_bound"] == (not res["sgd_reached"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("dims=0", "dims must hold values >= 1"),
        ("dims=[]", "dims needs at least one value"),
        ("memory_fractions=0.5,1.5", r"memory_fractions must hold fractions in \[0, 1\]"),
        ("executor=gpu", "bad value 'gpu' for executor: expected one of serial, process, ray"),
        ("softmax_width=30", "softmax_width must be divisible"),
        ("lr=0", "lr must be > 0"),
        ("seeds=0", "seeds must be >= 1"),
    ],
)
def test_bad_settings_fail_before_running(override, message, tmp_path):
    from lmlab.runner import execute

    with pytest.raises(LmlabError, match=message):
        execute("linear-attention", "tiny", [override], out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_small_run_writes_a_complete_result(tmp_path):
    """Every experiment's code path, end to end, at a few seconds' scale (not a reproduction)."""
    from lmlab.runner import execute

    small = ["dims=2", "seeds=1", "seq_len=6", "n_train=32", "n_val=16", "steps=20",
             "layers=2", "exact_n_train=32", "exact_seq_len=6", "rank_dims=2",
             "memory_fractions=0,1", "memory_d=2", "memory_n=256", "memory_seeds=1", "memory_steps=20",
             "dfa_n_train=32", "dfa_epochs=1", "dfa_width=16"]
    result = execute("linear-attention", "tiny", small, out=tmp_path / "run")
    ids = [c["id"] for c in result["claims"]]
    assert ids == ["alg1_exact", "alg1_heads", "d2_heads_best", "d2_heads_match_alg1",
                   "certificate_separates", "pdist_falls_gd", "pdist_falls_sgd", "dfa_learned",
                   "dfa_subexponential"]
    assert [c["id"] for c in result["checks"]] == ["design_rank", "positive_lambda_unique",
                                                   "dfa_generator"]
    m = result["metrics"]
    assert m["alg1_paper_size_val_nmse"] < 1e-12 and m["design_rank_d2"] == 6
    assert m["mem_n_identifiable"] == 1 and m["mem_n_nonidentifiable"] == 1
    assert {"dfa_history_acc", "dfa_val_history_acc", "dfa_state_acc"} <= set(m)
    assert {p.name for p in (tmp_path / "run" / "figures").iterdir()} == {
        "mse_vs_heads_layers.png", "eigenvalue_vs_pdistance.png", "dfa_accuracy.png"}
    logged = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(logged) == 1 + 1 + 5 + 2 + 1  # paper-size fit, exact, 5 trained models, 2 memories, dfa
