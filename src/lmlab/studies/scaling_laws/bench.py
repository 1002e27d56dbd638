"""`lmlab bench scaling-laws`: the vectorized 4^5-start Huber fit against a loop, same run.

One family's checkpoints past 1e10 tokens (OPT from the shared table by default; a synthetic
Chinchilla family when the table is not available) are fitted with the 1024-start grid three
ways, all float64 results compared on the same objective:

- `batched`: `fit_huber_grid`, every start at once (median wall time of `repeats` runs);
- `loop_numeric`: the same algorithm as a loop of `scipy.optimize.minimize` (L-BFGS-B) with
  SciPy's finite-difference gradient, the way reference implementations of the fit call it;
- `loop_analytic`: the same loop given the exact gradient, the strongest loop.

The measurement runs in a child process with OMP/OpenBLAS/MKL limited to one thread, so both
sides get one core each: multithreaded BLAS inside SciPy's optimizer otherwise slows the loop
by up to 10x on a busy machine, which would flatter the batched fit. `loop_starts` times the
loops on an evenly spaced subset of the grid and scales the time up (None: all 1024).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

__all__ = ["bench_huber_grid", "family_data", "measure"]


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


def measure(family: str = "OPT", loop_starts: int | None = None,
            repeats: int = 3) -> dict[str, Any]:
    """Time the batched grid and both loops in this process (see the module docstring)."""
    from lmlab.studies.scaling_laws.fit import fit_huber_grid, fit_huber_loop
    from lmlab.studies.scaling_laws.forms import ChinchillaForm

    n, d, loss, source = family_data(family)
    form = ChinchillaForm()
    grid = form.grid()
    out: dict[str, Any] = {"family": str(source), "points": len(loss), "starts": len(grid)}
    times, cpu = [], []
    batched = None
    for _ in range(max(1, repeats)):
        w, c = time.perf_counter(), time.process_time()
        batched = fit_huber_grid(form, n, d, loss)
        times.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    assert batched is not None
    out["batched_s"] = round(statistics.median(times), 4)
    out["batched_cpu_s"] = round(statistics.median(cpu), 4)
    out["batched_objective"] = batched.objective
    sub = grid if loop_starts is None else grid[:: max(1, len(grid) // loop_starts)]
    scale = len(grid) / len(sub)
    for kind in ("numeric", "analytic"):
        w = time.perf_counter()
        loop = fit_huber_loop(form, n, d, loss, grid=sub, gradient=kind)  # type: ignore[arg-type]
        out[f"loop_{kind}_s"] = round((time.perf_counter() - w) * scale, 3)
        out[f"loop_{kind}_objective"] = loop.objective
        out[f"speedup_vs_{kind}"] = round(out[f"loop_{kind}_s"] / out["batched_s"], 2)
    out["loop_starts_timed"] = len(sub)
    params = batched.params()
    out.update({f"batched_{k}": round(v, 6) for k, v in params.items()
                if k in ("E", "A", "B", "alpha", "beta")})
    return out


def bench_huber_grid(family: str = "OPT", loop_starts: int | None = None, repeats: int = 3,
                     isolate: bool = True) -> dict[str, Any]:
    """The benchmark: `measure` in a one-thread child process (or here, with isolate=False)."""
    if not isolate:
        return measure(family, loop_starts, repeats)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    code = ("import json, sys; from lmlab.studies.scaling_laws.bench import measure; "
            f"print(json.dumps(measure({family!r}, {loop_starts!r}, {repeats!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark process failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
