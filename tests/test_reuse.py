"""No silent reuse: `reproduce` keeps a finished result only when it is current (same
configuration hash and lmlab version) or when asked with --reuse, and says so either way."""

from __future__ import annotations

import json

import pytest

import lmlab
from lmlab.runner import config_hash, execute, stale_reason

pytestmark = pytest.mark.usefixtures("toy_plugins")


def _result(out):
    return json.loads((out / "toy-mean" / "result.json").read_text())


def test_a_result_records_its_version_and_config_hash(tmp_path) -> None:
    res = execute("toy-mean", "tiny", out=tmp_path / "run")
    assert res["lmlab_version"] == lmlab.__version__ and len(res["config_hash"]) == 16
    record = {k: res[k] for k in ("study", "preset", "seed", "config")}
    assert res["config_hash"] == config_hash(record)
    assert stale_reason("toy-mean", res) is None
    other = execute("toy-mean", "tiny", ["n=500"], out=tmp_path / "other")
    assert other["config_hash"] != res["config_hash"]
    assert stale_reason("toy-mean", other) == "made with another configuration"


def test_reproduce_reuses_only_a_current_result_and_says_so(cli, tmp_path, monkeypatch) -> None:
    out = tmp_path / "rep"
    assert cli("reproduce", "--only", "toy-mean", "--out", out).code == 0
    first = _result(out)

    # current: reused, and said so in the terminal and the report
    r = cli("reproduce", "--only", "toy-mean", "--out", out)
    assert r.code == 0 and "reused from" in r.out + r.err
    assert _result(out)["created"] == first["created"]
    assert "reused from" in (out / "report.html").read_text()

    # made with another configuration: run again
    path = out / "toy-mean" / "result.json"
    path.write_text(json.dumps({**first, "config_hash": "0" * 16, "created": "2020-01-01T00:00:00+00:00"}))
    r = cli("reproduce", "--only", "toy-mean", "--out", out)
    assert r.code == 0 and "reused from" not in r.out + r.err
    assert _result(out)["config_hash"] == first["config_hash"]
    assert _result(out)["created"] != "2020-01-01T00:00:00+00:00"

    # another lmlab version: run again, unless --reuse keeps it (and says why it differs)
    old = {**_result(out), "lmlab_version": "0.0.1", "created": "2020-01-01T00:00:00+00:00"}
    path.write_text(json.dumps(old))
    r = cli("reproduce", "--only", "toy-mean", "--out", out, "--reuse")
    assert r.code == 0
    said = r.out + r.err
    assert "reused from 2020-01-01 00:00:00 UTC" in said and "made by lmlab 0.0.1" in said
    assert _result(out)["lmlab_version"] == "0.0.1"
    r = cli("reproduce", "--only", "toy-mean", "--out", out)
    assert r.code == 0 and _result(out)["lmlab_version"] == lmlab.__version__

    r = cli("reproduce", "--only", "toy-mean", "--out", out, "--reuse", "--force")
    assert r.code == 2 and "cannot be combined" in r.err
