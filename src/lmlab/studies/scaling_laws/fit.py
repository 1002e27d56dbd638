"""Fitting a form to checkpoint losses: least squares (the paper's), Huber multi-start, bootstrap.

- `fit_least_squares`: SciPy `curve_fit` on raw loss, unweighted, from the paper's single start,
  with the form's bounds (α, β >= 0 for Chinchilla), hence the trust-region reflective method;
  when that raises (no convergence), one retry with `dogbox` and `x_scale` set from the start,
  as ColPret does. A fit that still fails is returned with `success=False` (a white cell).
- `fit_huber_grid`: Hoffmann et al.'s objective, sum of Huber_δ(log L̂ - log L) with δ = 1e-3,
  minimized by L-BFGS from every point of the form's start grid (4^5 = 1024 for Chinchilla), the
  best end point kept. All starts run at once: `batched_lbfgs` keeps one L-BFGS state per start
  (its own history, step and line search) in `(S, P)` float64 tensors, so 1024 optimizations
  cost about as much as a few dozen, not 1024 (see `lmlab bench scaling-laws`). The model
  size N goes in the N slot (the paper's torch path passes FLOPs there; that is not copied).
- `fit_huber_loop`: the same objective and grid as a Python loop of `scipy.optimize.minimize`
  (L-BFGS-B with the analytic gradient): the reference the vectorized fit is measured against.
- `bootstrap`: percentile intervals over fits to resampled rows (the Huber version fits all
  resamples at once, as weighted problems in one batch).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from lmlab.errors import LmlabError
from lmlab.studies.scaling_laws.forms import ChinchillaForm, Form

__all__ = [
    "FITTERS",
    "FitResult",
    "batched_lbfgs",
    "bootstrap",
    "bootstrap_thetas",
    "fit",
    "fit_huber_grid",
    "fit_huber_loop",
    "fit_least_squares",
    "huber_objective",
    "lbfgs_direction",
    "single_thread",
]

FITTERS = ("least-squares", "huber-grid")
Fitter = Literal["least-squares", "huber-grid"]
HUBER_DELTA = 1e-3


@dataclass
class FitResult:
    """A fitted form: parameters `theta`, the objective at them, and how the fit went."""

    form: Form
    theta: np.ndarray
    method: str
    objective: float
    success: bool
    n_points: int
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def predict(self, n: Any, d: Any) -> np.ndarray:
        """L̂ at sizes `n` and tokens `d`; NaN when the fit failed."""
        if not self.success:
            return np.full(np.broadcast(np.asarray(n), np.asarray(d)).shape, np.nan)
        with np.errstate(all="ignore"):
            return self.form.predict(self.theta, n, d)

    def params(self) -> dict[str, float]:
        """Named parameters (fitted ones plus E, A, B, alpha, beta where defined)."""
        return self.form.describe(self.theta)


def _check(n: Any, d: Any, loss: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d, loss = (np.asarray(x, dtype=np.float64).ravel() for x in (n, d, loss))
    if not (len(n) == len(d) == len(loss)):
        raise LmlabError(f"fit: n, d and loss differ in length ({len(n)}, {len(d)}, {len(loss)})")
    if len(n) == 0:
        raise LmlabError("fit: no data points")
    for name, x in (("num_params", n), ("tokens", d), ("loss", loss)):
        if not (np.all(np.isfinite(x)) and np.all(x > 0)):
            raise LmlabError(f"fit: {name} must be finite and positive")
    return n, d, loss


# -- least squares ------------------------------------------------------------------------------
def fit_least_squares(form: Form, n: Any, d: Any, loss: Any,
                      p0: Any = None) -> FitResult:
    """Unweighted least squares on raw loss with the form's bounds (the paper's fit)."""
    from scipy.optimize import OptimizeWarning, curve_fit

    n, d, loss = _check(n, d, loss)
    guess = np.asarray(form.guess if p0 is None else p0, dtype=np.float64)

    def f(_x: Any, *theta: float) -> np.ndarray:
        return form.predict(np.asarray(theta), n, d)

    bounds = (np.asarray(form.lower), np.asarray(form.upper))
    method = "least-squares"
    message = ""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", OptimizeWarning)
        try:
            try:
                theta, _ = curve_fit(f, None, loss, p0=guess, bounds=bounds)
            except RuntimeError:
                method = "least-squares/dogbox"
                theta, _ = curve_fit(f, None, loss, p0=guess, bounds=bounds, method="dogbox",
                                     x_scale=np.maximum(np.abs(guess), 1e-2))
        except (RuntimeError, ValueError, np.linalg.LinAlgError) as e:
            return FitResult(form, np.full(len(guess), np.nan), method, float("nan"), False,
                             len(loss), f"{type(e).__name__}: {e}")
        pred = f(None, *theta)
    sse = float(np.sum((pred - loss) ** 2))
    ok = bool(np.all(np.isfinite(theta)) and np.isfinite(sse))
    return FitResult(form, np.asarray(theta, dtype=np.float64), method, sse, ok, len(loss), message)


# -- Huber, vectorized ------------------------------------------------------------------------
def _huber(r: torch.Tensor, delta: float) -> torch.Tensor:
    """Huber_δ(r) = r²/2 for |r| <= δ, else δ(|r| - δ/2); as c(|r| - c/2) with c = min(|r|, δ)."""
    a = r.abs()
    c = a.clamp(max=delta)
    return c * (a - 0.5 * c)


class HuberObjective:
    """theta (S, P) -> per-start objective (S,): sum of Huber_δ(log L̂ - log L), maybe weighted.

    `weights` is (n,) or (S, n) (one weighting per start, as in the batched bootstrap). Calling
    it gives the values; `value_and_grad` also the gradients, analytic for Chinchilla (about
    twice as fast as autograd, which every other form uses).
    """

    def __init__(self, form: Form, log_n: torch.Tensor, log_d: torch.Tensor, log_l: torch.Tensor,
                 delta: float = HUBER_DELTA, weights: torch.Tensor | None = None) -> None:
        self.form, self.delta, self.weights = form, delta, weights
        self.log_n, self.log_d, self.log_l = log_n, log_d, log_l

    def _w(self, rows: torch.Tensor | None) -> torch.Tensor | None:
        w = self.weights
        if w is None or w.dim() == 1 or rows is None:
            return w
        return w[rows]

    def __call__(self, theta: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        r = self.form.log_predict(theta, self.log_n, self.log_d, torch) - self.log_l  # (S, n)
        h = _huber(r, self.delta)
        w = self._w(rows)
        return (h if w is None else h * w).sum(-1)

    def value_and_grad(self, theta: torch.Tensor,
                       rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Values (S,) and gradients (S, P)."""
        if type(self.form) is not ChinchillaForm:
            z = theta.detach().requires_grad_(True)
            f = self(z, rows)
            (g,) = torch.autograd.grad(f.sum(), z)
            return f.detach(), g
        a, b, e, alpha, beta = theta.unbind(-1)
        u = torch.exp(a[:, None] - alpha[:, None] * self.log_n)  # (S, n): A / N^α
        v = torch.exp(b[:, None] - beta[:, None] * self.log_d)  # (S, n): B / D^β
        ee = torch.exp(e)  # (S,): E
        s = u + v + ee[:, None]
        r = torch.log(s) - self.log_l
        h = _huber(r, self.delta)
        psi = r.clamp(-self.delta, self.delta)  # dHuber/dr
        w = self._w(rows)
        if w is not None:
            h, psi = h * w, psi * w
        q = psi / s
        qu, qv = q * u, q * v
        g = torch.stack([qu.sum(-1), qv.sum(-1), q.sum(-1) * ee,
                         -(qu @ self.log_n), -(qv @ self.log_d)], dim=-1)
        return h.sum(-1), g


def huber_objective(form: Form, log_n: torch.Tensor, log_d: torch.Tensor, log_l: torch.Tensor,
                    delta: float = HUBER_DELTA,
                    weights: torch.Tensor | None = None) -> HuberObjective:
    """The Huber objective of `form` on log data (see `HuberObjective`)."""
    return HuberObjective(form, log_n, log_d, log_l, delta, weights)


def lbfgs_direction(g: torch.Tensor, s_hist: torch.Tensor, y_hist: torch.Tensor,
                    valid: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """-H g for a batch of L-BFGS states, in the compact form of Byrd, Nocedal & Schnabel (1994).

    g (B, P); s_hist, y_hist (B, m, P) oldest first; valid (B, m) marks filled slots (empty ones
    hold zeros); gamma (B,) scales the initial matrix. With S, Y the pairs, R = triu(SᵀY) and
    D = diag(SᵀY): H = γI + [S γY] [[R⁻ᵀ(D + γYᵀY)R⁻¹, -R⁻ᵀ], [-R⁻¹, 0]] [Sᵀ; γYᵀ]. This is the
    two-loop recursion's product in a dozen batched matrix operations instead of 4m vector
    steps. An empty slot gets R_ii = 1; its zero pair then contributes nothing.
    """
    sy = s_hist @ y_hist.mT  # (B, m, m): s_i . y_j
    eye = torch.diag_embed((~valid).to(g.dtype))  # 1 on the diagonal of empty slots
    r = torch.triu(sy) + eye
    dg = torch.diagonal(sy, dim1=-2, dim2=-1)  # (B, m)
    u = s_hist @ g[:, :, None]  # (B, m, 1): Sᵀ g
    w = gamma[:, None, None] * (y_hist @ g[:, :, None])  # γ Yᵀ g
    p = torch.linalg.solve_triangular(r, u, upper=True)  # R⁻¹ Sᵀ g
    yy = y_hist @ y_hist.mT
    q = dg[:, :, None] * p + gamma[:, None, None] * (yy @ p) - w
    top = torch.linalg.solve_triangular(r.mT, q, upper=False)  # R⁻ᵀ (...)
    hg = gamma[:, None] * g + (s_hist.mT @ top)[..., 0] - gamma[:, None] * (y_hist.mT @ p)[..., 0]
    return -hg


def batched_lbfgs(
    objective: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    x0: torch.Tensor,
    *,
    max_iter: int = 500,
    history: int = 10,
    tol_grad: float = 1e-10,
    tol_change: float = 1e-10,
    f_scale: float = 0.0,
    c1: float = 1e-4,
    max_backtrack: int = 10,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Minimize B independent problems at once with L-BFGS; returns (x, f, iterations).

    `objective(x, rows)` maps points `x (b, P)` of the problems `rows` (indices into the batch)
    to their values `(b,)`; problem i may depend only on `x[i]`. Its gradients come from
    `objective.value_and_grad(x, rows)` when it has one, else from autograd of the sum (which is
    each problem's own gradient). Each problem keeps its own curvature pairs (`history` of them),
    scaling and Armijo backtracking step; it stops when its gradient is below `tol_grad`, when a
    step gains less than `tol_change * (|f| + f_scale)`, or when its line search fails, and
    costs nothing after that. Works in x0's dtype.
    """
    x = x0.detach().clone()
    B, P = x.shape
    m = history
    s_hist = torch.zeros(B, m, P, dtype=x.dtype)
    y_hist = torch.zeros(B, m, P, dtype=x.dtype)
    valid = torch.zeros(B, m, dtype=torch.bool)
    gamma = torch.ones(B, dtype=x.dtype)
    iters = torch.zeros(B, dtype=torch.long)

    def value_and_grad(z: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if hasattr(objective, "value_and_grad"):
            f, g = objective.value_and_grad(z.detach(), rows)
            return f.detach(), g.detach()
        z = z.detach().requires_grad_(True)
        f = objective(z, rows)
        (g,) = torch.autograd.grad(f.sum(), z)
        return f.detach(), g.detach()

    f, g = value_and_grad(x, torch.arange(B))
    active = torch.isfinite(f) & torch.isfinite(g).all(-1)
    for it in range(max_iter):
        rows = active.nonzero().squeeze(1)
        if len(rows) == 0:
            break
        xa, fa, ga = x[rows], f[rows], g[rows]
        sh, yh, va = s_hist[rows], y_hist[rows], valid[rows]
        d = lbfgs_direction(ga, sh, yh, va, gamma[rows])
        gd = (ga * d).sum(-1)
        bad = ~(gd < 0) | ~torch.isfinite(gd)  # not a descent direction: fall back to -g
        if bad.any():
            d[bad] = -ga[bad]
            gd = torch.where(bad, -(ga * ga).sum(-1), gd)
        # The first step is scaled to unit length (as in torch's L-BFGS); later ones try t = 1.
        t = torch.ones_like(fa)
        if it == 0:
            t = (1.0 / ga.abs().sum(-1).clamp_min(1e-12)).clamp(max=1.0)
        # Backtracking: first t alone (usually accepted), then rounds of four step sizes (t/2 ..
        # t/16) evaluated in one call, the largest that satisfies Armijo winning. Rounds, not
        # points, cost Python overhead.
        x_new, f_new = xa.clone(), fa.clone()
        pending = torch.ones(len(rows), dtype=torch.bool)
        idx = torch.arange(len(rows))
        factors = torch.ones(1, dtype=x.dtype)
        for _ in range(max_backtrack + 1):
            k, j = len(idx), len(factors)
            ts = t[idx, None] * factors  # (k, j)
            xt = xa[idx, None, :] + ts[..., None] * d[idx, None, :]  # (k, j, P)
            with torch.no_grad():
                ft = objective(xt.reshape(j * k, P), rows[idx].repeat_interleave(j)).reshape(k, j)
            ok = torch.isfinite(ft) & (ft <= fa[idx, None] + c1 * ts * gd[idx, None])
            any_ok = ok.any(-1)
            first_ok = ok.to(torch.int8).argmax(-1)  # the largest step that passes
            acc = idx[any_ok]
            sel = first_ok[any_ok]
            x_new[acc] = xt[any_ok, sel]
            f_new[acc] = ft[any_ok, sel]
            pending[acc] = False
            idx = idx[~any_ok]
            if len(idx) == 0:
                break
            t[idx] *= factors[-1]
            factors = torch.tensor([0.5, 0.25, 0.125, 0.0625], dtype=x.dtype)
        moved = ~pending
        f2, g2 = value_and_grad(x_new, rows)
        s, y = x_new - xa, g2 - ga
        sy = (s * y).sum(-1)
        yy = (y * y).sum(-1)
        # Keep a pair only if it has positive curvature (relative to its size).
        good = moved & (sy > 1e-10 * (s * s).sum(-1).sqrt() * yy.sqrt()) & torch.isfinite(sy)
        gz = good[:, None, None]
        s_hist[rows] = torch.where(gz, torch.cat([sh[:, 1:], s[:, None]], 1), sh)
        y_hist[rows] = torch.where(gz, torch.cat([yh[:, 1:], y[:, None]], 1), yh)
        valid[rows] = torch.where(good[:, None], torch.cat([va[:, 1:], good[:, None]], 1), va)
        gamma[rows] = torch.where(good, sy / yy.clamp_min(torch.finfo(x.dtype).tiny), gamma[rows])
        x[rows] = torch.where(moved[:, None], x_new, xa)
        f[rows] = torch.where(moved, f2, fa)
        g[rows] = torch.where(moved[:, None], g2, ga)
        iters[rows] += 1
        done = (~moved) | (g2.abs().amax(-1) <= tol_grad) | (
            (fa - f2).abs() <= tol_change * (fa.abs() + f_scale))
        active[rows] = ~done
    return x, f, iters


def single_thread() -> AbstractContextManager[None]:
    """Run torch on one thread: the batched fit's tensors are small, and OpenMP threads only add
    synchronization (and stall badly when other processes share the cores)."""
    from lmlab.executor import torch_threads

    return torch_threads(1)


def fit_huber_grid(form: Form, n: Any, d: Any, loss: Any, *, grid: np.ndarray | None = None,
                   delta: float = HUBER_DELTA, coarse_iter: int = 50, polish: int = 4) -> FitResult:
    """Huber on log loss, L-BFGS from every start of the grid at once; the best end point wins.

    Two phases, as a capped multi-start search usually is (the paper's torch path caps each
    start at 50 L-BFGS steps): every start runs up to `coarse_iter` iterations in float32, where
    exp and log are 3x faster and precision (1e-7 on log L) is far below δ; the `polish` best end
    points then continue in float64 to a tight tolerance, and the best of those is returned.
    """
    n, d, loss = _check(n, d, loss)
    starts = np.asarray(form.grid() if grid is None else grid, dtype=np.float64)
    logs = [np.log(v) for v in (n, d, loss)]
    f_scale = delta**2 * len(loss)
    with single_thread():
        obj32 = huber_objective(form, *(torch.as_tensor(v, dtype=torch.float32) for v in logs),
                                delta)
        # Few backtracking rounds here: a float32 start that cannot descend is done anyway.
        x32, f32, it1 = batched_lbfgs(obj32, torch.as_tensor(starts, dtype=torch.float32),
                                      max_iter=coarse_iter, tol_change=1e-6, f_scale=f_scale,
                                      max_backtrack=3)
        f32 = torch.where(torch.isfinite(f32), f32, torch.full_like(f32, float("inf")))
        top = torch.argsort(f32)[: max(polish, 1)]
        top = top[torch.isfinite(f32[top])]
        if len(top) == 0:
            return FitResult(form, np.full(starts.shape[1], np.nan), "huber-grid", float("inf"),
                             False, len(loss), "no start reached a finite objective")
        obj64 = huber_objective(form, *(torch.as_tensor(v) for v in logs), delta)
        # Relative progress only: on noise-free data f heads to 0 along narrow valleys, and an
        # absolute floor would stop it short of the parameters that generated the data.
        x, f, it2 = batched_lbfgs(obj64, x32[top].to(torch.float64), max_iter=1000,
                                  tol_change=1e-12)
    best = int(torch.argmin(torch.where(torch.isfinite(f), f, torch.full_like(f, float("inf")))))
    ok = bool(torch.isfinite(f[best]))
    return FitResult(form, x[best].numpy().copy(), "huber-grid", float(f[best]), ok, len(loss),
                     extra={"starts": len(starts), "iterations": int(it1.sum() + it2.sum())})


def _chinchilla_huber_np(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray,
                         log_l: np.ndarray, delta: float) -> tuple[float, np.ndarray]:
    """The Chinchilla Huber objective and its gradient for one theta, in numpy."""
    a, b, e, alpha, beta = theta
    u, v, ee = np.exp(a - alpha * log_n), np.exp(b - beta * log_d), np.exp(e)
    s = u + v + ee
    r = np.log(s) - log_l
    ar = np.abs(r)
    h = np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))
    q = np.clip(r, -delta, delta) / s
    qu, qv = q * u, q * v
    return float(h.sum()), np.array([qu.sum(), qv.sum(), q.sum() * ee, -(qu @ log_n),
                                     -(qv @ log_d)])


def fit_huber_loop(form: Form, n: Any, d: Any, loss: Any, *, grid: np.ndarray | None = None,
                   delta: float = HUBER_DELTA, coarse_iter: int = 50, polish: int = 4,
                   gradient: Literal["analytic", "numeric"] = "numeric") -> FitResult:
    """`fit_huber_grid`'s algorithm as a loop: one `scipy.optimize.minimize` (L-BFGS-B) per start.

    Same objective, grid, iteration cap and polish, in float64 numpy. `gradient="numeric"` lets
    SciPy difference the objective (its default without `jac`, and how public reference
    implementations of the Chinchilla fit call it); `"analytic"` passes the exact gradient
    (numpy for Chinchilla, torch otherwise): the strongest loop. These are the references that
    `lmlab bench scaling-laws` measures the batched fit against.
    """
    from scipy.optimize import minimize

    n, d, loss = _check(n, d, loss)
    starts = form.grid() if grid is None else np.asarray(grid, dtype=np.float64)
    log_n, log_d, log_l = np.log(n), np.log(d), np.log(loss)
    if type(form) is ChinchillaForm:
        def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
            return _chinchilla_huber_np(theta, log_n, log_d, log_l, delta)
    else:
        obj = huber_objective(form, *(torch.as_tensor(v) for v in (log_n, log_d, log_l)), delta)

        def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
            f, g = obj.value_and_grad(torch.as_tensor(theta, dtype=torch.float64)[None])
            return float(f[0]), g[0].numpy().copy()

    def run(x0: np.ndarray, max_iter: int, ftol: float) -> tuple[float, np.ndarray]:
        if gradient == "analytic":
            res = minimize(fun, x0, jac=True, method="L-BFGS-B",
                           options={"maxiter": max_iter, "ftol": ftol, "gtol": 1e-10})
        else:
            res = minimize(lambda t: fun(t)[0], x0, method="L-BFGS-B",
                           options={"maxiter": max_iter, "ftol": ftol, "gtol": 1e-10})
        return (float(res.fun) if np.isfinite(res.fun) else float("inf")), np.asarray(res.x)

    with np.errstate(all="ignore"):
        coarse = [run(s, coarse_iter, 1e-6) for s in starts]
        order = np.argsort([f for f, _ in coarse])[:polish]
        fine = [run(coarse[i][1], 1000, 1e-12) for i in order if np.isfinite(coarse[i][0])]
    if not fine:
        return FitResult(form, np.full(starts.shape[1], np.nan), "huber-loop", float("inf"),
                         False, len(loss), "no start reached a finite objective")
    best_f, best_x = min(fine, key=lambda r: r[0])
    return FitResult(form, best_x, f"huber-loop/{gradient}", best_f, bool(np.isfinite(best_f)),
                     len(loss), extra={"starts": len(starts)})


def fit(form: Form, n: Any, d: Any, loss: Any, fitter: str = "least-squares") -> FitResult:
    """Fit with the fitter called `fitter` (least-squares or huber-grid)."""
    if fitter == "least-squares":
        return fit_least_squares(form, n, d, loss)
    if fitter == "huber-grid":
        return fit_huber_grid(form, n, d, loss)
    raise LmlabError(f"unknown fitter {fitter!r}; fitters: {', '.join(FITTERS)}")


# -- bootstrap ----------------------------------------------------------------------------------
def bootstrap_thetas(form: Form, n: Any, d: Any, loss: Any, fitter: str = "least-squares", *,
                     n_boot: int = 200, seed: int = 0,
                     point: FitResult | None = None) -> np.ndarray:
    """Parameters fitted to `n_boot` resamples of the rows (with replacement), (B', P).

    Each resample starts from the point estimate (fitted here unless `point` is given); failed
    refits are dropped. The Huber version fits all resamples in one batch, each with its own
    multinomial row weights.
    """
    n, d, loss = _check(n, d, loss)
    point = point or fit(form, n, d, loss, fitter)
    if not point.success:
        return np.empty((0, len(point.theta)))
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(loss), np.full(len(loss), 1.0 / len(loss)), size=n_boot)
    thetas: list[np.ndarray] = []
    if fitter == "huber-grid":
        log_n, log_d, log_l = (torch.as_tensor(np.log(v)) for v in (n, d, loss))
        w = torch.as_tensor(counts, dtype=torch.float64)
        obj = huber_objective(form, log_n, log_d, log_l, weights=w)
        x0 = torch.as_tensor(np.tile(point.theta, (n_boot, 1)))
        with single_thread():
            x, f, _ = batched_lbfgs(obj, x0, max_iter=1000, tol_change=1e-12,
                                    f_scale=HUBER_DELTA**2 * len(loss))
        thetas = [t for t, fv in zip(x.numpy(), f.numpy(), strict=True) if np.isfinite(fv)]
    else:
        for c in counts:
            idx = np.repeat(np.arange(len(loss)), c)
            r = fit_least_squares(form, n[idx], d[idx], loss[idx], p0=point.theta)
            if r.success:
                thetas.append(r.theta)
    return np.array(thetas).reshape(-1, len(point.theta))


def bootstrap(form: Form, n: Any, d: Any, loss: Any, fitter: str = "least-squares", *,
              n_boot: int = 200, seed: int = 0, level: float = 0.95,
              point: FitResult | None = None) -> dict[str, tuple[float, float]]:
    """Percentile intervals of every named parameter (`Form.describe`) over bootstrap refits."""
    thetas = bootstrap_thetas(form, n, d, loss, fitter, n_boot=n_boot, seed=seed, point=point)
    if len(thetas) == 0:
        return {}
    described = [form.describe(t) for t in thetas]
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    return {
        k: (float(np.quantile([x[k] for x in described], lo_q)),
            float(np.quantile([x[k] for x in described], hi_q)))
        for k in described[0]
    }
