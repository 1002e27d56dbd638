"""The paper's synthetic data: a random MHLA teacher and associative memories.

Random teacher (Sec. 4.1, the paper's script): tokens z_t ~ N(0, I / T), T tokens per sequence,
targets at every prefix from a Gaussian MHLA teacher (entries N(0, 1/d); one head in the script).

Associative memory (Sec. 4.2): width 2d, d + 1 tokens,

    Z = [k_1 .. k_d  q]      keys, then the query         (top d rows of the paper's Z)
        [v_1 .. v_d  zeta]   values, then noise           (bottom d rows)

(columns here are rows of our (n, 2d) layout). The query is one of the stored keys. The target is
what the ground-truth MHLA V = [[0, 0], [0, I]], Q = [[I, 0], [0, 0]] computes,
sum_i v_i <k_i, q> + |q|^2 zeta: the displayed formula of the paper omits the |q|^2 zeta term,
so targets are produced by running the model. Identifiable data draw keys and values from
N(0, I/d); non-identifiable data draw fresh random orthonormal keys and values per example (then
sum_i k_i k_i^T = I and |q| = 1 on every example, which makes the cubic features linearly
dependent: the certificate's smallest eigenvalue is 0). Mixtures interpolate between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lmlab.seeding import generator
from lmlab.studies.linear_attention.mhla import F64, Heads, mhla, mhla_prefixes, random_heads

__all__ = [
    "TeacherData",
    "gaussian_sequences",
    "memory_data",
    "memory_sequences",
    "memory_truth",
    "random_orthogonal",
    "teacher_data",
]


def gaussian_sequences(gen: torch.Generator, N: int, T: int, d: int) -> Tensor:
    """N sequences of T tokens z_t ~ N(0, I / T): (N, T, d) float64."""
    return torch.randn(N, T, d, generator=gen, dtype=F64) / T**0.5


@dataclass
class TeacherData:
    """A random MHLA teacher with training and held-out sequences, targets at every prefix."""

    teacher: Heads
    Z: Tensor  # (N, T, d)
    Y: Tensor  # (N, T, d_out)
    Z_val: Tensor
    Y_val: Tensor


def teacher_data(seed: int, d: int, T: int, N: int, n_val: int = 512, d_out: int | None = None,
                 teacher_heads: int = 1) -> TeacherData:
    """Sec. 4.1: a Gaussian teacher (entries N(0, 1/d)) and N + n_val Gaussian sequences."""
    g = generator(seed, 100, d)
    teacher = random_heads(g, teacher_heads, d, d_out)
    Z, Z_val = gaussian_sequences(g, N, T, d), gaussian_sequences(g, n_val, T, d)
    return TeacherData(teacher, Z, mhla_prefixes(teacher, Z), Z_val, mhla_prefixes(teacher, Z_val))


def memory_truth(d: int) -> Heads:
    """The one-head MHLA that reads an associative memory of width 2d: V = [[0,0],[0,I]], Q = [[I,0],[0,0]]."""
    V = torch.zeros(1, 2 * d, 2 * d, dtype=F64)
    Q = torch.zeros(1, 2 * d, 2 * d, dtype=F64)
    V[0, d:, d:] = torch.eye(d, dtype=F64)
    Q[0, :d, :d] = torch.eye(d, dtype=F64)
    return Heads(V, Q)


def random_orthogonal(gen: torch.Generator, N: int, d: int) -> Tensor:
    """N Haar-random orthogonal d x d matrices (QR of a Gaussian with the sign fix).  (N, d, d)"""
    A = torch.randn(N, d, d, generator=gen, dtype=F64)
    Qm, R = torch.linalg.qr(A)
    return Qm * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))[:, None, :]


def memory_sequences(gen: torch.Generator, N: int, d: int, orthonormal: Tensor | bool,
                     noise: float | None = None) -> Tensor:
    """N memories (N, d + 1, 2d): rows (k_i, v_i) for i = 1..d, then (q, zeta).

    `orthonormal` (bool, or a bool tensor (N,) per example) picks random orthonormal keys and
    values; otherwise they are N(0, I/d). The query is a stored key chosen uniformly; zeta is
    N(0, noise^2 I) with noise 1/sqrt(d) by default.
    """
    noise = d**-0.5 if noise is None else noise
    ortho = torch.as_tensor(orthonormal, dtype=torch.bool).expand(N)
    K = torch.randn(N, d, d, generator=gen, dtype=F64) / d**0.5  # rows are keys
    V = torch.randn(N, d, d, generator=gen, dtype=F64) / d**0.5
    K_o, V_o = random_orthogonal(gen, N, d), random_orthogonal(gen, N, d)
    K = torch.where(ortho[:, None, None], K_o, K)
    V = torch.where(ortho[:, None, None], V_o, V)
    c = torch.randint(d, (N,), generator=gen)
    q = K[torch.arange(N), c]  # (N, d)
    zeta = torch.randn(N, d, generator=gen, dtype=F64) * noise
    stored = torch.cat([K, V], dim=-1)  # (N, d, 2d)
    query = torch.cat([q, zeta], dim=-1)[:, None, :]  # (N, 1, 2d)
    return torch.cat([stored, query], dim=1)


def memory_data(seed: int, N: int, d: int, frac_orthonormal: float,
                noise: float | None = None) -> tuple[Tensor, Tensor]:
    """A mixture: round(frac * N) orthonormal memories, the rest Gaussian; targets at the query."""
    g = generator(seed, 200, round(frac_orthonormal * 1e6))
    n_ortho = round(frac_orthonormal * N)
    ortho = torch.zeros(N, dtype=torch.bool)
    ortho[torch.randperm(N, generator=g)[:n_ortho]] = True
    Z = memory_sequences(g, N, d, ortho, noise)
    return Z, mhla(memory_truth(d), Z)
