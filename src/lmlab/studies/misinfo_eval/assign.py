"""Balanced, seeded assignment of participants to conditions and feeds.

Conditions come in permuted blocks: participants 0..k-1 get a seeded permutation of the k
conditions, participants k..2k-1 the next block's permutation, and so on, so after every k
arrivals each condition has the same number of participants, and the order is unpredictable
to a participant but reproducible from the seed. Within a condition, feeds are taken in turn
from a seeded offset, so each condition covers the feeds evenly.

The personalized condition needs an explanation written for the participant's group; when the
feeds folder holds none for that exact group, the nearest group (most attributes equal, ties
broken by the key's order) is used and recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from lmlab.seeding import derive, numpy_rng
from lmlab.studies.misinfo_eval.data import ATTRIBUTES, Demographics


def condition_for(seq: int, conditions: Sequence[str], seed: int) -> str:
    """The condition of the participant who is the `seq`-th (0-based) to be assigned."""
    k = len(conditions)
    perm = numpy_rng(derive(seed, "assign", seq // k)).permutation(k)
    return conditions[int(perm[seq % k])]


def feed_for(index_in_condition: int, feed_ids: Sequence[str], condition: str, seed: int) -> str:
    """The feed of the `index_in_condition`-th participant of `condition`."""
    offset = derive(seed, "feed", condition) % len(feed_ids)
    return feed_ids[(offset + index_in_condition) % len(feed_ids)]


def nearest_group(group: Demographics, available: Sequence[str]) -> str:
    """The available group key closest to `group` (most equal attributes; ties: sorted order)."""
    if not available:
        raise ValueError("no groups available")

    def score(key: str) -> tuple[int, str]:
        other = Demographics.from_key(key)
        same = sum(getattr(group, a) == getattr(other, a) for a in ATTRIBUTES)
        return (-same, key)

    return min(available, key=score)
