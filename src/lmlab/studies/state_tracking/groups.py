"""Permutation groups (S3, S5, A4, A5) as multiplication tables over lexicographically ordered elements.

An element is a permutation of 0..n-1 (a tuple), written 1-based as a digit string ("213").
A state is an arrangement of n items; an action rearranges it. Two conventions exist:

- `gather` (the official code): new[j] = old[a[j]], position j receives the item at a[j].
- `scatter` (the paper's Figure 1): new[a[i]] = old[i], the item at i moves to a[i].

Applying 42315 then 12534 to ABCDE gives DBECA under gather and DBAEC under scatter.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CONVENTIONS", "GROUPS", "Group", "apply_action", "make_group", "perm_parity"]

CONVENTIONS = ("gather", "scatter")
GROUPS = ("S3", "S5", "A4", "A5")


def perm_parity(p: tuple[int, ...]) -> int:
    """Parity of a permutation: its inversion count mod 2 (0 even, 1 odd)."""
    inv = sum(1 for i in range(len(p)) for j in range(i + 1, len(p)) if p[i] > p[j])
    return inv % 2


def apply_action(state: tuple, action: tuple[int, ...], convention: str = "gather") -> tuple:
    """Rearrange `state` (any sequence of items) by `action` (a 0-based permutation)."""
    if convention == "gather":
        return tuple(state[a] for a in action)
    if convention == "scatter":
        new: list = [None] * len(state)
        for i, a in enumerate(action):
            new[a] = state[i]
        return tuple(new)
    raise ValueError(f"unknown convention {convention!r}; choose one of {CONVENTIONS}")


@dataclass
class Group:
    """A permutation group with its elements in lexicographic order and its action table.

    `table[s, a]` is the index of the state reached by applying action `a` to state `s` (states
    are arrangements of the identity, hence elements too). `mul[a, b]` is the single action equal
    to `a` then `b`, so `table[table[s, a], b] == table[s, mul[a, b]]`. Under gather the state
    reached from the identity by an action is the action itself; under scatter it is its inverse.
    """

    name: str
    n: int
    convention: str
    elements: list[tuple[int, ...]]
    table: np.ndarray = field(repr=False)  # (G, G) int64
    parity: np.ndarray = field(repr=False)  # (G,) int64, 0 even / 1 odd
    mul: np.ndarray = field(repr=False)  # (G, G) int64, action composition
    identity: int = 0

    @property
    def order(self) -> int:
        return len(self.elements)

    def names(self) -> list[str]:
        """Elements as 1-based digit strings, e.g. '213'."""
        return ["".join(str(i + 1) for i in e) for e in self.elements]

    def index(self, name_or_perm: str | tuple[int, ...]) -> int:
        """Element index from a digit string ('213') or a 0-based tuple."""
        if isinstance(name_or_perm, str):
            name_or_perm = tuple(int(c) - 1 for c in name_or_perm)
        return self.elements.index(tuple(name_or_perm))

    def compose(self, indices: np.ndarray) -> np.ndarray:
        """States after each action: indices (..., T) -> (..., T), starting from the identity."""
        indices = np.asarray(indices)
        out = np.empty_like(indices)
        state = np.full(indices.shape[:-1], self.identity, dtype=indices.dtype)
        for t in range(indices.shape[-1]):
            state = self.table[state, indices[..., t]]
            out[..., t] = state
        return out

    def product_of_last(self, actions: np.ndarray, i: int) -> np.ndarray:
        """The single action equal to the last i actions (fewer at the start), at each position."""
        actions = np.asarray(actions)
        out = actions.copy()
        for t in range(actions.shape[-1]):
            prod = actions[..., max(0, t - i + 1)]
            for u in range(max(0, t - i + 1) + 1, t + 1):
                prod = self.mul[prod, actions[..., u]]
            out[..., t] = prod
        return out


def make_group(name: str = "S3", convention: str = "gather") -> Group:
    """S3, S5 or the alternating groups A4, A5 under the chosen convention."""
    if name not in GROUPS:
        raise ValueError(f"unknown group {name!r}; choose one of {GROUPS}")
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose one of {CONVENTIONS}")
    n = int(name[1:])
    elements = list(itertools.permutations(range(n)))  # lexicographic
    if name[0] == "A":
        elements = [e for e in elements if perm_parity(e) == 0]
    pos = {e: i for i, e in enumerate(elements)}
    table = np.array(
        [[pos[apply_action(s, a, convention)] for a in elements] for s in elements], dtype=np.int64
    )
    parity = np.array([perm_parity(e) for e in elements], dtype=np.int64)
    ident = pos[tuple(range(n))]
    # the action whose effect on the identity arrangement is the element: itself or its inverse
    of_state = {int(table[ident, e]): e for e in range(len(elements))}
    mul = np.array([[of_state[int(table[table[ident, a], b])] for b in range(len(elements))]
                    for a in range(len(elements))], dtype=np.int64)
    return Group(name, n, convention, elements, table, parity, mul, ident)
