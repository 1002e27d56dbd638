"""The algae study end to end at a toy size, its validation, and its claims' arithmetic."""

import dataclasses

import pytest

from lmlab.errors import LmlabError
from lmlab.runs import Run
from lmlab.study import get_study

STUDY = get_study("algae")


def _toy():
    return dataclasses.replace(
        STUDY.preset("tiny"), seeds=2, demos=(1, 3), n_test=2, train_sizes=(7,),
        test_sizes=(7,), calib_seeds=3, detector_seeds=3, deep_steps=5, nav_seeds=2,
        nav_samples=300, proposers=("library",))


@pytest.mark.parametrize("override, msg", [
    ({"initial_features": ("nope",)}, "unknown library feature"),
    ({"true_missing": "near_vase"}, "true_missing"),
    ({"demos": (0, 1)}, "demos"),
    ({"proposers": ("library", "gpt")}, "unknown proposer"),
    ({"lm_demos": (4,)}, "lm_demos"),
    ({"detector": "magic"}, "detector"),
    ({"test_sizes": (30,)}, "room sizes"),
])
def test_validate_rejects_impossible_configs(override, msg):
    cfg = dataclasses.replace(STUDY.preset("tiny"), **override)
    with pytest.raises(LmlabError, match=msg):
        STUDY.validate(cfg)


def test_presets_validate():
    for name in STUDY.presets:
        STUDY.validate(STUDY.preset(name))


def test_toy_run_writes_metrics_claims_and_figure(tmp_path):
    cfg = _toy()
    run = Run(tmp_path / "run")
    m = STUDY.run(cfg, run)
    assert (tmp_path / "run" / "figures" / "regret_vs_demos.png").is_file()
    for key in ("algae_library.d1.regret.mean", "deep.d3.regret.ci_hi", "detector.d3.hit",
                "few.algae_library_minus_deep.regret.mean", "nav.oracle.cos.mean",
                "check.gradient_fd_err"):
        assert key in m
    claims = STUDY.claims(cfg, m)
    assert {c.id for c in claims} >= {"few_demos_beats_deep", "detector_finds_missing_feature",
                                      "recovers_missing_feature"}
    assert next(c for c in claims if c.id == "lm_recovers_missing_feature").holds is None
    checks = {c.id: c for c in STUDY.checks(cfg, m)}
    assert checks["soft_vi_matches_brute_force"].holds
    assert checks["irl_gradient_matches_finite_differences"].holds
    assert checks["sandbox_refuses_escapes"].holds


def test_claims_follow_the_measurements():
    cfg = STUDY.preset("tiny")
    good = {"few.algae_library_minus_deep.regret.ci_hi": -0.1,
            "few.algae_library_minus_deep.regret.mean": -0.2,
            "few.algae_library_minus_deep.regret.ci_lo": -0.3}
    bad = {k: v + 0.5 for k, v in good.items()}
    c_good = next(c for c in STUDY.claims(cfg, good) if c.id == "few_demos_beats_deep")
    c_bad = next(c for c in STUDY.claims(cfg, bad) if c.id == "few_demos_beats_deep")
    assert c_good.holds is True and c_bad.holds is False
    c_none = next(c for c in STUDY.claims(cfg, {}) if c.id == "detector_finds_missing_feature")
    assert c_none.holds is None


def test_kill_and_resume_gives_the_uninterrupted_metrics(tmp_path):
    """SIGKILL once a world's method job is kept, then --resume: identical metrics and verdicts
    (so the same seed also gives the same numbers). Library proposer only: no language model."""
    from tests.study_runs import assert_kill_resume_matches

    small = ["seeds=3", "demos=1,3", "n_test=2", "train_sizes=7", "test_sizes=7",
             "calib_seeds=3", "detector_seeds=3", "deep_steps=5", "nav_seeds=2",
             "nav_samples=300", "proposers=library"]
    args = ["--preset", "tiny", *[a for o in small for a in ("--set", o)]]
    full = assert_kill_resume_matches(tmp_path, "algae", args, marker="jobs/**/*.pkl", count=2)
    assert full["metrics"]["algae_library.runs"] == 6
