"""Augmentations: the 23 TTT transforms and their inverses, the colour rule, demo shuffling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.studies.ttt_arc.strategies import grids

from lmlab.errors import LmlabError
from lmlab.studies.ttt_arc.arc import Example
from lmlab.studies.ttt_arc.transforms import (
    IDENTITY,
    INFERENCE_TRANSFORMS,
    TRANSFORMS_BY_NAME,
    TTT_TRANSFORMS,
    Shift,
    apply_colors,
    color_permutation,
    fits,
    shuffle_demos,
)

G = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int8)
DIHEDRAL = ("rot90", "rot180", "rot270", "flipud", "fliplr", "transpose")


def test_all_23_transforms_are_present():
    names = [t.name for t in TTT_TRANSFORMS]
    assert len(names) == 23 == len(set(names))
    assert set(names) == {
        *DIHEDRAL,
        "reflect_ud", "reflect_ud_mirror_first", "reflect_lr", "reflect_lr_mirror_first",
        "shift",
        "upscale2", "upscale_h2", "upscale_w2",
        *(f"{d}+upscale2" for d in DIHEDRAL),
        "tile2x1", "tile1x2", "tile2x2",
    }
    assert [t.name for t in INFERENCE_TRANSFORMS] == [
        "identity", "transpose", "flipud", "fliplr", "rot90", "rot180"
    ]


def test_transforms_on_a_known_grid():
    T = {t.name: t for t in TTT_TRANSFORMS}
    assert T["rot90"].apply(G).tolist() == [[3, 6], [2, 5], [1, 4]]  # counter-clockwise
    assert T["transpose"].apply(G).tolist() == [[1, 4], [2, 5], [3, 6]]
    assert T["reflect_ud"].apply(G).tolist() == [[1, 2, 3], [4, 5, 6], [4, 5, 6], [1, 2, 3]]
    assert T["reflect_lr_mirror_first"].apply(G).tolist() == [
        [3, 2, 1, 1, 2, 3], [6, 5, 4, 4, 5, 6]
    ]
    assert T["upscale_w2"].apply(G).tolist() == [[1, 1, 2, 2, 3, 3], [4, 4, 5, 5, 6, 6]]
    assert T["upscale2"].apply(G).shape == (4, 6)
    assert T["rot90+upscale2"].apply(G).tolist()[:2] == [[3, 3, 6, 6], [3, 3, 6, 6]]
    assert T["tile2x1"].apply(G).tolist() == [[1, 2, 3], [4, 5, 6], [1, 2, 3], [4, 5, 6]]
    assert T["tile2x2"].apply(G).shape == (4, 6)
    assert Shift.by(1, 0).apply(G).tolist() == [[4, 5, 6], [1, 2, 3]]


@settings(max_examples=60, deadline=None)
@given(grids(15), st.integers(0, 2**32 - 1))
def test_every_transform_followed_by_its_inverse_is_the_identity(g, seed):
    rng = np.random.default_rng(seed)
    for t in (IDENTITY, *TTT_TRANSFORMS):
        bound = t.bind(rng)
        out = bound.apply(g)
        assert out.dtype == g.dtype
        np.testing.assert_array_equal(bound.inverse(out), g, err_msg=bound.name)


@settings(max_examples=60, deadline=None)
@given(grids(30))
def test_dihedral_transforms_are_bijections(g):
    for name in DIHEDRAL:
        t = TRANSFORMS_BY_NAME[name]
        np.testing.assert_array_equal(t.apply(t.inverse(g)), g)


def test_inverse_of_a_shape_no_input_produces_is_none():
    odd = np.zeros((3, 3), np.int8)
    for name in ("upscale2", "upscale_h2", "tile2x1", "tile2x2", "reflect_ud", "rot90+upscale2"):
        assert TRANSFORMS_BY_NAME[name].inverse(odd) is None, name
    assert TRANSFORMS_BY_NAME["upscale_w2"].inverse(np.zeros((3, 2), np.int8)) is not None


def test_random_shift_is_drawn_once_per_task_and_must_be_bound():
    family = TRANSFORMS_BY_NAME["shift"]
    with pytest.raises(LmlabError, match="bound"):
        family.apply(G)
    rng = np.random.default_rng(0)
    shifts = {(s.dy, s.dx) for s in (family.bind(rng) for _ in range(200))}
    assert shifts == {(dy, dx) for dy in range(4) for dx in range(4)}
    bound = family.bind(np.random.default_rng(3))
    a, b = np.arange(20).reshape(4, 5), np.arange(30).reshape(5, 6)
    assert np.array_equal(bound.apply(a), np.roll(a, (bound.dy, bound.dx), (0, 1)))
    assert np.array_equal(bound.apply(b), np.roll(b, (bound.dy, bound.dx), (0, 1)))


def test_grids_over_30_do_not_fit():
    up = TRANSFORMS_BY_NAME["upscale2"]
    assert fits([up.apply(np.zeros((15, 15), np.int8))])
    assert not fits([up.apply(np.zeros((16, 3), np.int8))])
    assert not fits([np.zeros((1, 31))])


@settings(max_examples=200, deadline=None)
@given(st.lists(grids(5), min_size=1, max_size=4), st.integers(0, 2**32 - 1))
def test_color_map_is_a_bijection_fixing_0_that_prefers_unused_colours(gs, seed):
    perm = color_permutation(gs, np.random.default_rng(seed))
    assert sorted(perm.tolist()) == list(range(10)) and perm[0] == 0
    used = set(np.unique(np.concatenate([g.ravel() for g in gs])).tolist()) - {0}
    unused = set(range(1, 10)) - used
    image = {int(perm[c]) for c in used}
    if len(used) <= len(unused):
        assert image <= unused  # every used colour moved to a colour not in the task
    else:
        assert unused <= image  # all unused colours taken, the rest swapped among the used
    mapped = [apply_colors(g, perm) for g in gs]
    for g, m in zip(gs, mapped, strict=True):
        assert m.dtype == g.dtype
        np.testing.assert_array_equal(m, perm[g])  # one map, cell by cell, for every grid


def test_color_map_varies_with_the_seed_and_is_reproducible():
    gs = [G]
    maps = {tuple(color_permutation(gs, np.random.default_rng(s))) for s in range(30)}
    assert len(maps) > 10
    a = color_permutation(gs, np.random.default_rng(5))
    assert np.array_equal(a, color_permutation(gs, np.random.default_rng(5)))


def test_shuffle_demos_is_a_permutation():
    demos = [Example(np.full((1, 1), i), np.full((1, 1), i)) for i in range(6)]
    orders = set()
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = shuffle_demos(demos, rng)
        assert sorted(int(e.input[0, 0]) for e in s) == list(range(6))
        orders.add(tuple(int(e.input[0, 0]) for e in s))
    assert len(orders) > 5
