"""ttt-arc killed mid-way and resumed: the same metrics and verdicts as an uninterrupted run.

The pre-trained model (kept in the run folder) and each finished task job (the executor's job
cache) are the resume points. The same comparison is the study's same-seed determinism test:
the jobs run again after the kill must reproduce the uninterrupted run's values.
"""

from __future__ import annotations

from tests.study_runs import assert_kill_resume_matches

# A few pre-training steps, 3 held-out tasks, serial jobs: about 30 CPU-s for both runs.
MICRO = ["pretrain.steps=20", "model.n_layer=1", "model.d_model=32", "n_eval=3", "seeds=1",
         "ttt.max_tasks=4", "lora.r=4", "executor=serial", "n_boot=200", "cache_base=false"]


def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path) -> None:
    args = ["--preset", "tiny", *[a for kv in MICRO for a in ("--set", kv)]]
    full = assert_kill_resume_matches(tmp_path, "ttt-arc", args, marker="jobs/**/*.pkl")
    m = full["metrics"]
    assert m["tasks.n"] == 3 and m["pretrain.steps"] == 20
    assert (tmp_path / "killed" / "checkpoints").is_dir()  # the pre-trained model was kept
