"""The study through the CLI on a synthetic sample table (no model), and its validation."""

from __future__ import annotations

import json

import pytest

from lmlab.errors import LmlabError
from lmlab.runner import execute
from lmlab.studies.adaptive_compute import STUDY
from lmlab.studies.adaptive_compute.synthetic import synthetic_table
from lmlab.studies.adaptive_compute.tables import SampleTable, write_table


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    p = tmp_path_factory.mktemp("t") / "synthetic.parquet"
    write_table(SampleTable(synthetic_table({"train": 400, "val": 150, "test": 300}, seed=0)), p)
    return p


def test_run_on_a_table(table, tmp_path):
    from typer.testing import CliRunner

    from lmlab.cli import app

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", "adaptive-compute", "--preset", "tiny", "--out", str(out),
                                   "--set", f"table={table}", "--set", "n_boot=200",
                                   "--set", "probe_epochs=150"])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "result.json").read_text())
    m = result["metrics"]
    claims = {c["id"]: c for c in result["claims"]}
    assert set(claims) == {"savings", "quality_gain", "probe_beats_heuristics", "extremes", "routing"}
    assert claims["savings"]["holds"] is True and m["alloc.probe.savings_k8"] > 0
    checks = {c["id"]: c["holds"] for c in result["checks"]}
    assert checks["oracle_bounds"] and checks["routing_extremes"] and checks["threshold_calibration"]
    for fig in ("quality_vs_budget", "routing", "probe_calibration"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000


@pytest.mark.parametrize("override, message", [
    ({"b_max": 9}, "b_max <= n_samples"),
    ({"uniform_k": (2, 12)}, "uniform_k"),
    ({"pilot_m": 5}, "pilot_m"),
    ({"train_frac": 0.9, "val_frac": 0.2}, "train_frac"),
    ({"table": "/no/such/table.jsonl"}, "no such file"),
    ({"model": "nope:x"}, "unknown LLM backend"),
    ({"domains": ("chess",)}, "domains"),
    ({"predictor": "lora", "model": "openai:m@http://127.0.0.1:1/v1"}, "needs an hf: model"),
    ({"predictor": "tree"}, "predictor"),
])
def test_validate_rejects(override, message):
    import dataclasses

    c = dataclasses.replace(STUDY.preset("tiny"), **override)
    with pytest.raises(LmlabError, match=message):
        STUDY.validate(c)


def test_bad_override_leaves_nothing(tmp_path):
    out = tmp_path / "bad"
    with pytest.raises(LmlabError):
        execute("adaptive-compute", "tiny", ["b_min=5", "b_max=3"], out=out)
    assert not out.exists()
