"""Voting: hand-built majority, fallback and tie-break cases; determinism; at most 2 attempts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.studies.ttt_arc.voting import (
    col_majority,
    flat_vote,
    hierarchical_vote,
    row_majority,
    top3,
)

A, B, C, D = (np.full((2, 2), v, np.int8) for v in (1, 2, 3, 4))
NAMES = {1: "A", 2: "B", 3: "C", 4: "D"}


def names(grids: list[np.ndarray]) -> list[str]:
    return [NAMES[int(g[0, 0])] for g in grids]


def test_majority_wins():
    preds = [(A, "identity"), (A, "identity"), (B, "identity"), (A, "transpose"), (B, "flipud")]
    assert names(hierarchical_vote(preds)) == ["A", "B"]
    assert names(flat_vote(preds)) == ["A", "B"]
    assert names(flat_vote([p for p, _ in preds])) == ["A", "B"]  # bare grids work too


def test_unparseable_predictions_are_dropped():
    preds = [(None, "identity"), (B, "transpose"), (None, "identity")]
    assert names(hierarchical_vote(preds)) == ["B"]  # one grid was predicted: one attempt
    assert hierarchical_vote([(None, "identity")]) == [] == hierarchical_vote([])
    assert flat_vote([None, None]) == []


def test_fallback_fills_a_group_with_fewer_than_3_distinct_grids():
    # unanimous: the row- and column-majority grids are the grid itself, so it votes 3 times
    assert names(top3([A])) == ["A", "A", "A"]
    # two distinct: the 3rd place falls back to the column-majority grid (row-majority is A)
    assert names(top3([A, B, A])) == ["A", "B", "A"]
    # three distinct: no fallback
    assert names(top3([C, B, A, B])) == ["B", "C", "A"]


def test_row_and_column_majority_grids():
    g = [np.array(x, np.int8) for x in (
        [[1, 1], [5, 5]], [[1, 1], [6, 6]], [[7, 7], [8, 8]], [[9, 9], [8, 8]],
    )]
    # row 0: [1 1] twice; row 1: [8 8] twice -> a grid nobody predicted
    assert row_majority(g).tolist() == [[1, 1], [8, 8]]
    # every column appears once: ties go to the first grid's columns
    assert col_majority(g).tolist() == [[1, 1], [5, 5]]
    # the most common shape decides the size; rows of another width are ignored
    mixed = [np.array([[1, 2]]), np.array([[3, 4], [5, 6]]), np.array([[3, 4], [7, 8]]),
             np.array([[9, 9, 9]])]
    assert row_majority(mixed).tolist() == [[3, 4], [5, 6]]


def test_tie_between_2nd_and_3rd_goes_to_the_identity_groups_favourite():
    preds = [
        (B, "identity"), (A, "identity"),
        (A, "transpose"), (C, "transpose"), (C, "transpose"),
        (A, "flipud"),
    ]
    # candidates: all [A C B], identity [B A B] (fallback), transpose [C A C] (fallback),
    # flipud [A A A] -> A 6, C 3, B 3: C is 2nd by first appearance, B 3rd; the identity
    # group predicted B once and C never, so B takes the 2nd attempt.
    assert names(hierarchical_vote(preds)) == ["A", "B"]
    assert names(flat_vote(preds)) == ["A", "C"]  # flat voting has no tie-break


def test_voting_is_deterministic_and_returns_at_most_two_distinct_attempts():
    rng = np.random.default_rng(0)
    groups = ["identity", "transpose", "flipud", "fliplr", "rot90", "rot180"]
    for _ in range(200):
        preds = [((A, B, C, D)[rng.integers(4)], groups[rng.integers(6)])
                 for _ in range(rng.integers(1, 12))]
        out = hierarchical_vote(preds)
        assert 1 <= len(out) <= 2
        assert len({g.tobytes() for g in out}) == len(out)
        assert names(out) == names(hierarchical_vote(list(preds)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 2), st.integers(1, 2),
                          st.sampled_from(["identity", "transpose", "rot90"])),
                min_size=1, max_size=10))
def test_attempts_come_from_the_predictions_or_their_majority_grids(spec):
    preds = [(np.full((h, w), c, np.int8), grp) for c, h, w, grp in spec]
    out = hierarchical_vote(preds)
    grids = [p for p, _ in preds]
    allowed = {g.tobytes() + bytes(g.shape) for g in grids}
    allowed |= {f(grids).tobytes() + bytes(f(grids).shape) for f in (row_majority, col_majority)}
    assert 1 <= len(out) <= 2
    assert all(g.tobytes() + bytes(g.shape) in allowed for g in out)
    flat = flat_vote(preds)
    counts = [sum(np.array_equal(f, g) for g in grids) for f in flat]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == max(sum(np.array_equal(h, g) for g in grids) for h in grids)
