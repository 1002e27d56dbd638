"""Functional forms of a scaling law: L(N, D) with a few fitted parameters.

Every form is written once, in log space, for numpy and torch alike (`xp` is the array module):
`log_predict(theta, log_n, log_d, xp)` maps parameters `theta (..., P)` and data `(n,)` to
log L̂ `(..., n)`. Least squares fits `exp(log_predict)` to raw losses (as the paper does); the
Huber fitter compares `log_predict` with log L (as Hoffmann et al. do). Scale parameters are
fitted as logs (A = e^a, B = e^b, E = e^e), which keeps them positive and the problem well scaled.

The forms:

- `chinchilla`: L = E + A/N^α + B/D^β (Hoffmann et al. 2022), the only form the paper's figures use.
- `multiplicative`: L = E·A·N^-α·B·D^-β (only e + a + b is identified).
- `one-model`: Chinchilla with A and α borrowed (fixed), fitting E, B, β: what one model's
  checkpoints can identify. The default borrowed values are the paper's start point
  (A = e^6.255414 ≈ 520, α = 0.3526596, Muennighoff et al.'s fit); pass others to borrow from
  other families.
- `pca`: Chinchilla with (a, b, e, α, β) = mean + components.T @ c, three parameters c; the basis
  comes from the fitted parameters of other families (`PCAForm.from_params`).
- `linked`: α and β tied linearly to a and b (the paper's "manual" form,
  α = 0.0116 + 0.0500 a, β = 0.2371 + 0.0384 b), fitting a, b, e.

A new form is a subclass of `Form` with `name`, `names`, `guess`, bounds, a start grid and
`log_predict`; `register_form` makes it available by name to the fitters and the command line.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from lmlab.errors import LmlabError

__all__ = [
    "COLPRET_GRID",
    "FORMS",
    "PAPER_GUESS",
    "ChinchillaForm",
    "Form",
    "LinkedForm",
    "MultiplicativeForm",
    "OneModelForm",
    "PCAForm",
    "chinchilla_loss",
    "get_form",
    "register_form",
]

# The paper's single start (a, b, e, α, β): Muennighoff et al.'s fit, A ≈ 520, B ≈ 1488, E ≈ 1.87.
PAPER_GUESS = (6.255414, 7.3049974, 0.6254804, 0.3526596, 0.3526596)

# The 4^5 start grid of the paper's Huber path (ColPret util/torch_fit.py at 16f23bb):
# linspace(hi, lo, 4, endpoint=False) reversed, i.e. a, b in {3, 6, 9, 12}, e in {-.5, 0, .5, 1},
# α, β in {.25, .5, .75, 1}. (The research note lists {0,3,6,9}, {-1,...,.5}, {0,...,.75}; the
# code's values are these.) Hoffmann et al.'s own grid is wider: see `HOFFMANN_GRID`.
COLPRET_GRID: tuple[tuple[float, ...], ...] = (
    (3.0, 6.0, 9.0, 12.0),
    (3.0, 6.0, 9.0, 12.0),
    (-0.5, 0.0, 0.5, 1.0),
    (0.25, 0.5, 0.75, 1.0),
    (0.25, 0.5, 0.75, 1.0),
)
HOFFMANN_GRID: tuple[tuple[float, ...], ...] = (
    (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    (-1.0, -0.5, 0.0, 0.5, 1.0),
    (0.0, 0.5, 1.0, 1.5, 2.0),
    (0.0, 0.5, 1.0, 1.5, 2.0),
)


def chinchilla_log(a: Any, b: Any, e: Any, alpha: Any, beta: Any, log_n: Any, log_d: Any,
                   xp: Any) -> Any:
    """log(E + A/N^α + B/D^β) with A, B, E = e^a, e^b, e^e; parameters broadcast against data.

    Summed directly rather than by log-sum-exp: fitted exponents stay far from overflow, a
    parameter that wanders there gives inf, which the fitters reject, and this is 2x faster.
    """
    return xp.log(xp.exp(a[..., None] - alpha[..., None] * log_n)
                  + xp.exp(b[..., None] - beta[..., None] * log_d) + xp.exp(e)[..., None])


def chinchilla_loss(n: Any, d: Any, E: float, A: float, B: float, alpha: float, beta: float) -> Any:
    """L = E + A/N^α + B/D^β in plain numbers (for generating data and for reading)."""
    return E + A / np.asarray(n, dtype=float) ** alpha + B / np.asarray(d, dtype=float) ** beta


class Form:
    """A scaling-law form. Subclasses set the class attributes and implement `log_predict`."""

    name: ClassVar[str]
    names: tuple[str, ...]  # the fitted parameters, in theta order
    guess: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    @property
    def n_params(self) -> int:
        return len(self.names)

    def log_predict(self, theta: Any, log_n: Any, log_d: Any, xp: Any = np) -> Any:
        """log L̂ for parameters `theta (..., P)` and data `(n,)`: shape `(..., n)`."""
        raise NotImplementedError

    def predict(self, theta: Sequence[float] | np.ndarray, n: Any, d: Any) -> np.ndarray:
        """L̂ at model sizes `n` and tokens `d` (numpy)."""
        theta = np.asarray(theta, dtype=np.float64)
        n, d = np.asarray(n, dtype=np.float64), np.asarray(d, dtype=np.float64)
        ch = self.chinchilla_params(theta)
        if ch is not None:
            # Evaluated as written, E + A / N**α + B / D**β: least squares follows the same
            # floating-point path as the paper's code, which matters on ill-conditioned families.
            a, b, e, alpha, beta = ch
            return np.exp(e) + np.exp(a) / n**alpha + np.exp(b) / d**beta
        return np.exp(self.log_predict(theta, np.log(n), np.log(d), np))

    def grid(self) -> np.ndarray:
        """Start points of the multi-start Huber fit, `(S, P)`."""
        return np.array([self.guess], dtype=np.float64)

    def chinchilla_params(self, theta: Sequence[float]) -> np.ndarray | None:
        """(a, b, e, α, β) of the Chinchilla law this theta means, or None if it is not one."""
        return None

    def describe(self, theta: Sequence[float]) -> dict[str, float]:
        """Named parameters: the fitted ones, plus E, A, B, alpha, beta where they are defined."""
        theta = [float(t) for t in theta]
        out = dict(zip(self.names, theta, strict=True))
        ch = self.chinchilla_params(theta)
        if ch is not None:
            a, b, e, alpha, beta = (float(x) for x in ch)
            out.update(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)),
                       alpha=alpha, beta=beta)
        return out


class ChinchillaForm(Form):
    """L = E + A/N^α + B/D^β, theta = (a, b, e, α, β); α, β >= 0 in least squares (as the paper)."""

    name = "chinchilla"

    def __init__(self) -> None:
        self.names = ("a", "b", "e", "alpha", "beta")
        self.guess = PAPER_GUESS
        self.lower = (-np.inf, -np.inf, -np.inf, 0.0, 0.0)
        self.upper = (np.inf,) * 5
        self.start_grid = COLPRET_GRID

    def log_predict(self, theta: Any, log_n: Any, log_d: Any, xp: Any = np) -> Any:
        return chinchilla_log(theta[..., 0], theta[..., 1], theta[..., 2], theta[..., 3],
                              theta[..., 4], log_n, log_d, xp)

    def grid(self) -> np.ndarray:
        return np.array(list(itertools.product(*self.start_grid)), dtype=np.float64)

    def chinchilla_params(self, theta: Sequence[float]) -> np.ndarray:
        return np.asarray(theta, dtype=np.float64)


class MultiplicativeForm(Form):
    """L = E·A·N^-α·B·D^-β, theta = (a, b, e, α, β); only a + b + e is identified."""

    name = "multiplicative"

    def __init__(self) -> None:
        self.names = ("a", "b", "e", "alpha", "beta")
        self.guess = PAPER_GUESS
        self.lower = (-np.inf, -np.inf, -np.inf, 0.0, 0.0)
        self.upper = (np.inf,) * 5

    def log_predict(self, theta: Any, log_n: Any, log_d: Any, xp: Any = np) -> Any:
        c = theta[..., 0] + theta[..., 1] + theta[..., 2]
        return c[..., None] - theta[..., 3, None] * log_n - theta[..., 4, None] * log_d

    def grid(self) -> np.ndarray:
        return np.array(list(itertools.product(*COLPRET_GRID)), dtype=np.float64)

    def describe(self, theta: Sequence[float]) -> dict[str, float]:
        out = super().describe(theta)
        out.update(alpha=float(theta[3]), beta=float(theta[4]))
        return out


@dataclass
class OneModelForm(Form):
    """Chinchilla with a = log A and α borrowed; theta = (b, e, β)."""

    a: float = PAPER_GUESS[0]
    alpha: float = PAPER_GUESS[3]
    name: ClassVar[str] = "one-model"
    names: tuple[str, ...] = ("b", "e", "beta")
    guess: tuple[float, ...] = (PAPER_GUESS[1], PAPER_GUESS[2], PAPER_GUESS[4])
    lower: tuple[float, ...] = (-np.inf, -np.inf, 0.0)
    upper: tuple[float, ...] = (np.inf,) * 3

    def log_predict(self, theta: Any, log_n: Any, log_d: Any, xp: Any = np) -> Any:
        b = theta[..., 0]
        a = 0.0 * b + self.a
        alpha = 0.0 * b + self.alpha
        return chinchilla_log(a, b, theta[..., 1], alpha, theta[..., 2], log_n, log_d, xp)

    def grid(self) -> np.ndarray:
        g = COLPRET_GRID
        return np.array(list(itertools.product(g[1], g[2], g[4])), dtype=np.float64)

    def chinchilla_params(self, theta: Sequence[float]) -> np.ndarray:
        b, e, beta = (float(x) for x in theta)
        return np.array([self.a, b, e, self.alpha, beta])


@dataclass
class LinkedForm(Form):
    """Chinchilla with α = α0 + α1·a and β = β0 + β1·b (the paper's "manual" form); theta = (a, b, e)."""

    alpha0: float = 0.0116280
    alpha1: float = 0.05004588
    beta0: float = 0.23710262
    beta1: float = 0.03844353
    name: ClassVar[str] = "linked"
    names: tuple[str, ...] = ("a", "b", "e")
    guess: tuple[float, ...] = PAPER_GUESS[:3]
    lower: tuple[float, ...] = (-np.inf,) * 3
    upper: tuple[float, ...] = (np.inf,) * 3

    def log_predict(self, theta: Any, log_n: Any, log_d: Any, xp: Any = np) -> Any:
        a, b, e = theta[..., 0], theta[..., 1], theta[..., 2]
        return chinchilla_log(a, b, e, self.alpha0 + self.alpha1 * a, self.beta0 + self.beta1 * b,
                              log_n, log_d, xp)

    def grid(self) -> np.ndarray:
        g = COLPRET_GRID
        return np.array(list(itertools.product(g[0], g[1], g[2])), dtype=np.float64)

    def chinchilla_params(self, theta: Sequence[float]) -> np.ndarray:
        a, b, e = (float(x) for x in theta)
        return np.array([a, b, e, self.alpha0 + self.alpha1 * a, self.beta0 + self.beta1 * b])


@dataclass
class PCAForm(Form):
    """Chinchilla restricted to an affine subspace: (a, b, e, α, β) = mean + components.T @ c."""

    mean: np.ndarray = field(default_factory=lambda: np.array(PAPER_GUESS))
    components: np.ndarray = field(default_factory=lambda: np.eye(5)[:3])  # (k, 5)
    scales: np.ndarray = field(default_factory=lambda: np.ones(3))  # spread of c per component
    name: ClassVar[str] = "pca"

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.components = np.atleast_2d(np.asarray(self.components, dtype=np.float64))
        self.scales = np.asarray(self.scales, dtype=np.float64)
        k = self.components.shape[0]
        if self.components.shape[1] != 5 or self.mean.shape != (5,) or self.scales.shape != (k,):
            raise LmlabError("PCAForm: need mean (5,), components (k, 5) and scales (k,)")
        self.names = tuple(f"c{i + 1}" for i in range(k))
        self.guess = (0.0,) * k
        self.lower = (-np.inf,) * k
        self.upper = (np.inf,) * k

    @classmethod
    def from_params(cls, params: np.ndarray, k: int = 3) -> PCAForm:
        """The k-component form spanned by fitted Chinchilla parameters `params (F, 5)`."""
        params = np.asarray(params, dtype=np.float64)
        if params.ndim != 2 or params.shape[1] != 5 or len(params) < 2:
            raise LmlabError(f"PCAForm.from_params: need (F >= 2, 5) parameters, got {params.shape}")
        mean = params.mean(axis=0)
        _, sv, vt = np.linalg.svd(params - mean, full_matrices=False)
        k = min(k, len(sv))
        scales = np.maximum(sv[:k] / np.sqrt(max(len(params) - 1, 1)), 1e-3)
        return cls(mean=mean, components=vt[:k], scales=scales)

    def _full(self, theta: Any, xp: Any) -> Any:
        comps = self.components if xp is np else xp.as_tensor(self.components, dtype=theta.dtype)
        mean = self.mean if xp is np else xp.as_tensor(self.mean, dtype=theta.dtype)
        return theta @ comps + mean  # (..., 5)

    def log_predict(self, theta: Any, log_n: Any, log_d: Any, xp: Any = np) -> Any:
        p = self._full(theta, xp)
        return chinchilla_log(p[..., 0], p[..., 1], p[..., 2], p[..., 3], p[..., 4], log_n, log_d, xp)

    def grid(self) -> np.ndarray:
        steps = (-1.5, -0.5, 0.5, 1.5)
        return np.array(list(itertools.product(*[[s * sc for s in steps] for sc in self.scales])))

    def chinchilla_params(self, theta: Sequence[float]) -> np.ndarray:
        return self._full(np.asarray(theta, dtype=np.float64), np)


FORMS: dict[str, type[Form]] = {
    "chinchilla": ChinchillaForm,
    "multiplicative": MultiplicativeForm,
    "one-model": OneModelForm,
    "linked": LinkedForm,
    "pca": PCAForm,
}


def register_form(cls: type[Form]) -> type[Form]:
    """Make a Form subclass available by its `name` (usable as a class decorator)."""
    FORMS[cls.name] = cls
    return cls


def get_form(name: str, **kwargs: Any) -> Form:
    """A form by name; keyword arguments go to its constructor (e.g. borrowed a, alpha)."""
    if name not in FORMS:
        raise LmlabError(f"unknown form {name!r}; forms: {', '.join(FORMS)}")
    return FORMS[name](**kwargs)
