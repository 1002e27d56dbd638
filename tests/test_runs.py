"""Run folders: atomic writes, metrics stream, checkpoints."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.runs import Run, atomic_write_json, environment, load_tensors, read_json, save_tensors


def test_atomic_json_round_trip_and_no_temp_files(tmp_path):
    p = tmp_path / "a" / "x.json"
    atomic_write_json(p, {"a": 1, "b": [1.5, math.inf], "c": torch.tensor(2.0), "d": math.nan})
    assert read_json(p) == {"a": 1, "b": [1.5, "inf"], "c": 2.0, "d": None}
    assert [f.name for f in p.parent.iterdir()] == ["x.json"]


def test_read_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LmlabError, match=r"bad\.json: not valid JSON"):
        read_json(bad)
    with pytest.raises(LmlabError, match=r"missing\.json: file not found"):
        read_json(tmp_path / "missing.json")


def test_metrics_stream_and_rewind(tmp_path):
    run = Run(tmp_path)
    for s in range(1, 6):
        run.log(step=s, loss=1.0 / s)
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 6, "lo')  # a torn line from a kill
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 3, 4, 5]
    run.rewind_metrics(3)
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 3]
    assert json.loads(run.metrics_path.read_text().splitlines()[0])["loss"] == 1.0


def test_checkpoint_round_trip_and_corruption(tmp_path):
    run = Run(tmp_path)
    t = {"w": torch.randn(3, 4), "rng": torch.get_rng_state()}
    run.save_checkpoint(t, {"step": 7})
    tensors, state = run.load_checkpoint()
    assert state == {"step": 7} and torch.equal(tensors["w"], t["w"])
    assert run.load_checkpoint("other") is None
    path = run.checkpoint_path()
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(LmlabError, match="corrupt checkpoint"):
        load_tensors(path)


def test_save_tensors_without_state(tmp_path):
    save_tensors(tmp_path / "t.safetensors", {"x": torch.ones(2)})
    tensors, state = load_tensors(tmp_path / "t.safetensors")
    assert state is None and tensors["x"].tolist() == [1.0, 1.0]


def test_environment_is_captured():
    env = environment(seed=1, device="cpu")
    assert env["seed"] == 1 and env["device"] == "cpu" and env["torch"] == torch.__version__
