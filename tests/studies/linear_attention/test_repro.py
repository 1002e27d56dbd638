"""Reproduction: the tiny preset end to end, asserting the paper's effects at CPU scale.

Thresholds were set from a measured run of the tiny preset (seed 0, teachers and jobs seeded by
`lmlab.seeding.derive`, 2-core CPU; values in the comments), with margins for machine-to-machine
float differences in the gradient-trained models. Measured 2026-12-06: 22:48 wall on a machine at
load ~17 (other sessions), 181 CPU-s.
"""

from __future__ import annotations

import pytest

from lmlab.runner import execute


@pytest.mark.repro
def test_tiny_preset_reproduces_the_effects(tmp_path):
    result = execute("linear-attention", "tiny", out=tmp_path / "run")
    m = result["metrics"]
    claims = {c["id"]: c for c in result["claims"] + result["checks"]}

    # Algorithm 1 at the paper's size (d = 4, T = 100, N = 2048): exact to float64.
    assert m["teacher.alg1.paper.val_nmse"] < 1e-12  # measured 1.3e-28
    assert m["teacher.alg1.paper.pdist_rel"] < 1e-8  # measured 3.5e-14
    assert m["teacher.alg1.paper.heads_gap_rel"] < 1e-8  # measured 6.0e-15
    assert m["teacher.alg1.paper.n_heads"] <= 16  # measured 16
    assert (m["design.d2.rank"], m["design.d3.rank"], m["design.d4.rank"]) == (6, 18, 40)
    for d in (2, 4):
        assert m[f"teacher.alg1.d{d}.val_nmse"] < 1e-20  # measured 2.1e-30, 1.2e-29

    # Gradient training: d^2 heads against the best other model on the same teacher is not
    # established at this scale: with 3 teachers of one head, a 1- or 2-head student sometimes
    # fits its teacher to 1e-12..1e-16, so the paired log10 ratios swing by 10 decades.
    # measured d=2: -0.85 [-12.8, +8.4] (1 of 3 teachers); d=4: +2.76 [-0.97, +10.1] (2 of 3)
    assert claims["d2_heads_best"]["holds"] is False
    assert "not established" in claims["d2_heads_best"]["measured"]
    assert m["teacher.mhla_4h.d2.val_nmse"] < 1e-3 and m["teacher.mhla_16h.d4.val_nmse"] < 1e-3
    # measured: stacked 2L 0.0039 / 0.032, stacked 4L 0.23 / 0.37, softmax 0.057 / 0.050
    for d in (2, 4):
        worst_gap = min(m[f"teacher.stacked_2L.d{d}.val_nmse"], m[f"teacher.stacked_4L.d{d}.val_nmse"],
                        m[f"teacher.softmax_1L.d{d}.val_nmse"]) / m[f"teacher.mhla_{d * d}h.d{d}.val_nmse"]
        assert worst_gap > 5  # measured 13 (d=2), 420 (d=4): linear attention beats the rest
    # Still far from Algorithm 1 after 1000 steps: the claim is reported as not holding.
    assert claims["d2_heads_match_alg1"]["holds"] is False

    # The certificate: positive on Gaussian memories, zero on orthonormal ones.
    assert m["memory.gaussian.lambda_min_lowest"] > 1e-2  # measured 0.0295
    assert abs(m["memory.orthonormal.lambda_min_highest"]) <= 1e-10  # measured -5.3e-16
    assert claims["positive_lambda_unique"]["holds"] is True
    assert m["memory.nonidentifiable.erm_pdist_min"] > 0.1  # measured 0.35
    assert m["memory.all.pdist_exact_max"] < 1e-6  # measured 1.8e-10: exact min-norm OLS finds the truth
    # p-distance falls as lambda_min rises.
    assert m["memory.spearman.gd.rho"] < -0.8  # measured -0.987
    assert m["memory.spearman.gd.ci_hi"] < 0  # measured [-1.000, -0.919]
    assert m["memory.spearman.sgd.rho"] < -0.5  # measured -0.899
    assert m["memory.spearman.sgd.ci_hi"] < 0  # measured [-0.987, -0.603]
    assert m["memory.f0.pdist_sgd"] < m["memory.f1.pdist_sgd"] / 2  # measured 0.0091 vs 0.049

    # DFA execution: the generator is right; the tiny GPT learns most of the history of
    # (automaton, word) pairs it never saw (test; validation stopped it and chose the run).
    assert claims["dfa_generator"]["holds"] is True
    assert m["dfa.chosen.test.history_acc"] > 0.85  # measured 0.918 (0.933 with the old seeds)
    assert m["dfa.chosen.test.state_acc"] > 0.55  # measured 0.591 (0.663 with the old seeds; chance 0.5)
    assert claims["dfa_subexponential"]["holds"] is None

    figures = {p.name for p in (tmp_path / "run" / "figures").iterdir()}
    assert figures == {"mse_vs_heads_layers.png", "eigenvalue_vs_pdistance.png", "dfa_accuracy.png"}
    assert result["timing"]["wall_s"] < 3600  # measured 1348 s at load ~17 (209 s once, less load)
