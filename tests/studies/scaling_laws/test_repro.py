"""Reproduction: the tiny preset end to end, asserting the paper's effects.

Thresholds were measured on the tiny preset (seed 0, 2-core CPU) and keep a margin below the
measurement; the measured values are in the comments.
"""

from __future__ import annotations

import pytest

from lmlab.runner import execute
from lmlab.studies.scaling_laws.data import read_table


@pytest.mark.repro
def test_tiny_preset_reproduces_the_papers_effects(tmp_path):
    out = tmp_path / "tiny"
    res = execute("scaling-laws", "tiny", out=out)
    m = res["metrics"]
    holds = {c["id"]: c["holds"] for c in res["claims"]}

    # -- the shared ColPret table: 19 families with >= 3 models, every one evaluated ----------
    assert m["shared.status"] == "ok" and m["shared.families"] == 19
    # OPT: 17.8% -> 8.0% ARE with the 10B-token cut (paper: >15% -> 4-10%).
    assert m["shared.early_cut.OPT.full_runs_no_cut_pct"] > 15.0
    assert m["shared.early_cut.OPT.full_runs_cut_pct"] < 10.0
    # OLMo-7B from OLMo-1B alone, A and alpha borrowed: 0.94% (paper: <1%).
    assert m["shared.one_model.are_pct"] < 1.0
    # OPT-175B from one model: 32.5%, 24.9%, 15.0% from 6.7B, 13B, 30B (paper: 37, 25, 15).
    assert holds["shared.one_model_opt"] is True
    # Three components explain 99.93% of the fitted parameters' variance (paper: 99.49%).
    assert m["shared.pca.var3"] >= 0.99
    # Fitting-free baselines: 7.0% / 9.2% median against 2.3% for the fits (paper: 18% mean).
    assert holds["shared.baselines"] is True
    # Intermediate checkpoints win 67% [46, 83] of the pairs against final losses alone: above
    # one half, but not with its interval, so the claim is not established here.
    assert m["shared.intermediate.win_rate"] > 0.5 and holds["shared.intermediate"] is False
    # OPT's two 4-model windows: the nearest wins 3 of 10 fractions (15.2% vs 12.9% median).
    assert holds["shared.window"] is False
    # Five models: 7.4% against a best of 5.9% (OPT, the only family with 6 models).
    assert holds["shared.five_models"] is True
    # Measured and reported as not holding: across all 19 families the cut wins only 49% of
    # the pairs (the 16 datablations families' early checkpoints are harmless).
    assert holds["shared.early_cut"] is False and 0.3 < m["shared.early_cut.win_rate"] < 0.6

    # -- the grown family: 7 widths x 3 seeds of lmlab GPTs ------------------------------------
    grown = read_table(out / "grown.csv")
    assert len(grown.models()) == 7 and len(set(grown.seed.tolist())) == 3  # derived seeds
    # Seeds are derived (lmlab.seeding.derive), the corpus's too: the numbers below are those
    # of the derived corpus (entropy rate 1.586 nats). Dropping the early checkpoints wins 82%
    # [70, 92] of the pairs; median ARE 7.4% vs 19.8%.
    assert holds["grown.early_cut"] is True and m["grown.early_cut.win_ci_lo"] > 0.5
    assert m["grown.early_cut.cut_pct"] < 0.5 * m["grown.early_cut.no_cut_pct"]
    # With the best practices the largest model is predicted within 2.68% (paper: ~4%).
    assert m["grown.family.lmlab-gpt.are_pct"] < 4.0
    # Models of similar size predict best: the nearest 4-model window wins all 8 pairs.
    assert holds["grown.window"] is True
    # Two more seeds of the largest fitted model against one run of the next width (compute
    # ratio 1.01) win 72% [56, 88] of 32 pairs: "sometimes more useful" holds.
    assert holds["grown.seeds"] is True and 0.9 < m["grown.seeds.compute_ratio"] < 1.1
    # Five models: 3.4% on two machines, but the verdict hangs on the luckiest other count,
    # which float noise decides: 2 models gave 1.0% on one machine (the best, so the claim did
    # not hold: 2.4 points behind) and 44.8% on another (AMD EPYC, AVX2 kernels; best 2.68%
    # with 6, so it held). The test pins the measurement and the rule, not the verdict.
    k5, best = m["grown.models.k5_pct"], m["grown.models.best_pct"]
    assert k5 < 5.0 and holds["grown.five_models"] is (k5 < 10.0 and k5 - best <= 2.0)
    # Measured and reported as not holding with this corpus: the fit beats the best-seen
    # baseline on only 28% [15, 40] of the cells (22% [10, 35] on the AVX2 machine; seed-0
    # corpus 57% [42, 72]); E 1.499 vs 1.586 (5.5% off).
    assert holds["grown.baselines"] is False
    assert m["grown.law.least_squares.E"] == pytest.approx(m["grown.entropy_rate"], rel=0.1)
    assert m["grown.law.huber_grid.E"] == pytest.approx(m["grown.entropy_rate"], rel=0.1)
    # Measured and reported as not holding at this scale: every run has the same token budget,
    # so final losses alone pin the size term and win (1.7% vs 3.4%, 4 of 5 pairs lost).
    assert holds["grown.intermediate"] is False

    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"fig1_OPT.png", "fig1_grown.png", "shared_models.png", "shared_no-cut.png",
            "shared_one-model.png", "shared_params.png", "grown_fit.png"} <= figures
    assert res["timing"]["wall_s"] < 20 * 60  # 14:15 wall, 97 CPU-s on a loaded 2-core machine
