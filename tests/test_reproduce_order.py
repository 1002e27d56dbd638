"""`lmlab reproduce` runs the fastest studies first and rewrites the report after each one;
`lmlab bench reproduce` splits each study's time by phase; `lmlab compare-threads` lists the
verdicts that differ between torch thread counts (all on toy plugin studies)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import tests.plugins.toy_phases  # noqa: F401  (registers toy-phases, toy-quick, toy-threads)
from lmlab.runs import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]


def test_run_order_uses_recorded_then_declared_times(tmp_path):
    from lmlab.runner import expected_seconds, run_order

    assert run_order(["toy-phases", "toy-quick"]) == ["toy-quick", "toy-phases"]  # declared
    assert expected_seconds("toy-threads") == float("inf")  # nothing declared: last
    assert run_order(["toy-threads", "toy-phases", "toy-quick"]) == [
        "toy-quick", "toy-phases", "toy-threads"]
    # a recorded result's wall time wins over the declaration
    atomic_write_json(tmp_path / "toy-quick" / "result.json", {"timing": {"wall_s": 50.0}})
    assert expected_seconds("toy-quick", tmp_path) == 50.0
    assert run_order(["toy-phases", "toy-quick"], tmp_path) == ["toy-phases", "toy-quick"]


def test_the_report_exists_after_the_first_study(tmp_path):
    from lmlab.runner import reproduce

    out = tmp_path / "repro"
    seen: dict[str, str | None] = {}

    def on_start(i: int, sid: str) -> None:
        report = out / "report.html"
        seen[sid] = report.read_text() if report.is_file() else None

    results, failures = reproduce(["toy-phases", "toy-quick"], out, on_start=on_start)
    assert not failures and [r["study"] for r in results] == ["toy-quick", "toy-phases"]
    assert list(seen) == ["toy-quick", "toy-phases"]  # fastest first
    assert seen["toy-quick"] is None  # nothing before the first study ...
    first = seen["toy-phases"]  # ... and, as the second starts, the first one's section
    assert first is not None and 'id="study-toy-quick"' in first
    assert 'id="study-toy-phases"' not in first
    assert "Still running: toy-phases" in first
    final = (out / "report.html").read_text()
    assert 'id="study-toy-quick"' in final and 'id="study-toy-phases"' in final
    assert "Still running" not in final
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["studies"]) == {"toy-quick", "toy-phases"}


def test_phases_are_attributed_to_the_innermost_recognized_frame():
    from lmlab.bench.phases import classify

    assert classify("/x/torch/autograd/__init__.py", "backward") == "training"
    assert classify("/x/torch/optim/adam.py", "step") == "training"
    assert classify("/x/lmlab/nn/train.py", "_train_step") == "training"
    assert classify("/x/lmlab/nn/train.py", "_evaluate") == "evaluation"
    assert classify("/x/lmlab/llm/hf.py", "_generate") == "generation"
    assert classify("/x/lmlab/studies/s/claims.py", "claims") is None  # neutral: analysis
    assert classify("/x/lmlab/models/hf.py", "load_folder") == "other"  # loading a model


def test_time_is_placed_at_the_innermost_lmlab_function():
    import sys

    from lmlab.bench.phases import _where
    from lmlab.stats import bootstrap_ci

    seen = []
    bootstrap_ci([1.0, 2.0], stat=lambda x: seen.append(_where(sys._getframe())) or 0.0, n_boot=1)
    assert seen[0].startswith("stats:")  # lmlab/stats.py, not the test's own frame


def test_bench_reproduce_splits_the_time_by_phase(cli, monkeypatch):
    from lmlab.bench.reproduce import bench_reproduce
    from tests.plugins.toy_phases import train_toy

    train_toy(0.05)  # the first optimizer step imports torch's compiler stack (~1 CPU-s): not here
    res = bench_reproduce(["toy-phases"], sets=["train_s=0.8", "eval_s=0.4", "analysis_s=0.4",
                                                 "no_such_field=1"])
    s = res["studies"]["toy-phases"]
    assert s["overrides"] == ["train_s=0.8", "eval_s=0.4", "analysis_s=0.4"]  # its fields only
    cpu = {k: v["cpu_s"] for k, v in s["phases"].items()}
    # the shares the toy study burns (0.8 / 0.4 / 0.4 CPU-s), within the sampler's resolution
    assert cpu["training"] == pytest.approx(0.8, abs=0.25), cpu
    assert cpu["evaluation"] == pytest.approx(0.4, abs=0.2), cpu
    assert cpu["analysis"] == pytest.approx(0.4, abs=0.2), cpu
    assert cpu["generation"] == 0.0
    assert s["cpu_s"] >= sum(cpu.values()) - 0.05 and s["wall_s"] > 0 and s["claims_hold"] == 1
    assert s["verdicts"] == {"finite": True}  # which claim held, by id
    assert res["total"]["training_cpu_s"] == cpu["training"]
    assert set(s["top"]["evaluation"]) == {"runner:execute"}  # a plugin: its caller in lmlab

    r = cli("bench", "reproduce", "--json", "--only", "toy-quick")
    assert r.code == 0, r.err
    assert set(json.loads(r.out)["studies"]) == {"toy-quick"}
    r = cli("bench", "train", "--only", "toy-quick")
    assert r.code == 2 and "belong to `lmlab bench reproduce`" in r.err


def test_compare_threads_lists_the_verdicts_that_differ(tmp_path, monkeypatch):
    from lmlab.threadcheck import compare_threads

    monkeypatch.setenv("LMLAB_PLUGINS", "tests.plugins.toy_phases")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    res = compare_threads("toy-threads", tmp_path, threads=(1, 2))
    assert res["verdicts"]["const"] == {1: True, 2: True}
    # the setting reaches the pool workers too, though their jobs ask for one thread
    assert [d["id"] for d in res["differ"]] == ["one_thread", "worker_one_thread"]
    assert [d["measured"] for d in res["differ"]] == [{1: 1, 2: 2}] * 2  # both numbers
    assert (tmp_path / "threads2" / "result.json").is_file()
    m = res["metrics"]
    assert (m["compared"], m["differ"], m["max_rel"]) == (3, 2, 0.5)
    assert {r["key"] for r in m["largest"]} == {"threads.used", "threads.worker"}
    assert all(r["cpu_s"] > 0 for r in res["runs"].values())
    assert [r["torch_threads"] for r in res["runs"].values()] == [1, 2]
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert saved["metrics"]["differ"] == 2 and len(saved["differ"]) == 2


def test_each_study_starts_with_its_expected_time_and_the_time_left(capsys, monkeypatch):
    """Before a study's own bar has measured its pace, `reproduce` says what to expect."""
    import math

    from lmlab import cli

    monkeypatch.setattr(cli, "err_console", __import__("rich.console").console.Console(
        stderr=True, width=200))
    hooks = cli._reproduce_progress(["a", "b", "c"], {"a": 65.0, "b": 600.0, "c": math.inf})
    hooks["on_start"](0, "a")
    hooks["on_start"](1, "b")
    hooks["on_start"](2, "c")
    err = capsys.readouterr().err.splitlines()
    assert "a: running the tiny preset (expected about 1:05)" in err[0]  # c's time is unknown
    assert "b: running the tiny preset (expected about 10:00)" in err[1]
    assert "c: running the tiny preset (no expected time)" in err[2]
    hooks = cli._reproduce_progress(["a", "b"], {"a": 65.0, "b": 600.0})
    hooks["on_start"](0, "a")
    assert "(expected about 1:05; eta for all 2 left 11:05)" in capsys.readouterr().err
