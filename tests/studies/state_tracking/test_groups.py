"""Groups: the test vectors, parity, closure and associativity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.studies.state_tracking.groups import GROUPS, apply_action, make_group, perm_parity


@pytest.mark.parametrize(("convention", "expected"), [("gather", "DBECA"), ("scatter", "DBAEC")])
def test_vectors(convention: str, expected: str) -> None:
    # 42315 then 12534 applied to ABCDE (research note 1.2)
    g = make_group("S5", convention)
    a, b = g.elements[g.index("42315")], g.elements[g.index("12534")]
    assert "".join(apply_action(apply_action(tuple("ABCDE"), a, convention), b, convention)) == expected
    state = g.compose(np.array([[g.index("42315"), g.index("12534")]]))[0, -1]
    assert "".join("ABCDE"[i] for i in g.elements[state]) == expected


def test_orders_and_lexicographic_order() -> None:
    assert [make_group(n).order for n in GROUPS] == [6, 120, 12, 60]
    s3 = make_group("S3")
    assert s3.names() == ["123", "132", "213", "231", "312", "321"]
    assert {n for n, p in zip(s3.names(), s3.parity, strict=True) if p} == {"132", "213", "321"}
    assert s3.identity == 0
    assert all(p == 0 for p in make_group("A5").parity)


@pytest.mark.parametrize("name", ["S3", "S5"])
@pytest.mark.parametrize("convention", ["gather", "scatter"])
def test_parity_identity(name: str, convention: str) -> None:
    # parity of the state = XOR of the action parities, on 10,000 random sequences
    g = make_group(name, convention)
    actions = np.random.default_rng(0).integers(0, g.order, size=(10_000, 20))
    states = g.compose(actions)
    xor = np.bitwise_xor.accumulate(g.parity[actions], axis=1)
    assert np.array_equal(g.parity[states], xor)
    # and the table agrees with inversion counting
    assert all(perm_parity(g.elements[s]) == p for s, p in zip(states[:50, -1], xor[:50, -1],
                                                                  strict=True))


@pytest.mark.parametrize("convention", ["gather", "scatter"])
def test_scatter_is_gather_of_the_inverse(convention: str) -> None:
    g, h = make_group("S3", "gather"), make_group("S3", "scatter")
    inv = [g.index(tuple(int(np.argsort(e)[i]) for i in range(3))) for e in g.elements]
    assert np.array_equal(h.table, g.table[:, inv])


GROUP_OBJS = {(n, c): make_group(n, c) for n in GROUPS for c in ("gather", "scatter")}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(GROUP_OBJS)), st.data())
def test_closure_and_associativity(key: tuple[str, str], data: st.DataObject) -> None:
    g = GROUP_OBJS[key]
    s, a, b = (data.draw(st.integers(0, g.order - 1)) for _ in range(3))
    assert 0 <= g.table[s, a] < g.order  # closure
    c = data.draw(st.integers(0, g.order - 1))
    assert 0 <= g.mul[a, b] < g.order
    assert g.mul[g.mul[a, b], c] == g.mul[a, g.mul[b, c]]  # associativity
    assert g.table[g.table[s, a], b] == g.table[s, g.mul[a, b]]  # an action of the group
    assert g.table[s, g.identity] == s and g.mul[g.identity, a] == a == g.mul[a, g.identity]
    assert g.parity[g.table[s, a]] == g.parity[s] ^ g.parity[a]


@pytest.mark.parametrize("convention", ["gather", "scatter"])
def test_product_of_last(convention: str) -> None:
    g = make_group("S3", convention)
    actions = np.random.default_rng(1).integers(0, 6, size=(50, 10))
    assert np.array_equal(g.table[g.identity][g.product_of_last(actions, 10)], g.compose(actions))
    assert np.array_equal(g.product_of_last(actions, 1), actions)
    p3 = g.product_of_last(actions, 3)
    assert np.array_equal(g.table[g.identity][p3[:, 5]], g.compose(actions[:, 3:6])[:, -1])


def test_unknown_group_or_convention() -> None:
    with pytest.raises(ValueError, match="unknown group"):
        make_group("S4")
    with pytest.raises(ValueError, match="unknown convention"):
        make_group("S3", "left")
