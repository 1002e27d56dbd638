"""`lmlab scaling-laws ...` end to end through the real entry point, and `lmlab bench`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmlab.studies.scaling_laws.data import CheckpointTable, write_table

TRUE = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


@pytest.fixture
def family_csv(tmp_path, make_family):
    return write_table(CheckpointTable.from_records(make_family(TRUE)), tmp_path / "fam.csv")


def test_validate(cli, family_csv, tmp_path, csv_file):
    r = cli("scaling-laws", "validate", family_csv, "--json")
    assert r.code == 0, r.err
    info = json.loads(r.out)
    assert info["ok"] and info["rows"] == 125 and info["models"] == 5
    bad = csv_file(tmp_path / "bad.csv", ["family", "model", "num_params", "tokens", "loss"],
                   [["f", "m", 1e9, 1e10, 2.0], ["f", "m", 1e9, 2e10, "inf"]])
    r = cli("scaling-laws", "validate", bad)
    assert r.code == 2 and r.out == ""
    line = " ".join(r.err.split())  # rich may wrap the one line to the terminal's width
    assert "bad.csv" in line and "row 2 (line 3)" in line and "column 'loss'" in line


@pytest.mark.parametrize("fitter", ["least-squares", "huber-grid"])
def test_fit_prints_the_law_with_intervals(cli, family_csv, fitter):
    r = cli("scaling-laws", "fit", family_csv, "--fitter", fitter, "--bootstrap", "20", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["points"] == 85 and out["fitter"] == fitter  # 17 of 25 checkpoints past 1e10
    for k, v in TRUE.items():
        assert out["params"][k] == pytest.approx(v, rel=1e-3)
        lo, hi = out["intervals"][k]
        assert lo <= out["params"][k] * (1 + 1e-6) and hi >= out["params"][k] * (1 - 1e-6)
    table = cli("scaling-laws", "fit", family_csv, "--bootstrap", "0")
    assert table.code == 0 and "alpha" in table.out and "0.34" in table.out


def test_predict_points_and_target(cli, family_csv):
    r = cli("scaling-laws", "predict", family_csv, "--n", "7e10", "--d", "1e12", "--bootstrap",
            "10", "--json")
    assert r.code == 0, r.err
    (p,) = json.loads(r.out)["points"]
    want = TRUE["E"] + TRUE["A"] / 7e10 ** TRUE["alpha"] + TRUE["B"] / 1e12 ** TRUE["beta"]
    assert p["loss"] == pytest.approx(want, rel=1e-6) and p["low"] <= p["loss"] <= p["high"]
    r = cli("scaling-laws", "predict", family_csv, "--target", "m1e+10", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["are"] < 1e-6 and len(out["fitted_on"]) == 4
    r = cli("scaling-laws", "predict", family_csv, "--n", "7e10")
    assert r.code == 2 and "--n and --d" in r.err
    r = cli("scaling-laws", "predict", family_csv, "--target", "nobody")
    assert r.code == 2 and "no model 'nobody'" in r.err


def test_fit_errors_are_one_line(cli, family_csv, colpret_csv):
    r = cli("scaling-laws", "fit", family_csv, "--min-tokens", "1e15")
    assert r.code == 2 and "lower --min-tokens" in r.err
    r = cli("scaling-laws", "fit", colpret_csv, "--bootstrap", "0")
    assert r.code == 2 and "choose one with --family" in r.err
    r = cli("scaling-laws", "fit", family_csv, "--fitter", "sgd")
    assert r.code == 2 and "unknown fitter" in r.err


def test_evaluate_writes_cells_summary_and_figures(cli, colpret_csv, tmp_path):
    out = tmp_path / "eval"
    r = cli("scaling-laws", "evaluate", colpret_csv, "--family", "OPT", "--variants",
            "models,window", "--out", out, "--json")
    assert r.code == 0, r.err
    summary = json.loads(r.out)
    assert summary["data.families"] == 1 and summary["data.family.OPT.are_pct"] == pytest.approx(
        7.42, abs=0.01)
    assert json.loads((out / "summary.json").read_text()) == summary
    lines = (out / "cells.csv").read_text().splitlines()
    assert lines[0].startswith("family,variant,fraction") and len(lines) == 1 + 40 + 20
    figs = {p.name for p in (out / "figures").iterdir()}
    assert {"fig1_OPT.png", "heatmap_models.png"} <= figs


def test_import_colpret_from_a_clone(cli, tmp_path):
    r = cli("scaling-laws", "import-colpret", "--out", tmp_path / "c.csv", "--clone",
            tmp_path / "missing")
    assert r.code == 2 and "not a folder" in r.err


def test_bench_is_registered_and_runs(cli, monkeypatch):
    from lmlab.bench import benchmarks

    cli("list")  # importing the studies registers their benchmarks
    assert "scaling-laws" in benchmarks()
    res = benchmarks()["scaling-laws"](starts=32, repeats=2, families=["OPT", "Pile"])
    assert res["grid_starts"] == 1024 and res["family"] == "colpret:OPT"
    # Timed alike: every side fits the same 32 starts, twice, and nothing is extrapolated.
    assert res["starts"] == 32 and res["repeats"] == 2
    assert res["batched_runs"] == res["loop_numeric_runs"] == res["loop_analytic_runs"] == 2
    assert res["speedup_vs_analytic"] == pytest.approx(
        res["loop_analytic_s"] / res["batched_s"], rel=0.01, abs=0.01)
    # Both final objectives, on every family compared (the timed one included).
    assert res["families_compared"] == 2 and set(res["family_objectives"]) == {"OPT", "Pile"}
    opt = res["family_objectives"]["OPT"]
    assert opt["batched"] == res["batched_objective"]
    assert opt["loop_analytic"] == res["loop_analytic_objective"]
    assert res["batched_never_worse"] == (not res["batched_worse_families"])
    assert res["batched_worst_rel"] == max(v["rel_excess"] for v in res["family_objectives"].values())
    # Same optimum on OPT: the loop's best objective is not better than the batched fit's.
    assert res["batched_objective"] <= res["loop_analytic_objective"] * (1 + 1e-6)
    # The speed ratios of the full grid are in the README (`lmlab bench scaling-laws`); at 32
    # starts the batched fit has little to batch, so only the loops' order is asserted here.
    assert res["loop_numeric_cpu_s"] > res["loop_analytic_cpu_s"] > 0
    assert np.isfinite(res["batched_E"])
