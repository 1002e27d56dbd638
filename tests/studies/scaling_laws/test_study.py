"""The study contract: presets, typed overrides, a run without data, claims computed from metrics."""

from __future__ import annotations

import dataclasses

import pytest

from lmlab.data import DATASETS
from lmlab.errors import LmlabError
from lmlab.runner import execute
from lmlab.studies.scaling_laws import STUDY, Config
from lmlab.studies.scaling_laws.claims import claims
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
        "families=OPT,olmo", "fitter=huber-grid", "grow=false", "fractions=0.5,1.0",
        "grow_widths=8,16,32", "min_tokens=1e9", "executor=serial",
    ])
    assert c.families == ("OPT", "olmo") and c.fitter == "huber-grid" and c.grow is False
    assert c.fractions == (0.5, 1.0) and c.grow_widths == (8, 16, 32) and c.min_tokens == 1e9
    for bad, match in [("fitter=adam", "expected one of"), ("variants=models,bogus", "variant"),
                       ("executor=gpu", "executor"), ("grow_widths=8,16", "at least 3"),
                       ("fractions=0,1", "fractions"), ("data=/nowhere.csv", "not found"),
                       ("grow_min_tokens=1.5", "fraction")]:
        with pytest.raises(LmlabError, match=match):
            apply_overrides(STUDY.preset("tiny"), [bad])


def test_a_run_without_data_leaves_every_claim_untestable(tmp_path):
    res = execute("scaling-laws", "tiny", ["data=none", "grow=false"], out=tmp_path / "run")
    assert res["metrics"] == {"shared.status": "skipped (data=none)"}
    assert res["claims"] and all(c["holds"] is None for c in res["claims"])
    assert any("data=none" in str(c["measured"]) for c in res["claims"])


def test_a_run_on_one_family(tmp_path):
    res = execute("scaling-laws", "tiny", ["families=OPT", "grow=false", "executor=serial",
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
    cfg = dataclasses.replace(STUDY.preset("tiny"), grow=False)

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
