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
    # Intermediate checkpoints win 67% of the pairs against final losses alone.
    assert m["shared.intermediate.win_rate"] > 0.5
    # Five models: 7.4% against a best of 5.9% (OPT, the only family with 6 models).
    assert holds["shared.five_models"] is True
    # Measured and reported as not holding: across all 19 families the cut wins only 49% of
    # the pairs (the 16 datablations families' early checkpoints are harmless).
    assert holds["shared.early_cut"] is False and 0.3 < m["shared.early_cut.win_rate"] < 0.6

    # -- the grown family: 7 widths x 3 seeds of lmlab GPTs ------------------------------------
    grown = read_table(out / "grown.csv")
    assert len(grown.models()) == 7 and len(set(grown.seed.tolist())) == 3  # derived seeds
    # Dropping the early checkpoints wins 80% of the pairs; median ARE 4.6% vs 24.0%.
    assert m["grown.early_cut.win_rate"] >= 0.7
    assert m["grown.early_cut.cut_pct"] < 0.5 * m["grown.early_cut.no_cut_pct"]
    # With the best practices the largest model is predicted within 2.35% (paper: ~4%).
    assert m["grown.family.lmlab-gpt.are_pct"] < 4.0
    # Five models: 2.0% against a best of 1.0% and 11.6% with 2 models.
    assert m["grown.models.k5_pct"] < 0.5 * m["grown.models.k2_pct"]
    # Baselines 9.8% / 12.8% median against 4.6% for the fits.
    assert holds["grown.baselines"] is True
    # The fitted E is the corpus's entropy rate: 1.188 (least squares) vs 1.206 nats.
    assert m["grown.law.least_squares.E"] == pytest.approx(m["grown.entropy_rate"], rel=0.05)
    assert m["grown.law.huber_grid.E"] == pytest.approx(m["grown.entropy_rate"], rel=0.05)
    # Measured and reported as not holding at this scale: every run has the same token budget,
    # so final losses alone pin the size term and win (0.7% vs 2.2%, 2 of 5 pairs lost).
    assert holds["grown.intermediate"] is False

    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"fig1_OPT.png", "fig1_grown.png", "shared_models.png", "shared_no-cut.png",
            "shared_one-model.png", "shared_params.png", "grown_fit.png"} <= figures
    assert res["timing"]["wall_s"] < 15 * 60
