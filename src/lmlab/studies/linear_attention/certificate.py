"""The certificate of identifiability (Yau et al., Sec. 3): does the data pin down the function?

    Lambda_D = (1/N) sum_i H(Z_i) H(Z_i)^T        (psi x psi; H = features.independent_features)

If its smallest eigenvalue is positive, every empirical-risk minimizer over MHLA (with enough
heads) computes the same function on every input, not only on the data (for realizable data;
always when H >= d^2). If it is 0, there are minimizers that agree on the data and differ
elsewhere. The check costs one pass over the data and a psi x psi eigendecomposition.

`certify` is the function; `load_sequences` reads a dataset for `lmlab linear-attention certify`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lmlab.errors import LmlabError
from lmlab.studies.linear_attention.features import independent_features
from lmlab.studies.linear_attention.mhla import as64, check_z, n_independent
from lmlab.studies.linear_attention.regression import NormalEquations

__all__ = ["Certificate", "certify", "load_sequences", "second_moment"]

# A dataset is called identifiable when lambda_min > RTOL * lambda_max: a true zero eigenvalue
# computes to about eps * lambda_max (~1e-16 relative); the nearly non-identifiable mixtures of the
# paper's sweep sit above 1e-7 relative.
RTOL = 1e-10


@dataclass(frozen=True)
class Certificate:
    """The spectrum summary of Lambda_D and the verdict."""

    lambda_min: float
    lambda_max: float
    rank: int
    psi: int
    d: int
    n_examples: int
    identifiable: bool
    rtol: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def second_moment(Z: Any, prefixes: bool = False, chunk: int = 1024) -> tuple[Tensor, int]:
    """Lambda_D for sequences Z (N, n, d), each prefix an example if `prefixes`; and the count."""
    Z = check_z(Z)
    if Z.dim() != 3:
        raise LmlabError(f"certify: expected sequences of shape (N, n, d), got {tuple(Z.shape)}")
    d = Z.shape[-1]
    acc = NormalEquations(n_independent(d), 0, str(Z.device))
    for i in range(0, len(Z), chunk):
        H = independent_features(Z[i : i + chunk], prefixes)
        H = H.reshape(-1, H.shape[-1])
        acc.add(H, H.new_zeros(H.shape[0], 0))
    return acc.second_moment(), acc.count


def certify(Z: Any, prefixes: bool = False, rtol: float = RTOL, chunk: int = 1024) -> Certificate:
    """The certificate of a dataset of sequences Z (N, n, d)."""
    lam, count = second_moment(Z, prefixes, chunk)
    w = torch.linalg.eigvalsh(lam)
    top = float(w[-1])
    lo = float(w[0])
    d = int(as64(Z).shape[-1])
    return Certificate(
        lambda_min=lo,
        lambda_max=top,
        rank=int((w > rtol * top).sum()) if top > 0 else 0,
        psi=n_independent(d),
        d=d,
        n_examples=count,
        identifiable=bool(top > 0 and lo > rtol * top),
        rtol=rtol,
    )


def load_sequences(path: str | Path, key: str | None = None) -> Tensor:
    """Read sequences (N, n, d) from .npy, .npz or .safetensors (`key`, else 'Z', else the only array).

    Pickled objects are refused (allow_pickle=False); the error names the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise LmlabError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arrays = {"Z": np.load(path, allow_pickle=False)}
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        elif suffix == ".safetensors":
            from safetensors.numpy import load_file

            arrays = load_file(str(path))
        else:
            raise LmlabError(f"{path}: unsupported format {suffix or '(none)'}; use .npy, .npz or .safetensors")
    except LmlabError:
        raise
    except Exception as e:  # numpy and safetensors raise many types for damaged files
        raise LmlabError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    if key is not None:
        if key not in arrays:
            raise LmlabError(f"{path}: no array {key!r}; arrays: {', '.join(arrays) or 'none'}")
        arr = arrays[key]
    elif "Z" in arrays:
        arr = arrays["Z"]
    elif len(arrays) == 1:
        arr = next(iter(arrays.values()))
    else:
        raise LmlabError(f"{path}: several arrays ({', '.join(arrays)}); name one with --key")
    if arr.ndim != 3:
        raise LmlabError(f"{path}: expected sequences of shape (N, n, d), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise LmlabError(f"{path}: expected real numbers, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise LmlabError(f"{path}: the sequences contain NaN or infinite values")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))
