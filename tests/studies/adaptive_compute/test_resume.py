"""Kill-and-resume and same-seed determinism of a real collection (SmolLM2-135M, 30 queries,
3 samples and a greedy answer each, in 2 worker processes): each finished chunk is kept in the
run folder (`jobs/**/*.pkl`), and a run killed after the first chunk and resumed ends with the
metrics, verdicts and sample table of an uninterrupted run. (That the killed run's workers die
with it is tests/test_executor.py::test_pool_workers_die_with_a_killed_parent.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.study_runs import assert_kill_resume_matches

ARGS = ["--preset", "tiny", "--set", "model=hf:smollm2-135m-instruct", "--set", "n_queries=30",
        "--set", "chunk=8", "--set", "n_samples=3", "--set", "b_max=3", "--set", "uniform_k=2,3",
        "--set", "routing_k=3", "--set", "compare_budget=2", "--set", "hidden_layer=6",
        "--set", "max_tokens=6", "--set", "n_boot=100", "--set", "probe_epochs=50"]


@pytest.mark.slow  # ~83 CPU-s: three `lmlab run`s, six worker processes loading the real SmolLM2
def test_kill_and_resume_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    full = assert_kill_resume_matches(tmp_path, "adaptive-compute", ARGS, marker="jobs/**/*.pkl")
    m = full["metrics"]
    assert m["collect.queries"] == 30 and m["collect.samples"] == 30 * 4 and m["collect.workers"] == 2
    # the table written by the resumed run is the uninterrupted run's, row for row
    name = m["collect.table"]
    rows = [(tmp_path / d / name).read_text().splitlines() for d in ("full", "killed")]
    assert rows[0] == rows[1] and len(rows[0]) == 30
    assert all(len(json.loads(r)["features"]["hidden"]) == 576 for r in rows[0])
