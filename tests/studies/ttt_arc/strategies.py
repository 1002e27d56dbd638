"""Hypothesis strategies shared by the ttt-arc tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def grids(max_side: int = 30) -> st.SearchStrategy[np.ndarray]:
    """ARC grids: 1x1 to max_side x max_side, colours 0-9."""
    shapes = st.tuples(st.integers(1, max_side), st.integers(1, max_side))
    return shapes.flatmap(lambda s: hnp.arrays(np.int8, s, elements=st.integers(0, 9)))
