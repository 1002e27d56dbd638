"""The `lmlab` command end to end: every verb, and every kind of bad input."""

from __future__ import annotations

import json

import pytest

import lmlab

SCHEMA = {"study", "preset", "seed", "config", "metrics", "claims", "checks", "timing",
          "lmlab_version", "config_hash", "created",
          "environment"}


def test_version(cli):
    r = cli("--version")
    assert r.code == 0 and lmlab.__version__ in r.out


def test_list_shows_the_ten_studies_with_status(cli):
    r = cli("list")
    assert r.code == 0
    for sid in ("state-tracking", "peoplejoin", "ttt-arc", "intruders", "scaling-laws",
                "misinfo-eval", "linear-attention", "adaptive-compute", "random-transformers",
                "algae"):
        assert sid in r.out
    assert "planned" in r.out or "implemented" in r.out


def test_run_writes_result_in_the_design_schema(cli, toy_plugins, tmp_path):
    out = tmp_path / "run"
    r = cli("run", "toy-mean", "--set", "n=500", "--seed", "3", "--out", out)
    assert r.code == 0, r.err
    res = json.loads((out / "result.json").read_text())
    assert set(res) == SCHEMA
    assert (res["study"], res["preset"], res["seed"]) == ("toy-mean", "tiny", 3)
    assert res["config"]["n"] == 500 and res["config"]["seed"] == 3
    assert set(res["claims"][0]) == {"id", "statement", "paper", "measured", "holds"}
    assert res["claims"][0]["holds"] is (abs(res["metrics"]["mean"] - 0.5) < 0.05)
    assert res["claims"][1]["holds"] is None
    assert res["timing"]["wall_s"] >= 0
    env = res["environment"]
    assert env["lmlab"] == lmlab.__version__ and env["seed"] == 3 and env["device"] == "cpu"
    assert "torch" in env and "git" in env
    assert env["cpu"] and env["cpu_capability"]  # e.g. "AVX2": machines differ in float results
    assert (out / "config.json").is_file() and (out / "metrics.jsonl").is_file()
    assert (out / "figures" / "histogram.png").stat().st_size > 0
    assert "mean" in r.out  # the claims table is printed


def test_same_seed_same_numbers(cli, toy_plugins, tmp_path):
    a = cli("run", "toy-mean", "--seed", "5", "--out", tmp_path / "a")
    b = cli("run", "toy-mean", "--seed", "5", "--out", tmp_path / "b")
    c = cli("run", "toy-mean", "--seed", "6", "--out", tmp_path / "c")
    assert a.code == b.code == c.code == 0
    m = [json.loads((tmp_path / x / "result.json").read_text())["metrics"] for x in "abc"]
    assert m[0] == m[1] != m[2]


def test_finished_run_is_not_overwritten_without_force(cli, toy_plugins, tmp_path):
    out = tmp_path / "run"
    assert cli("run", "toy-mean", "--out", out).code == 0
    before = (out / "result.json").read_text()
    r = cli("run", "toy-mean", "--set", "n=10", "--out", out)
    assert r.code == 2 and "already holds a finished run" in r.err and "--force" in r.err
    assert (out / "result.json").read_text() == before
    assert cli("run", "toy-mean", "--set", "n=10", "--out", out, "--force").code == 0
    assert json.loads((out / "result.json").read_text())["config"]["n"] == 10


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "no-such-study"], "unknown study 'no-such-study'"),
        (["run", "toy-mean", "--preset", "huge"], "unknown preset 'huge'"),
        (["run", "toy-mean", "--set", "bogus=1"], "unknown override key 'bogus'"),
        (["run", "toy-mean", "--set", "n=ten"], "bad value 'ten' for n: expected an integer"),
        (["run", "toy-mean", "--set", "n"], "expected key=value"),
        (["reproduce", "--only", "toy-mean,nope"], "unknown study 'nope'"),
        (["reproduce", "--executor", "slurm"], "unknown executor 'slurm'"),
        (["bench", "nope"], "unknown benchmark 'nope'"),
        (["report", "/nonexistent/dir"], "is not a folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, toy_plugins, tmp_path, args, message):
    out = tmp_path / "out"
    extra = ["--out", str(out)] if args[0] in ("run", "reproduce") else []
    r = cli(*args, *extra)
    assert r.code == 2, (r.code, r.err)
    assert message in r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1
    assert not out.exists()  # nothing half-written


def test_out_pointing_at_a_file(cli, toy_plugins, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    r = cli("run", "toy-mean", "--out", f)
    assert r.code == 2 and "is a file" in r.err and f.read_text() == "keep me"


def test_failing_study_leaves_no_result(cli, toy_plugins, tmp_path):
    out = tmp_path / "run"
    r = cli("run", "toy-mean", "--set", "fail=true", "--out", out)
    assert r.code == 1 and "asked to fail" in r.err and "--debug" in r.err
    assert not (out / "result.json").exists()


def test_unfinished_run_resumes_with_tuple_fields(cli, toy_plugins, tmp_path):
    # config.json stores tuples as lists; the resume check must still see the same configuration
    out = tmp_path / "run"
    assert cli("run", "toy-mean", "--set", "sizes=[3,4]", "--out", out).code == 0
    (out / "result.json").unlink()
    r = cli("run", "toy-mean", "--set", "sizes=[3,4]", "--out", out, "--resume")
    assert r.code == 0, r.err
    assert json.loads((out / "result.json").read_text())["config"]["sizes"] == [3, 4]
    r = cli("run", "toy-mean", "--set", "sizes=[3,5]", "--out", out, "--resume")
    assert r.code == 2 and "differs in sizes" in r.err


def test_unknown_option_is_a_usage_error(cli):
    assert cli("run", "--bogus").code == 2


def test_reproduce_and_report(cli, toy_plugins, tmp_path):
    out = tmp_path / "repro"
    r = cli("reproduce", "--only", "toy-mean", "--out", out)
    assert r.code == 0, r.err
    assert (out / "toy-mean" / "result.json").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert "toy-mean" in json.dumps(summary)
    html = (out / "report.html").read_text()
    assert "study-toy-mean" in html and "data:image/png;base64," in html
    (out / "report.html").unlink()
    r = cli("report", out)
    assert r.code == 0 and (out / "report.html").is_file()
