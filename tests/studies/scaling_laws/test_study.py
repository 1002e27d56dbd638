"""The study contract: presets, typed overrides, a run without data, claims computed from metrics."""

from __future__ import annotations

import dataclasses

import pytest

from lmlab.data import DATASETS
from lmlab.errors import LmlabError
from lmlab.runner import execute
from lmlab.studies.scaling_laws import STUDY, Config
from lmlab.studies.scaling_laws.claims import checks, claims
from lmlab.studies.scaling_laws.config import Grow
from lmlab.studies.scaling_laws.protocol import ProtocolSettings
from lmlab.study import apply_overrides, get_study


def test_the_study_is_registered_with_its_presets_and_verbs():
    assert get_study("scaling-laws") is STUDY
    assert set(STUDY.presets) == {"tiny", "paper"}
    assert all(isinstance(p, Config) for p in STUDY.presets.values())
    assert STUDY.cli is not None
    for f in dataclasses.fields(Config):  # every field has a default (--set needs that)
        assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def test_overrides_are_typed_and_checked():
    c = apply_overrides(STUDY.preset("tiny"), [
        "families=OPT,olmo", "fitter=huber-grid", "grow.enabled=false", "fractions=0.5,1.0",
        "grow.widths=8,16,32", "min_tokens=1e9", "executor=serial", "grow.seeds=2",
    ])
    assert c.families == ("OPT", "olmo") and c.fitter == "huber-grid" and not c.grow.enabled
    assert c.fractions == (0.5, 1.0) and c.grow.widths == (8, 16, 32) and c.min_tokens == 1e9
    assert c.grow.seeds == 2 and STUDY.preset("tiny").grow.seeds == 3
    # the protocol's settings derive from the config (its defaults are the protocol's own)
    assert c.protocol().min_tokens == 1e9 and c.protocol().fractions == (0.5, 1.0)
    assert STUDY.preset("tiny").protocol().window == ProtocolSettings().window
    for bad, match in [("fitter=adam", "expected one of"), ("variants=models,bogus", "variant"),
                       ("executor=gpu", "executor"), ("grow.widths=8,16", "at least 3"),
                       ("fractions=0,1", "fractions"), ("data=/nowhere.csv", "not found"),
                       ("grow.min_tokens=1.5", "fraction"), ("grow.seeds=0", "grow.seeds")]:
        with pytest.raises(LmlabError, match=match):
            apply_overrides(STUDY.preset("tiny"), [bad])


def test_a_run_without_data_leaves_every_claim_untestable(tmp_path):
    res = execute("scaling-laws", "tiny", ["data=none", "grow.enabled=false"],
                  out=tmp_path / "run")
    assert res["metrics"] == {"shared.status": "skipped (data=none)"}
    assert res["claims"] and all(c["holds"] is None for c in res["claims"])
    assert any("data=none" in str(c["measured"]) for c in res["claims"])


def test_a_run_on_one_family(tmp_path):
    res = execute("scaling-laws", "tiny", ["families=OPT", "grow.enabled=false", "executor=serial",
                                           "variants=models,no-cut"], out=tmp_path / "run")
    m = res["metrics"]
    assert m["shared.status"] == "ok" and m["shared.families"] == 1
    # Where the table came from, and its checksum (the packaged copy: lmlab.data).
    assert m["data.colpret.source"] == "package"
    assert m["data.colpret.sha256"] == DATASETS["colpret"].sha256
    assert m["shared.family.OPT.are_pct"] == pytest.approx(7.416, abs=0.01)
    assert (tmp_path / "run" / "figures" / "fig1_OPT.png").stat().st_size > 0
    by_id = {c["id"]: c for c in res["claims"]}
    assert by_id["shared.early_cut.OPT"]["holds"] is True
    assert by_id["shared.intermediate"]["holds"] is None  # final-only was not run


def _metrics(**over: float) -> dict:
    m = {
        "shared.status": "ok",
        "shared.early_cut.OPT.full_runs_no_cut_pct": 17.8,
        "shared.early_cut.OPT.full_runs_cut_pct": 8.0,
        "shared.pca.var3": 0.9993, "shared.pca.families": 19,
        "shared.one_model.are_pct": 0.94,
    }
    m.update(over)
    return m


def test_claims_are_computed_from_the_metrics():
    cfg = dataclasses.replace(STUDY.preset("tiny"), grow=Grow(enabled=False))

    def holds(metrics: dict, cid: str):
        return {c.id: c.holds for c in claims(cfg, metrics)}[cid]

    assert holds(_metrics(), "shared.early_cut.OPT") is True
    assert holds(_metrics(**{"shared.early_cut.OPT.full_runs_cut_pct": 12.0}),
                 "shared.early_cut.OPT") is False
    assert holds(_metrics(), "shared.pca") is True
    assert holds(_metrics(**{"shared.pca.var3": 0.97}), "shared.pca") is False
    assert holds(_metrics(**{"shared.one_model.are_pct": 1.5}), "shared.one_model_olmo") is False
    assert holds(_metrics(**{"shared.pca.var3": float("nan")}), "shared.pca") is None
    assert holds({"shared.status": "not found: x"}, "shared.pca") is None


def test_comparison_claims_hold_only_when_their_interval_clears_the_null():
    """A win share decides nothing alone: its bootstrap interval must lie above one half (the
    seeds finding, "sometimes", above 0); the new findings read the same rule."""
    cfg = STUDY.preset("tiny")

    def verdicts(**over: float) -> dict:
        m = {"shared.status": "ok", "grown.family.lmlab-gpt.are_pct": 3.0}
        for key in ("shared.intermediate", "shared.early_cut", "shared.window",
                    "grown.window", "grown.seeds"):
            m.update({f"{key}.pairs": 10, f"{key}.win_rate": 0.8, f"{key}.win_ci_lo": 0.6,
                      f"{key}.win_ci_hi": 0.95})
        m.update(over)
        return {c.id: c.holds for c in claims(cfg, m)}

    v = verdicts()
    assert v["shared.intermediate"] and v["shared.early_cut"] and v["shared.window"]
    assert v["grown.window"] and v["grown.seeds"]
    # a point estimate above one half with an interval reaching it does not hold
    v = verdicts(**{"shared.window.win_ci_lo": 0.45, "shared.early_cut.win_ci_lo": 0.5})
    assert v["shared.window"] is False and v["shared.early_cut"] is False
    # "sometimes": the seeds arm must win a share distinguishable from never
    v = verdicts(**{"grown.seeds.win_rate": 0.3, "grown.seeds.win_ci_lo": 0.1})
    assert v["grown.seeds"] is True
    v = verdicts(**{"grown.seeds.win_rate": 0.05, "grown.seeds.win_ci_lo": 0.0})
    assert v["grown.seeds"] is False
    # without the comparison's cells: untestable, not false
    assert verdicts(**{"grown.window.win_rate": float("nan")})["grown.window"] is None


def test_the_irreducible_loss_is_a_check_not_a_claim():
    cfg = STUDY.preset("tiny")
    m = {"grown.law.least_squares.E": 1.19, "grown.entropy_rate": 1.2}
    assert "grown.irreducible" not in {c.id for c in claims(cfg, m)}
    (check,) = checks(cfg, m)
    assert check.id == "grown.irreducible" and check.holds is True
    (check,) = checks(cfg, {**m, "grown.law.least_squares.E": 1.4})
    assert check.holds is False


def test_kill_and_resume_gives_the_metrics_of_an_uninterrupted_run(tmp_path):
    """SIGKILL once the first grown member is kept, resume: the same metrics and verdicts as a
    full run of the same seed (so also: the same seed twice gives the same numbers)."""
    from tests.study_runs import assert_kill_resume_matches

    over = ["data=none", "grow.widths=8,12,16,24,32", "grow.seeds=2", "grow.steps=40",
            "grow.eval_every=5", "grow.n_eval=64", "executor=serial"]
    full = assert_kill_resume_matches(
        tmp_path, "scaling-laws", ["--preset", "tiny", *[a for o in over for a in ("--set", o)]],
        marker="jobs/lmlab.studies.scaling_laws.grow.train_member/*.pkl")
    assert full["metrics"]["grown.runs"] == 10 and "grown.seeds.pairs" in full["metrics"]
