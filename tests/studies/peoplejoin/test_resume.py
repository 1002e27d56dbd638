"""The study's contract: the same seed twice gives the same numbers, and a run killed mid-way
(SIGKILL, after some episodes were saved) then resumed with --resume ends with the numbers of an
uninterrupted run. The per-episode transcript (saved after its verdict) is the resume point.

Sized to be cheap: the scripted contact policies, the table-server teammates (no model) and the
embedded SmolLM2-135M as judge, 2 items x 3 agents in the serial executor (the resume point is
the executor's business only through `on_result`; test_study runs the same path). One run costs
about 15-20 CPU-s, mostly start-up; three runs (full, killed, resumed) take minutes of wall time
on a crowded machine, hence the generous timeout.
"""

from __future__ import annotations

import json

import pytest
from tests.study_runs import assert_kill_resume_matches

SETS = ["agents=oracle-contacts,broadcast,none", "teammates=table-server",
        "judge_model=hf:smollm2-135m-instruct", "items=2", "n_boot=200", "executor=serial"]
ARGS = ["--preset", "tiny", *(a for s in SETS for a in ("--set", s))]


@pytest.mark.timeout(2400)
def test_kill_resume_and_same_seed(tmp_path):
    full = assert_kill_resume_matches(tmp_path, "peoplejoin", ARGS, marker="transcripts/*/*.json",
                                      count=2, timeout=1200)
    m = full["metrics"]
    assert m["episodes"] == 6 and m["check.rescore_equal"] == 1.0
    assert m["check.oracle.min_recall"] == 1.0 and m["check.broadcast.min_recall"] == 1.0
    assert json.loads((tmp_path / "full" / "episodes.json").read_text()) == {"run": 6, "kept": 0}
    resumed = json.loads((tmp_path / "killed" / "episodes.json").read_text())
    assert resumed["kept"] >= 2 and resumed["run"] + resumed["kept"] == 6  # saved ones not re-run
    # every episode's model calls were recorded in its own replayable file
    assert len(list((tmp_path / "full" / "llm_records").glob("*/*.jsonl"))) >= 4
