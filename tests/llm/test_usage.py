"""Accounting: tokens and wall time per call, totalled per run folder."""

from __future__ import annotations

import json

from lmlab.llm import CALLS_FILE, USAGE_FILE, Recorder, Request, read_usage
from lmlab.llm import usage as usage_mod
from lmlab.runs import Run


def test_calls_are_totalled_in_the_run_folder(hf, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(usage_mod, "_LEDGERS", {})
    run = Run(tmp_path / "run")
    assert read_usage(run)["calls"] == 0
    hf.attach(run)
    try:
        out = hf.generate([Request.chat("Hi", n=2, max_tokens=3, seed=0), Request(prompt="A", max_tokens=2, seed=0)])
        Recorder(hf, tmp_path / "calls.jsonl").attach(run.path).generate([Request(prompt="A", max_tokens=2, seed=0)])
        # A second recorder over the same file replays the recorded call.
        Recorder(hf, tmp_path / "calls.jsonl").attach(run).generate([Request(prompt="A", max_tokens=2, seed=0)])
    finally:
        hf._ledgers.clear()
    usage = json.loads((run.path / USAGE_FILE).read_text())
    lines = [json.loads(x) for x in (run.path / CALLS_FILE).read_text().splitlines()]
    assert len(lines) == usage["calls"] == 3
    assert lines[0]["requests"] == 2 and lines[0]["completions"] == 3
    assert lines[0]["prompt_tokens"] == out[0][0].prompt_tokens + out[1][0].prompt_tokens
    assert lines[0]["completion_tokens"] == sum(c.completion_tokens for cs in out for c in cs)
    assert [x["replayed"] for x in lines] == [0, 0, 1]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["wall_s"] == round(sum(x["wall_s"] for x in lines), 6)
    assert set(usage["by_model"]) == {"hf:smollm2-135m-instruct"}
    assert read_usage(run.path) == usage
    # A resumed run (a new process) continues the folder's totals.
    monkeypatch.setattr(usage_mod, "_LEDGERS", {})
    Recorder(hf, tmp_path / "calls.jsonl").attach(run).generate([Request(prompt="A", max_tokens=2, seed=0)] * 2)
    resumed = read_usage(run)
    assert resumed["calls"] == 4 and resumed["requests"] == 6 and resumed["replayed"] == 2
