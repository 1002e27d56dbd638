"""Kill-and-resume and same-seed determinism of the whole study, through the real `lmlab` command.

One uninterrupted run, and one SIGKILLed after its first finished job then resumed, must give
identical metrics (timing aside) and verdicts: the jobs kept before the kill are reused, the rest
re-run with their own derived seeds. A reduced grid (a few steps per job) keeps it cheap; the
width sweep is on, so its jobs resume too.
"""

from __future__ import annotations

from tests.study_runs import assert_kill_resume_matches

SMALL = ["executor=serial", "tasks=parens,modadd", "grid.seeds=2", "grid.baseline_seeds=1",
         "grid.widths=8,16", "grid.n_test=50", "grid.n_val=50", "grid.batch=16",
         "grid.eval_every=10", "parens.pairs=4", "parens.steps=40", "modadd.p=11",
         "modadd.steps=40", "memorize.n=8", "memorize.labels=8", "memorize.steps=40",
         "imitation.teacher_widths=4,8", "imitation.student_width=8", "imitation.steps=20",
         "imitation.batch=16", "imitation.n_test=32", "lm.widths=8,16", "lm.steps=20",
         "lm.batch=8", "lm.seq_len=16", "width.enabled=true", "width.tasks=needle",
         "width.widths=8,16", "width.seeds=2", "width.steps=20", "width.batch=8",
         "width.eval_every=10", "needle.keys=2", "needle.vocab=16"]


def test_killed_and_resumed_run_matches_an_uninterrupted_one(tmp_path) -> None:
    args = ["--preset", "tiny", *[a for s in SMALL for a in ("--set", s)]]
    full = assert_kill_resume_matches(tmp_path, "random-transformers", args,
                                      marker="jobs/**/*.pkl")
    m = full["metrics"]
    # tiny trains the baseline (full) models at the widest width only
    # grid, memorization, language modelling, imitation, and the width sweep (2 x 2 random + 1)
    assert m["jobs.count"] == 2 * (2 * 2 + 1) + 2 + 2 * 2 + 2 * 2 * 3 + 5
    assert "parens.random.width_gain.ci_lo" in m and "imitation.random.trend.ci_lo" in m
    assert "width.needle.random.trend.ci_lo" in m and "width.needle.full.d16.acc" in m
