"""Intruder dimensions: singular vectors of a tuned matrix that no base singular vector explains.

For a base matrix W0 (m x n) and its tuned version Wt (for LoRA, W0 + scaling * B A), take the
top-k left singular vectors u_t,j of Wt. Each one's similarity to the base is

    m_j = max_i |cos(u_t,j, u_0,i)|     over every left singular vector u_0,i of W0 (thin SVD),

and it is an *intruder* when m_j < eps (Shuttleworth et al. 2024, Alg. 1; k = 10, eps = 0.5).
Right singular vectors are not used; |cos| makes the test blind to the sign of either vector.

How it is computed (the counts of a full SVD of both matrices, faster):

- The base's left singular vectors come from the eigenvectors of the smaller Gram matrix
  (W0 W0^T when m <= n; otherwise W0^T W0 = V S^2 V^T and the cosines are S^-1 V^T (W0^T u_t),
  without forming U0). A tall base too ill-conditioned to divide by S gets an SVD instead.
- Only the top-k eigenpairs of the tuned Gram are needed: on the CPU LAPACK computes just those
  (`scipy.linalg.eigh(subset_by_index=...)`); on a GPU the whole batch goes to one `eigh`.
- Precision: float64 weights are analysed in float64. Others are analysed in float32, as a
  float32 SVD would be, and each base's float32 decomposition must *certify* its results: no
  max |cos| within 1e-3 of eps, and each max attained among the base directions above the
  float32 Gram's rounding floor, by more than the tuned vector's length in those below it
  (where float32 eigenvectors are arbitrary). A base that fails is decomposed again in
  float64. ``exact=True``: float64 throughout.
- Equal-shaped matrices are stacked and decomposed together; the base's decomposition can be
  kept in a `BaseCache` and reused against several tuned models.
- The update's spectrum (for ||dW||_2 and its effective rank) comes from the eigenvalues of its
  Gram matrix, in float64, with values below the Gram's rounding floor set to zero.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor

from lmlab.errors import LmlabError

__all__ = [
    "DEFAULT_EPS_SWEEP",
    "TARGET_SETS",
    "BaseCache",
    "BaseSVD",
    "IntruderReport",
    "MatrixReport",
    "analyze",
    "analyze_matrix",
    "decompose_base",
    "effective_rank",
    "effective_rank_from_singular_values",
    "epsilon_sweep",
    "intruder_count",
    "layer_index",
    "match_targets",
    "model_order",
    "module_kind",
    "select_matrices",
    "target_sets_of",
    "top_left_singular",
]

DEFAULT_EPS_SWEEP = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
COS_COLUMNS = 64  # base singular vectors kept per matrix for the cosine-similarity figures
CERTAIN_MARGIN = 1e-3  # see BaseSVD.certain
_ILL_CONDITIONED = 1e-6  # s_min / s_max below which the float64 Gram route is not trusted
_ILL_CONDITIONED_32 = 2e-2  # the same for float32 (tall matrices divide by s)
_CHUNK_BYTES = 256 << 20  # at most this much float64 weight data per stacked batch

# Module names (the state-dict key minus ".weight") by target set. lmlab's GPT and Hugging Face
# Llama-style models use q_proj ... down_proj; BERT/RoBERTa use query/key/value, attention.output
# .dense (attention out), intermediate.dense (FFN in) and output.dense (FFN out).
_ATTN = re.compile(
    r"(^|\.)(q_proj|k_proj|v_proj|o_proj|out_proj|query|key|value)$|(^|\.)attention\.output\.dense$"
)
_MLP = re.compile(
    r"(^|\.)(gate_proj|up_proj|down_proj|fc1|fc2)$|(^|\.)intermediate\.dense$"
    r"|(^|\.)layer\.\d+\.output\.dense$"
)
_QV = re.compile(r"(^|\.)(q_proj|v_proj|query|value)$")
TARGET_SETS = ("all-linear", "attn", "mlp", "qv")


def _module(name: str) -> str:
    return name[: -len(".weight")] if name.endswith(".weight") else name


def target_sets_of(name: str) -> list[str]:
    """The target sets (`all-linear`, `attn`, `mlp`, `qv`) a state-dict key belongs to."""
    mod = _module(name)
    sets = []
    if _ATTN.search(mod):
        sets += ["all-linear", "attn"]
    elif _MLP.search(mod):
        sets += ["all-linear", "mlp"]
    if _QV.search(mod):
        sets.append("qv")
    return sets


def match_targets(name: str, targets: str | Sequence[str]) -> bool:
    """Whether key `name` is selected by `targets`.

    `targets` is a target set (`all-linear`, `attn`, `mlp`, `qv`), `all` (every 2-D weight but
    embeddings and the LM head), or a list of module names matched as whole dotted components,
    as PEFT's `target_modules` (``["q_proj", "v_proj"]``).
    """
    mod = _module(name)
    if isinstance(targets, str):
        if targets == "all":
            return name.endswith(".weight") and not re.search(r"(emb|embed|wte|wpe|lm_head)", mod)
        if targets not in TARGET_SETS:
            raise LmlabError(
                f"unknown target set {targets!r}; use one of {', '.join(TARGET_SETS)}, all, "
                "or a list of module names"
            )
        return targets in target_sets_of(name)
    return any(mod == t or mod.endswith("." + t) for t in targets)


def module_kind(name: str) -> str:
    """A short label for the matrix's role: ``q_proj``, ``query``, ``attn.out``, ``ffn.out``..."""
    mod = _module(name)
    if re.search(r"attention\.output\.dense$", mod):
        return "attn.out"
    if re.search(r"intermediate\.dense$", mod):
        return "ffn.in"
    if re.search(r"layer\.\d+\.output\.dense$", mod):
        return "ffn.out"
    return mod.rsplit(".", 1)[-1]


def layer_index(name: str) -> int | None:
    """The transformer layer a key belongs to (``blocks.3.`` / ``layers.3.`` / ``layer.3.``)."""
    m = re.search(r"(?:^|\.)(?:blocks|layers|layer|h)\.(\d+)\.", name)
    return int(m.group(1)) if m else None


_KIND_ORDER = {k: i for i, k in enumerate(
    ("q_proj", "query", "k_proj", "key", "v_proj", "value", "o_proj", "out_proj", "attn.out",
     "gate_proj", "up_proj", "fc1", "ffn.in", "down_proj", "fc2", "ffn.out"))}


def model_order(name: str) -> tuple[int, int, str]:
    """Sort key: by layer (numerically), then attention q, k, v, o before the MLP's in, out."""
    layer = layer_index(name)
    return (-1 if layer is None else layer, _KIND_ORDER.get(module_kind(name), 99), name)


def select_matrices(
    weights: Mapping[str, Tensor], targets: str | Sequence[str] = "all-linear"
) -> list[str]:
    """The 2-D weights of `weights` selected by `targets`, in model order (`model_order`)."""
    return sorted((k for k, v in weights.items() if v.ndim == 2 and match_targets(k, targets)),
                  key=model_order)


# -- spectra --------------------------------------------------------------------------------


def effective_rank_from_singular_values(s: Tensor) -> float:
    """exp(entropy of s_i / sum s): the effective rank of a matrix with singular values `s`."""
    s = s.detach().double().clamp_min(0)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def effective_rank(x: Tensor) -> float:
    """Effective rank of a matrix (Roy & Vetterli): exp(entropy of sigma_i / sum sigma)."""
    if x.ndim != 2:
        raise LmlabError(f"effective_rank needs a 2-D matrix, got shape {tuple(x.shape)}")
    return effective_rank_from_singular_values(torch.linalg.svdvals(x.detach().double()))


def _gram(w: Tensor) -> Tensor:
    """The smaller Gram matrix of a stack (b, m, n): W W^T if m <= n, else W^T W."""
    wide = w.shape[-2] <= w.shape[-1]
    return w @ w.mT if wide else w.mT @ w


def _gram_singular_values(w: Tensor) -> Tensor:
    """Singular values (b, p) descending, from the Gram's eigenvalues; rounding noise set to 0."""
    ev = torch.linalg.eigvalsh(_gram(w)).flip(-1).clamp_min(0)
    floor = ev[..., :1] * (ev.shape[-1] * torch.finfo(ev.dtype).eps)
    return torch.where(ev > floor, ev, torch.zeros_like(ev)).sqrt()


@dataclass
class BaseSVD:
    """The base matrix's singular values and left basis, in the form the cosines need.

    `wide` (m <= n): `basis` is U0 (m x m). Otherwise `basis` is V0 (n x n) and `w` holds W0, so
    that U0^T u = S^-1 V0^T (W0^T u). Values descending. `exact`: computed in float64;
    otherwise in float32, where only the first `resolved` vectors are above the Gram's rounding
    floor (the rest are an arbitrary basis of the space they span).
    """

    shape: tuple[int, int]
    s: Tensor
    basis: Tensor
    w: Tensor | None = None
    fingerprint: tuple[float, float] | None = None
    exact: bool = True
    resolved: int | None = None

    def cosines(self, ut: Tensor) -> Tensor:
        """|cos| (float64) between every base left singular vector (rows) and columns of `ut`."""
        ut = ut.to(self.basis)
        if self.w is None:
            return (self.basis.mT @ ut).abs().double()
        return ((self.basis.mT @ (self.w.mT @ ut)) / self.s[:, None]).abs().double()

    def certain(self, cos: Tensor, eps: float) -> bool:
        """Whether a float32 decomposition gives the counts and max |cos| that float64 would.

        True when exact. Otherwise, for every tuned vector: its max |cos| is not within
        `CERTAIN_MARGIN` of eps (float32 errors are ~1e-5), and it is attained among the resolved
        base vectors, by at least the margin over the vector's whole length in the unresolved
        directions (which bounds every |cos| there, however float32 chose their basis).
        """
        if self.exact:
            return True
        r = self.resolved if self.resolved is not None else cos.shape[0]
        resolved_max = cos[:r].max(dim=0).values if r > 0 else torch.zeros_like(cos[0])
        unresolved = cos[r:].norm(dim=0)
        near = (cos.max(dim=0).values - eps).abs() < CERTAIN_MARGIN
        return bool((resolved_max >= unresolved + CERTAIN_MARGIN).all() and not near.any())


def _fingerprint(w: Tensor) -> tuple[float, float]:
    w = w.detach()
    return (float(w.sum(dtype=torch.float64)),
            float(torch.linalg.vector_norm(w, dtype=torch.float64)))


def _base_from_eigh(w: Tensor, evals: Tensor, evecs: Tensor) -> BaseSVD:
    ev = evals.flip(-1).clamp_min(0)
    m, n = w.shape
    exact = w.dtype == torch.float64
    resolved = None
    if not exact:  # eigenvalues under the Gram's rounding floor have arbitrary eigenvectors
        floor = 10 * ev.shape[-1] * torch.finfo(ev.dtype).eps * ev[0]
        resolved = int((ev > floor).sum())
    return BaseSVD((m, n), ev.sqrt(), evecs.flip(-1), None if m <= n else w, exact=exact,
                   resolved=resolved)


def _decompose_base_stack(ws: Tensor) -> list[BaseSVD]:
    """BaseSVDs of a stack (b, m, n) in its precision (float32 or float64).

    A tall matrix too ill-conditioned to divide by its singular values goes to float64 (below
    2e-2 of the largest in float32), then to an SVD (below 1e-6 in float64). A float32 result
    that cannot decide a count is redone in float64 later (`BaseSVD.certain`).
    """
    evals, evecs = torch.linalg.eigh(_gram(ws))
    f64 = ws.dtype == torch.float64
    tol = _ILL_CONDITIONED if f64 else _ILL_CONDITIONED_32
    out = []
    for i in range(ws.shape[0]):
        b = _base_from_eigh(ws[i], evals[i], evecs[i])
        smax = float(b.s[0]) if b.s.numel() else 0.0
        if b.w is not None and (smax == 0 or float(b.s[-1]) < tol * smax):
            if f64:
                u, sv, _ = torch.linalg.svd(ws[i], full_matrices=False)
                b = BaseSVD(b.shape, sv, u, None)
            else:
                b = _base_exact(ws[i])
        out.append(b)
    return out


def _base_exact(w: Tensor) -> BaseSVD:
    """The float64 decomposition of one matrix."""
    return _decompose_base_stack(w.detach().to(torch.float64)[None])[0]


def _settle(base: BaseSVD, ut: Tensor, eps: float, w0: Tensor) -> tuple[BaseSVD, Tensor]:
    """|cos| of `ut` against the base, redone in float64 when float32 cannot decide a count."""
    cos = base.cosines(ut)
    if not base.certain(cos, eps):
        fp = base.fingerprint
        base = _base_exact(w0.to(base.basis.device))
        base.fingerprint = fp
        cos = base.cosines(ut)
    return base, cos


def _work_dtype(w: Tensor, exact: bool) -> torch.dtype:
    """float64 for float64 input or when asked to be exact; float32 otherwise."""
    return torch.float64 if exact or w.dtype == torch.float64 else torch.float32


def decompose_base(w0: Tensor, device: str | torch.device = "cpu") -> BaseSVD:
    """The float64 decomposition of one base matrix (reusable across tunings)."""
    _check_matrix("base", w0)
    base = _base_exact(w0.detach().to(device=device, dtype=torch.float64))
    base.fingerprint = _fingerprint(w0)
    return base


def _top_k_stack(ws: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-k left singular vectors (b, m, k) and values (b, k) of a stack (b, m, n), in its dtype.

    In float32 the top-k eigenvectors of the Gram matrix are as accurate as a float32 SVD's:
    their error, eps * s_1^2 / (s_j^2 - s_j+1^2), exceeds the SVD's eps * s_1 / (s_j - s_j+1)
    by the factor s_1 / (2 s_j), at most a few for the top k. (For the base, whose every
    singular vector counts, float32 has to pass `BaseSVD.certain`.)
    """
    _, m, n = ws.shape
    g = _gram(ws)
    p = g.shape[-1]
    k = min(k, p)
    if ws.device.type == "cpu" and p > 4 * k:
        import numpy as np
        import scipy.linalg

        vals, vecs = [], []
        for gi in g.numpy():
            e, v = scipy.linalg.eigh(gi, subset_by_index=[p - k, p - 1], driver="evr")
            vals.append(e)
            vecs.append(v)
        evals = torch.from_numpy(np.stack(vals))
        evecs = torch.from_numpy(np.stack(vecs))
    else:
        evals, evecs = torch.linalg.eigh(g)
        evals, evecs = evals[..., p - k:], evecs[..., p - k:]
    s = evals.flip(-1).clamp_min(0).sqrt()  # (b, k)
    vecs = evecs.flip(-1)
    if m <= n:
        return vecs, s
    u = ws @ vecs / s[:, None, :]  # u_j = W v_j / s_j
    tol = _ILL_CONDITIONED if ws.dtype == torch.float64 else _ILL_CONDITIONED_32
    bad = s[:, -1] < tol * s[:, 0].clamp_min(torch.finfo(s.dtype).tiny)
    for i in torch.nonzero(bad).flatten().tolist():  # s_k ~ 0: the Gram route cannot normalise
        ui, si, _ = torch.linalg.svd(ws[i], full_matrices=False)
        u[i], s[i] = ui[:, :k], si[:k]
    return u, s


def top_left_singular(wt: Tensor, k: int = 10) -> tuple[Tensor, Tensor]:
    """The top-k left singular vectors (m x k) and singular values of a matrix, in float64."""
    _check_matrix("tuned", wt)
    u, s = _top_k_stack(wt.detach().double()[None], k)
    return u[0], s[0]  # float64 here: the precision a caller of this public helper expects


# -- reports --------------------------------------------------------------------------------


@dataclass
class MatrixReport:
    """One matrix's intruder analysis.

    `max_cos[j]` is the largest |cos| between the tuned matrix's j-th left singular vector and any
    base left singular vector; `count` is how many of them fall below eps. `sigma_k` is the base's
    k-th singular value and `dw_norm` the spectral norm of the update; `cos` (not serialized)
    holds |cos| of the top-k tuned vectors (rows) against the first base vectors (columns).
    """

    name: str
    shape: tuple[int, int]
    count: int
    max_cos: list[float]
    sigma_k: float
    dw_norm: float
    dw_over_sigma_k: float
    effective_rank_delta: float
    k: int = 10
    eps: float = 0.5
    sigma_tuned: list[float] = field(default_factory=list)
    cos: Tensor | None = field(default=None, repr=False, compare=False)

    @property
    def intruders(self) -> list[int]:
        """Indices j (0-based, by descending singular value) of the intruder dimensions."""
        return [j for j, c in enumerate(self.max_cos) if c < self.eps]

    @property
    def layer(self) -> int | None:
        return layer_index(self.name)

    @property
    def kind(self) -> str:
        return module_kind(self.name)

    def count_at(self, eps: float) -> int:
        """The intruder count at another threshold (same decompositions)."""
        return sum(c < eps for c in self.max_cos)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "cos"}
        for key in ("dw_norm", "dw_over_sigma_k", "effective_rank_delta"):
            if not math.isfinite(d[key]):  # NaN (not computed) or inf: JSON has neither
                d[key] = None
        d["shape"] = list(self.shape)
        d["layer"] = self.layer
        d["kind"] = self.kind
        d["targets"] = target_sets_of(self.name)
        return d


@dataclass
class IntruderReport:
    """Every analysed matrix, with totals per target set."""

    matrices: list[MatrixReport]
    k: int = 10
    eps: float = 0.5
    targets: str | list[str] = "all-linear"
    seconds: float = 0.0
    device: str = "cpu"

    @property
    def total(self) -> int:
        return sum(m.count for m in self.matrices)

    @property
    def by_target(self) -> dict[str, int]:
        """Intruder totals over the analysed matrices of each target set."""
        return {t: sum(m.count for m in self.matrices if t in target_sets_of(m.name))
                for t in TARGET_SETS}

    def by_layer(self) -> dict[int | None, int]:
        """Intruder totals per transformer layer (None: matrices outside any numbered layer)."""
        out: dict[int | None, int] = {}
        for m in self.matrices:
            out[m.layer] = out.get(m.layer, 0) + m.count
        return out

    def count_at(self, eps: float) -> int:
        return sum(m.count_at(eps) for m in self.matrices)

    def sweep(self, eps_values: Iterable[float] = DEFAULT_EPS_SWEEP) -> dict[float, int]:
        """Total intruders at each threshold, from the stored max-|cos| values.

        From a float32 analysis a value within ~1e-5 of a threshold other than `eps` may fall
        on either side of it; `epsilon_sweep` works in float64.
        """
        return {float(e): self.count_at(e) for e in eps_values}

    def __getitem__(self, name: str) -> MatrixReport:
        for m in self.matrices:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "eps": self.eps,
            "targets": self.targets,
            "device": self.device,
            "seconds": round(self.seconds, 4),
            "matrices_analyzed": len(self.matrices),
            "total": self.total,
            "by_target": self.by_target,
            "by_layer": {("none" if k is None else str(k)): v for k, v in self.by_layer().items()},
            "matrices": [m.to_dict() for m in self.matrices],
        }


class BaseCache(dict):
    """Base decompositions by state-dict key, reused across `analyze` calls against one base.

    An entry is used only while the base matrix has the same shape and fingerprint (sum and sum
    of squares), so a cache handed the wrong base recomputes instead of answering wrongly.
    """

    def lookup(self, name: str, w0: Tensor, device: torch.device) -> BaseSVD | None:
        b = self.get(name)
        if b is None or b.shape != tuple(w0.shape) or b.fingerprint != _fingerprint(w0):
            return None
        if b.basis.device != device:
            b = BaseSVD(b.shape, b.s.to(device), b.basis.to(device),
                        None if b.w is None else b.w.to(device), b.fingerprint)
        return b


# -- the detector ---------------------------------------------------------------------------


def _check_matrix(what: str, w: Tensor) -> None:
    if not isinstance(w, Tensor) or w.ndim != 2:
        shape = tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__
        raise LmlabError(f"{what} weight must be a 2-D tensor, got {shape}")
    if w.numel() == 0:
        raise LmlabError(f"{what} weight is empty (shape {tuple(w.shape)})")
    if not torch.isfinite(w).all():
        raise LmlabError(f"{what} weight has NaN or infinite entries")


def _check_finite(stack: Tensor, names: list[str], what: str) -> None:
    """One pass over a stack: a sum is finite iff every entry is (short of overflow)."""
    sums = stack.sum(dim=(-2, -1))
    bad = [n for n, ok in zip(names, torch.isfinite(sums).tolist(), strict=True) if not ok]
    if bad:
        raise LmlabError(f"{what} weight {bad[0]} has NaN or infinite entries"
                         + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))


def _check_args(k: int, eps: float) -> None:
    if k < 1:
        raise LmlabError(f"k must be at least 1, got {k}")
    if not (eps > 0 and math.isfinite(eps)):
        raise LmlabError(f"eps must be a positive number, got {eps}")


def _report(name: str, base: BaseSVD, cos: Tensor, st: Tensor, sd: Tensor | None, k: int,
            eps: float) -> MatrixReport:
    max_cos = cos.max(dim=0).values
    kk = min(k, base.s.numel())
    sigma_k = float(base.s[kk - 1])
    if sd is None:  # update statistics not asked for
        dw_norm, eff = math.nan, math.nan
    else:
        dw_norm = float(sd[0]) if sd.numel() else 0.0
        eff = effective_rank_from_singular_values(sd)
    return MatrixReport(
        name=name,
        shape=base.shape,
        count=int((max_cos < eps).sum()),
        max_cos=[float(c) for c in max_cos],
        sigma_k=sigma_k,
        dw_norm=dw_norm,
        dw_over_sigma_k=dw_norm / sigma_k if sigma_k > 0 else math.inf,
        effective_rank_delta=eff,
        k=k,
        eps=eps,
        sigma_tuned=[float(x) for x in st],
        cos=cos[:COS_COLUMNS].mT.float().cpu(),
    )


def analyze_matrix(
    name: str,
    w0: Tensor,
    wt: Tensor,
    k: int = 10,
    eps: float = 0.5,
    base_svd: BaseSVD | None = None,
    device: str | torch.device = "cpu",
    exact: bool = False,
) -> MatrixReport:
    """The intruder analysis of one matrix (see the module docstring and `analyze`)."""
    _check_args(k, eps)
    _check_matrix(f"{name} (base)", w0)
    _check_matrix(f"{name} (tuned)", wt)
    if w0.shape != wt.shape:
        raise LmlabError(f"{name}: base shape {tuple(w0.shape)} != tuned {tuple(wt.shape)}")
    if base_svd is not None and base_svd.shape != tuple(w0.shape):
        raise LmlabError(f"{name}: base_svd is for shape {base_svd.shape}, not {tuple(w0.shape)}")
    report = analyze({name: w0}, {name: wt}, k=k, eps=eps, names=[name], device=device,
                     exact=exact, cache=None if base_svd is None else {name: base_svd})
    return report.matrices[0]


def intruder_count(w0: Tensor, wt: Tensor, k: int = 10, eps: float = 0.5) -> int:
    """How many of the top-k left singular vectors of `wt` have max |cos| < eps with those of `w0`."""
    return analyze_matrix("matrix", w0, wt, k, eps).count


def _chunks(names: list[str], shape: tuple[int, ...], dev: torch.device) -> list[list[str]]:
    """Stacks to decompose together: on a GPU as many as fit `_CHUNK_BYTES`; on the CPU, where
    LAPACK takes one matrix at a time anyway, one each (no copy into a stack)."""
    per = max(1, _CHUNK_BYTES // (8 * math.prod(shape))) if dev.type != "cpu" else 1
    return [names[i : i + per] for i in range(0, len(names), per)]


def _stack(weights: Mapping[str, Tensor], names: list[str], dev: torch.device) -> Tensor:
    if len(names) == 1:
        return weights[names[0]].detach()[None].to(dev)  # a view on the CPU
    return torch.stack([weights[n].detach() for n in names]).to(dev)


def _device(device: str | torch.device) -> torch.device:
    from lmlab.device import resolve_device

    dev = resolve_device(device)
    return torch.device("cpu") if dev.type == "mps" else dev  # no float64 on MPS


def analyze(
    base: Mapping[str, Tensor],
    tuned: Mapping[str, Tensor],
    k: int = 10,
    eps: float = 0.5,
    targets: str | Sequence[str] = "all-linear",
    names: Sequence[str] | None = None,
    device: str | torch.device = "auto",
    cache: MutableMapping[str, BaseSVD] | None = None,
    update_stats: bool = True,
    exact: bool = False,
) -> IntruderReport:
    """Intruder analysis of every selected matrix of `tuned` against `base`.

    The matrices are the 2-D weights selected by `targets` (see `match_targets`), or exactly
    `names`. Both mappings must hold every one of them with equal shapes; otherwise one
    `LmlabError` lists the missing names and mismatched shapes.

    `cache`: a `BaseCache` (or dict) of base decompositions by name, filled here and reused by
    later calls. ``update_stats=False`` skips the update's spectral norm and effective rank
    (NaN in the report). Precision: float64 weights are analysed in float64; others in float32
    (as a float32 SVD would be), with any base whose float32 decomposition cannot decide a count
    redone in float64 (`BaseSVD.certain`); ``exact=True`` uses float64 throughout.
    """
    import time

    _check_args(k, eps)
    start = time.perf_counter()
    dev = _device(device)
    if names is None:
        selected = select_matrices(base, targets)
        selected += [n for n in select_matrices(tuned, targets) if n not in base]
    else:
        selected = list(names)
    check_pair(base, tuned, selected)
    if not selected:
        hint = f" (keys look like {', '.join(list(base)[:3])})" if base else ""
        raise LmlabError(f"no matrices to analyse: no 2-D weight matches targets {targets!r}{hint}")
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for n in selected:
        by_shape.setdefault(tuple(base[n].shape), []).append(n)
    reports: dict[str, MatrixReport] = {}
    for shape, group in by_shape.items():
        for chunk in _chunks(group, shape, dev):
            reports.update(_analyze_chunk(base, tuned, chunk, k, eps, dev, cache, update_stats,
                                          exact))
    return IntruderReport(
        matrices=[reports[n] for n in selected],
        k=k,
        eps=eps,
        targets=targets if isinstance(targets, str) else list(targets),
        seconds=time.perf_counter() - start,
        device=str(dev),
    )


def _analyze_chunk(base: Mapping[str, Tensor], tuned: Mapping[str, Tensor], chunk: list[str],
                   k: int, eps: float, dev: torch.device,
                   cache: MutableMapping[str, BaseSVD] | None, update_stats: bool,
                   exact: bool) -> dict[str, MatrixReport]:
    """Reports for equal-shaped matrices, decomposed as one stack."""
    wt = _stack(tuned, chunk, dev)
    wt = wt.to(_work_dtype(wt, exact))
    _check_finite(wt, chunk, "tuned")
    bases: list[BaseSVD | None] = [None] * len(chunk)
    if isinstance(cache, BaseCache):
        bases = [cache.lookup(n, base[n], dev) for n in chunk]
    elif cache is not None:
        bases = [cache.get(n) for n in chunk]
    if exact:  # a cached float32 decomposition does not do here
        bases = [b if b is not None and b.exact else None for b in bases]
    todo = [i for i, b in enumerate(bases) if b is None]
    if todo:
        w0 = _stack(base, [chunk[i] for i in todo], dev)
        _check_finite(w0, [chunk[i] for i in todo], "base")
        for i, b in zip(todo, _decompose_base_stack(w0.to(_work_dtype(w0, exact))), strict=True):
            if cache is not None:
                b.fingerprint = _fingerprint(base[chunk[i]])
            bases[i] = b
    u, s = _top_k_stack(wt, k)
    sd = None
    if update_stats:
        w0_64 = _stack(base, chunk, dev).to(torch.float64)
        sd = _gram_singular_values(wt.to(torch.float64) - w0_64)
    out = {}
    for i, n in enumerate(chunk):
        b = bases[i]
        assert b is not None
        b, cos = _settle(b, u[i], eps, base[n])
        if cache is not None:
            cache[n] = b
        out[n] = _report(n, b, cos, s[i], None if sd is None else sd[i], k, eps)
    return out


def check_pair(base: Mapping[str, Tensor], tuned: Mapping[str, Tensor],
               names: Sequence[str]) -> None:
    """Raise one `LmlabError` listing names missing from either side or with unequal shapes."""
    problems = []
    for n in names:
        if n not in base:
            problems.append(f"{n}: missing in base")
        elif n not in tuned:
            problems.append(f"{n}: missing in tuned")
        elif tuple(base[n].shape) != tuple(tuned[n].shape):
            problems.append(f"{n}: base {tuple(base[n].shape)} vs tuned {tuple(tuned[n].shape)}")
        elif base[n].ndim != 2:
            problems.append(f"{n}: not a 2-D weight (shape {tuple(base[n].shape)})")
    if problems:
        shown = "; ".join(problems[:4])
        more = f"; ... ({len(problems) - 4} more)" if len(problems) > 4 else ""
        raise LmlabError(
            f"base and tuned weights do not match: {len(problems)} of {len(names)} matrices "
            f"differ: {shown}{more}"
        )


def epsilon_sweep(
    base: Mapping[str, Tensor] | Tensor,
    tuned: Mapping[str, Tensor] | Tensor,
    eps_values: Iterable[float] = DEFAULT_EPS_SWEEP,
    k: int = 10,
    targets: str | Sequence[str] = "all-linear",
    names: Sequence[str] | None = None,
    device: str | torch.device = "auto",
    exact: bool = True,
) -> dict[float, int]:
    """Intruder totals at several thresholds, from one set of decompositions.

    `base` and `tuned` are two weight mappings (as `analyze`) or two matrices. In float64 by
    default (`exact`): the float32 route certifies its counts at one threshold only.
    """
    if isinstance(base, Tensor) or isinstance(tuned, Tensor):
        if not (isinstance(base, Tensor) and isinstance(tuned, Tensor)):
            raise LmlabError("epsilon_sweep takes two matrices or two weight mappings")
        rep = IntruderReport([analyze_matrix("matrix", base, tuned, k=k, exact=exact)], k=k)
    else:
        rep = analyze(base, tuned, k=k, targets=targets, names=names, device=device,
                      exact=exact)
    return rep.sweep(eps_values)
