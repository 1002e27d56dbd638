"""The one place that chooses matplotlib's backend: studies draw figures through `pyplot()`.

Studies run headless (a terminal, a pool worker, CI), so figures render with the non-interactive
Agg backend and are saved into the run folder (`Run.save_figure`). Import pyplot from here, never
call `matplotlib.use` in a study:

    from lmlab.plotting import pyplot
    plt = pyplot()
    fig, ax = plt.subplots()
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["pyplot"]


def pyplot() -> ModuleType:
    """`matplotlib.pyplot`, with the headless Agg backend selected (idempotent)."""
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
