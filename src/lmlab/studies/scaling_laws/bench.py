"""`lmlab bench scaling-laws`: the vectorized 4^5-start Huber fit against a loop, same run.

One family's checkpoints past 1e10 tokens (OPT from the shared table by default; a synthetic
Chinchilla family when the table is not available) are fitted with the 1024-start grid three
ways, all float64 results compared on the same objective:

- `batched`: `fit_huber_grid`, every start at once (its coarse phase runs in float32 with 3
  backtracking rounds; the 4 best end points are polished in float64);
- `loop_numeric`: the same algorithm as a loop of `scipy.optimize.minimize` (L-BFGS-B) with
  SciPy's finite-difference gradient, the way reference implementations of the fit call it;
- `loop_analytic`: the same loop given the exact gradient, the strongest loop.

All three are timed alike: the whole job (every start of the grid, or the same evenly spaced
`starts` of it for all three), `repeats` runs each, the median wall and CPU time reported; no
time is extrapolated. Since the batched fit's coarse phase is cheaper float32, the final
objectives are reported beside the times: on the timed family for all three, and with one run of
the batched fit and of the strongest loop on every other family in the table (`families`),
where `batched_worse_families` lists where the batched objective exceeds the loop's by more than
1e-9 relative, and `batched_worst_rel` is the largest relative excess (negative: never worse).

The measurement runs in a child process with OMP/OpenBLAS/MKL limited to one thread, so both
sides get one core each: multithreaded BLAS inside SciPy's optimizer otherwise slows the loop
by up to 10x on a busy machine, which would flatter the batched fit.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

__all__ = ["all_families", "bench_huber_grid", "compare_families", "family_data", "measure"]


def family_data(family: str = "OPT", min_tokens: float = 1e10) -> tuple[np.ndarray, ...]:
    """(N, D, L) of a family's checkpoints past `min_tokens`, and where they come from."""
    from lmlab.studies.scaling_laws.data import colpret_available, load_colpret

    if colpret_available():
        t = load_colpret().only_family(family)
        t = t.where(t.tokens > min_tokens)
        if len(t):
            return t.num_params, t.tokens, t.loss, np.array(f"colpret:{family}")
    from lmlab.studies.scaling_laws.forms import chinchilla_loss

    rng = np.random.default_rng(0)
    n = np.repeat([1.25e8, 1.3e9, 6.7e9, 1.3e10, 3e10], 20)
    d = np.tile(np.geomspace(1.1e10, 3e11, 20), 5)
    loss = chinchilla_loss(n, d, 1.69, 406.4, 410.7, 0.34, 0.28) * np.exp(rng.normal(0, 0.01, 100))
    return n, d, loss, np.array("synthetic")


RELATIVE_TIE = 1e-9  # objectives this close (relative) are the same optimum


def _timed_runs(fit: Callable[[], Any], repeats: int) -> tuple[Any, list[float], list[float]]:
    """`fit()` run `repeats` times: its last result and every run's wall and CPU seconds."""
    walls, cpus, res = [], [], None
    for _ in range(max(1, repeats)):
        w, c = time.perf_counter(), time.process_time()
        res = fit()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return res, walls, cpus


def _relative_excess(batched: float, loop: float) -> float:
    """How much worse (relative) the batched objective is than the loop's; <= 0: not worse."""
    return (batched - loop) / max(abs(loop), 1e-300)


def all_families(min_tokens: float = 1e10) -> list[str]:
    """Every named family of the shared table with checkpoints past `min_tokens` (none: no table).

    Rows with an empty family name are no family (they mix unrelated models) and are left out.
    """
    from lmlab.studies.scaling_laws.data import colpret_available, load_colpret

    if not colpret_available():
        return []
    t = load_colpret()
    t = t.where(t.tokens > min_tokens)
    return sorted({str(f) for f in t.family if str(f).strip()})


def measure(family: str = "OPT", starts: int | None = None, repeats: int = 3,
            families: str | Sequence[str] | None = "all") -> dict[str, Any]:
    """Time the batched grid and both loops in this process (see the module docstring)."""
    from lmlab.studies.scaling_laws.fit import fit_huber_grid, fit_huber_loop
    from lmlab.studies.scaling_laws.forms import ChinchillaForm

    n, d, loss, source = family_data(family)
    form = ChinchillaForm()
    full = form.grid()
    grid = full if starts is None else full[:: max(1, len(full) // starts)]
    out: dict[str, Any] = {"family": str(source), "points": len(loss), "starts": len(grid),
                           "grid_starts": len(full), "repeats": max(1, repeats)}
    sides: dict[str, Callable[[], Any]] = {
        "batched": lambda: fit_huber_grid(form, n, d, loss, grid=grid),
        "loop_numeric": lambda: fit_huber_loop(form, n, d, loss, grid=grid, gradient="numeric"),
        "loop_analytic": lambda: fit_huber_loop(form, n, d, loss, grid=grid,
                                                gradient="analytic"),
    }
    results = {}
    for side, fit in sides.items():
        res, walls, cpus = _timed_runs(fit, repeats)
        results[side] = res
        out[f"{side}_s"] = round(statistics.median(walls), 4)
        out[f"{side}_cpu_s"] = round(statistics.median(cpus), 4)
        out[f"{side}_runs"] = len(walls)
        out[f"{side}_objective"] = res.objective
    for kind in ("numeric", "analytic"):
        out[f"speedup_vs_{kind}"] = round(out[f"loop_{kind}_s"] / out["batched_s"], 2)
        out[f"speedup_vs_{kind}_cpu"] = round(
            out[f"loop_{kind}_cpu_s"] / max(out["batched_cpu_s"], 1e-9), 2)
        excess = _relative_excess(results["batched"].objective,
                                  results[f"loop_{kind}"].objective)
        out[f"batched_rel_excess_vs_{kind}"] = float(f"{excess:.3g}")
    params = results["batched"].params()
    out.update({f"batched_{k}": round(v, 6) for k, v in params.items()
                if k in ("E", "A", "B", "alpha", "beta")})
    out.update(compare_families(families, grid, timed=family, timed_results=results))
    return out


def compare_families(families: str | Sequence[str] | None, grid: np.ndarray, timed: str,
                     timed_results: Mapping[str, Any]) -> dict[str, Any]:
    """Final objectives of the batched fit and the strongest loop on each family (one run each).

    The timed family reuses its timed results; `families="all"` is every family of the table.
    """
    from lmlab.studies.scaling_laws.fit import fit_huber_grid, fit_huber_loop
    from lmlab.studies.scaling_laws.forms import ChinchillaForm

    names = all_families() if families == "all" else list(families or [])
    if not names:
        return {}
    form = ChinchillaForm()
    per: dict[str, dict[str, float]] = {}
    wall = {"batched": 0.0, "loop_analytic": 0.0}
    cpu = dict(wall)
    for fam in names:
        if fam == timed:
            b, a = timed_results["batched"], timed_results["loop_analytic"]
        else:
            n, d, loss, _ = family_data(fam)
            b, bw, bc = _timed_runs(partial(fit_huber_grid, form, n, d, loss, grid=grid), 1)
            a, aw, ac = _timed_runs(partial(fit_huber_loop, form, n, d, loss, grid=grid,
                                            gradient="analytic"), 1)
            wall["batched"] += bw[0]
            wall["loop_analytic"] += aw[0]
            cpu["batched"] += bc[0]
            cpu["loop_analytic"] += ac[0]
        per[fam] = {"batched": b.objective, "loop_analytic": a.objective,
                    "rel_excess": float(f"{_relative_excess(b.objective, a.objective):.3g}")}
    worse = {f: v["rel_excess"] for f, v in per.items() if v["rel_excess"] > RELATIVE_TIE}
    others = [f for f in names if f != timed]
    return {
        "families_compared": len(per),
        "family_objectives": per,
        "batched_worse_families": worse,
        "batched_worst_rel": max(v["rel_excess"] for v in per.values()),
        "batched_never_worse": not worse,
        # one run of each side on every family other than the timed one, whole grids
        "other_families_batched_s": round(wall["batched"], 3),
        "other_families_batched_cpu_s": round(cpu["batched"], 3),
        "other_families_loop_analytic_s": round(wall["loop_analytic"], 3),
        "other_families_loop_analytic_cpu_s": round(cpu["loop_analytic"], 3),
        "other_families": len(others),
    }


def bench_huber_grid(family: str = "OPT", starts: int | None = None, repeats: int = 3,
                     families: str | Sequence[str] | None = "all",
                     isolate: bool = True) -> dict[str, Any]:
    """The benchmark: `measure` in a one-thread child process (or here, with isolate=False)."""
    if not isolate:
        return measure(family, starts, repeats, families)
    fams = families if families is None or isinstance(families, str) else list(families)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    code = ("import json, sys; from lmlab.studies.scaling_laws.bench import measure; "
            f"print(json.dumps(measure({family!r}, {starts!r}, {repeats!r}, {fams!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark process failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
