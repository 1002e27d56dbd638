"""The procedural ARC-like task generator: valid grids, consistent rules, a clean held-out split."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.studies.ttt_arc.arc import TestOutputAccess, reveal_solutions, validate_grid
from lmlab.studies.ttt_arc.generator import (
    FAMILIES,
    HELDOUT_COMPOSITIONS,
    TRAIN_COMPOSITIONS,
    apply_rule,
    generate_task,
    heldout_tasks,
    train_tasks,
    training_families,
)

ALL = (*FAMILIES, *TRAIN_COMPOSITIONS, *HELDOUT_COMPOSITIONS)


def _apply(task) -> callable:
    steps = task.family.split("+")

    def f(g: np.ndarray) -> np.ndarray:
        for fam, p in zip(steps, task.params, strict=True):
            g = apply_rule(fam, p, g)
        return g

    return f


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_every_family_gives_valid_consistent_tasks(split: str) -> None:
    rng = np.random.default_rng(0)
    for family in ALL:
        for _ in range(8):
            task = generate_task(family, rng, split=split)
            assert 3 <= len(task.demos) <= 4
            rule = _apply(task)
            for x, y in (*task.demos, task.test):
                validate_grid(x, family)
                validate_grid(y, family)
                assert 3 <= min(x.shape) and max(x.shape) <= 6, (family, x.shape)
                assert max(y.shape) <= 6
                # every pair follows the task's one rule, and the rule changes the grid
                assert np.array_equal(rule(x), y), family
                assert x.shape != y.shape or not np.array_equal(x, y), family
            inputs = {x.tobytes() + bytes(x.shape) for x, _ in (*task.demos, task.test)}
            assert len(inputs) == len(task.demos) + 1  # no repeated input


def test_rules_do_what_their_names_say() -> None:
    g = np.array([[1, 0, 0], [0, 2, 0], [3, 0, 0]])
    assert np.array_equal(apply_rule("gravity", {"dir": "down"}, g),
                          [[0, 0, 0], [1, 0, 0], [3, 2, 0]])
    assert np.array_equal(apply_rule("gravity", {"dir": "right"}, g),
                          [[0, 0, 1], [0, 0, 2], [0, 0, 3]])
    assert np.array_equal(apply_rule("dihedral", {"k": "transpose"}, g), g.T)
    assert np.array_equal(apply_rule("colormap", {"map": [(1, 5)]}, g),
                          [[5, 0, 0], [0, 2, 0], [3, 0, 0]])
    assert np.array_equal(apply_rule("fill", {"c": 4}, g), np.where(g == 0, 4, g))
    assert np.array_equal(apply_rule("crop", {}, np.pad([[1, 2], [0, 3]], 1)), [[1, 2], [0, 3]])
    assert apply_rule("tile", {"reps": (1, 2)}, g).shape == (3, 6)
    assert np.array_equal(apply_rule("scale", {"f": 2}, np.array([[1, 2]])),
                          [[1, 1, 2, 2], [1, 1, 2, 2]])
    # recolour by size: only the single-cell objects change
    h = np.array([[1, 1, 0], [0, 0, 0], [0, 2, 0]])
    assert np.array_equal(apply_rule("recolor", {"c": 7}, h), [[1, 1, 0], [0, 0, 0], [0, 7, 0]])


def test_heldout_compositions_never_in_training() -> None:
    train_pairs = {frozenset(c.split("+")) for c in TRAIN_COMPOSITIONS}
    for comp in HELDOUT_COMPOSITIONS:
        assert frozenset(comp.split("+")) not in train_pairs, comp  # in neither order
    train = train_tasks(300, seed=1)
    assert {t.family for t in train} == set(FAMILIES) | set(TRAIN_COMPOSITIONS)
    held = heldout_tasks(60, seed=1)
    assert {t.family for t in held} == set(HELDOUT_COMPOSITIONS)
    assert not {t.family for t in train} & {t.family for t in held}


def test_heldout_colour_parameters_are_unseen() -> None:
    def targets(tasks) -> set[int]:
        out = set()
        for t in tasks:
            for p in t.params:
                out |= {b for _, b in p.get("map", [])} | ({p["c"]} if "c" in p else set())
        return out

    train, held = targets(train_tasks(300, seed=2)), targets(heldout_tasks(80, seed=2))
    assert held and train and not held & train
    assert held <= {3, 6, 9}


def test_deterministic_per_seed_and_to_arc_guards_the_answer() -> None:
    a, b, c = heldout_tasks(5, seed=3), heldout_tasks(5, seed=3), heldout_tasks(5, seed=4)
    key = [(t.family, [x.tolist() for x, _ in t.demos]) for t in a]
    assert key == [(t.family, [x.tolist() for x, _ in t.demos]) for t in b]
    assert key != [(t.family, [x.tolist() for x, _ in t.demos]) for t in c]
    arc = a[0].to_arc()
    assert len(arc.train) == len(a[0].demos) and len(arc.test_inputs) == 1
    with pytest.raises(TestOutputAccess):
        _ = arc.test_outputs
    with reveal_solutions():
        assert np.array_equal(arc.test_outputs[0], a[0].test[1])


def test_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown family 'spin'"):
        generate_task("dihedral+spin", np.random.default_rng(0))


def test_family_colour_split_holds_out_pairs_not_colours() -> None:
    """Scheme "family": no held-out (family, target colour) pair occurs in training, yet every
    colour 1-9 is some training rule's new colour (under "global", 3/6/9 never are)."""
    def pairs(tasks) -> set[tuple[str, int]]:
        out = set()
        for t in tasks:
            for fam, p in zip(t.family.split("+"), t.params, strict=True):
                out |= {(fam, b) for _, b in p.get("map", [])} | ({(fam, p["c"])} if "c" in p
                                                                 else set())
        return out

    train = pairs(train_tasks(300, seed=2, colours="family"))
    held = pairs(heldout_tasks(80, seed=2, colours="family"))
    assert held and not held & train
    assert {c for _, c in train} == set(range(1, 10))
    assert {c for f, c in held if f == "fill"} <= {3, 6, 9}
    assert {c for f, c in held if f == "colormap"} <= {1, 4, 7}
    assert {c for _, c in pairs(train_tasks(300, seed=2))}.isdisjoint({3, 6, 9})
    with pytest.raises(ValueError, match="colours must be one of"):
        heldout_tasks(1, seed=0, colours="rainbow")


def test_singles_only_mix_has_no_composition() -> None:
    assert training_families(("none",), 2) == list(FAMILIES) * 2
    assert set(training_families(TRAIN_COMPOSITIONS)) - set(FAMILIES) == set(TRAIN_COMPOSITIONS)
    assert all("+" not in t.family for t in train_tasks(40, seed=1, compositions=("none",)))
