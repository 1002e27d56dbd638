"""The paper's experiments as independent, seeded jobs (module-level functions for an executor).

- `exact_job`: Algorithm 1 on a random MHLA teacher (Sec. 4.1): held-out error, p-distance to the
  teacher, and whether the heads read back from W reproduce the regression.
- `sgd_job`: one gradient-trained model (MHLA with H heads, a stack of single-head linear
  attention layers, or lmlab's softmax GPT) on the same teacher data.
- `memory_job`: one associative-memory dataset of the identifiable/non-identifiable mixture
  (Sec. 4.2): the certificate, and the p-distance to the ground truth of (i) Algorithm 1's exact
  minimum-norm solution, (ii) Algorithm 1's objective minimized by `gd_steps` full-batch
  gradient-descent steps of size 1/lambda_max from a random start, as the paper's script does
  (run, on the normal equations), and (iii) an MHLA trained by minibatch Adam. The empirical-risk
  minimizer nearest the random start (the limit of (ii)) is computed in closed form: the start
  projected onto the solutions, which keeps its error along the null space of the Gram matrix.

Each job builds its own data from (seed, sizes), so jobs run anywhere in any order with the same
result; each returns a plain dict.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from lmlab.executor import torch_threads
from lmlab.seeding import generator
from lmlab.studies.linear_attention.certificate import certify
from lmlab.studies.linear_attention.data import memory_data, memory_truth, teacher_data
from lmlab.studies.linear_attention.features import scale_vector
from lmlab.studies.linear_attention.mhla import (
    F64,
    mhla_prefixes,
    n_independent,
    p_distance,
    p_map,
)
from lmlab.studies.linear_attention.models import (
    MHLAModel,
    build_model,
    normalized_mse,
    train_regressor,
)
from lmlab.studies.linear_attention.regression import RCOND, fit_mhla, gradient_descent

threads = torch_threads  # run a job with its torch threads (lmlab.executor owns thread control)

__all__ = ["ExactJob", "MemoryJob", "SgdJob", "exact_job", "memory_job", "sgd_job", "threads"]


@dataclass(frozen=True)
class ExactJob:
    """Algorithm 1 on a random teacher."""

    seed: int
    d: int
    T: int
    N: int
    n_val: int = 512
    teacher_heads: int = 1
    d_out: int = 0  # 0: d
    threads: int = 1
    device: str = "cpu"


def exact_job(job: ExactJob) -> dict[str, Any]:
    """Fit Algorithm 1 to a teacher; held-out nMSE, p-distance, heads-vs-regression gap, time."""
    with threads(job.threads):
        data = teacher_data(job.seed, job.d, job.T, job.N, job.n_val, job.d_out or job.d,
                            job.teacher_heads)
        t0 = time.perf_counter()
        fit = fit_mhla(data.Z, data.Y, device=job.device)
        wall = time.perf_counter() - t0
        pred = fit.predict(data.Z_val).cpu()
        heads = fit.heads()
        by_heads = mhla_prefixes(heads, data.Z_val).cpu()
        return {
            **asdict(job),
            "val_nmse": normalized_mse(pred, data.Y_val),
            "pdist_rel": p_distance(fit.p.cpu(), p_map(data.teacher), relative=True),
            "heads_gap_rel": float((by_heads - pred).abs().max() / pred.abs().max()),
            "n_heads": heads.n_heads,
            "rank": fit.rank,
            "psi": n_independent(job.d),
            "wall_s": wall,
        }


@dataclass(frozen=True)
class SgdJob:
    """One gradient-trained model on teacher data: kind 'mhla' (size heads), 'stacked' or 'softmax' (size layers)."""

    seed: int
    d: int
    T: int
    N: int
    kind: str
    size: int
    steps: int
    batch_size: int
    lr: float
    n_val: int = 512
    teacher_heads: int = 1
    d_out: int = 0  # 0: d
    d_model: int = 32
    eval_every: int = 0
    threads: int = 1
    device: str = "cpu"


def sgd_job(job: SgdJob) -> dict[str, Any]:
    """Train one model; final held-out nMSE (and p-distance to the teacher for MHLA)."""
    with threads(job.threads):
        d_out = job.d_out or job.d
        data = teacher_data(job.seed, job.d, job.T, job.N, job.n_val, d_out, job.teacher_heads)
        model = build_model(job.kind, job.d, d_out, job.size, job.T, job.seed, job.d_model)
        X, X_val = model.encode(data.Z), model.encode(data.Z_val)
        res = train_regressor(model, X, data.Y, X_val, data.Y_val, steps=job.steps,
                              batch_size=job.batch_size, lr=job.lr, seed=job.seed,
                              eval_every=job.eval_every, device=job.device)
        out: dict[str, Any] = {
            **asdict(job),
            "val_nmse": res.val_nmse,
            "train_nmse": res.train_nmse,
            "wall_s": res.wall_s,
            "curve": res.curve,
        }
        if isinstance(model, MHLAModel):
            out["pdist_rel"] = p_distance(model.heads(), data.teacher, relative=True)
        return out


@dataclass(frozen=True)
class MemoryJob:
    """One associative-memory mixture: `frac` of the N memories orthonormal (non-identifiable)."""

    seed: int
    d: int
    N: int
    frac: float
    heads: int
    steps: int
    batch_size: int
    lr: float
    gd_steps: int
    noise: float | None = None
    threads: int = 1
    device: str = "cpu"


def memory_job(job: MemoryJob) -> dict[str, Any]:
    """Certificate and p-distances to the truth for one mixture dataset."""
    with threads(job.threads):
        Z, Y = memory_data(job.seed, job.N, job.d, job.frac, job.noise)
        Z_val, Y_val = memory_data(job.seed + 10_000, 1024, job.d, job.frac, job.noise)
        truth = memory_truth(job.d)
        p_true = p_map(truth)
        cert = certify(Z)
        fit = fit_mhla(Z, Y, prefixes=False, device=job.device)
        # Algorithm 1's objective by gradient descent from a random start (run step by step).
        width = 2 * job.d
        scale = scale_vector(width)  # p = scale * u
        G = fit.normal.G.cpu() / fit.normal.count
        B = fit.normal.B.cpu() / fit.normal.count
        g = generator(job.seed, 300, round(job.frac * 1e6))
        psi = n_independent(width)
        u0 = torch.randn(psi, width, generator=g, dtype=F64) / psi**0.5
        gd_u = gradient_descent(G, B, u0, job.gd_steps)
        # The minimizer nearest the start: its error stays only along the null space.
        w, E = torch.linalg.eigh(G)
        err0 = E.T @ (u0 - (p_true.T / scale[:, None]))  # error in the eigenbasis
        null = (w <= RCOND * w[-1]).to(F64)  # directions no data constrains
        erm_p = (E @ (null[:, None] * err0)) * scale[:, None]
        ref = float(torch.linalg.norm(p_true))
        # An MHLA trained by minibatch Adam from a random start.
        model = MHLAModel(width, width, job.heads, seed=job.seed)
        res = train_regressor(model, model.encode(Z, prefixes=False), Y,
                              model.encode(Z_val, prefixes=False), Y_val, steps=job.steps,
                              batch_size=job.batch_size, lr=job.lr, seed=job.seed,
                              device=job.device)
        return {
            **asdict(job),
            "lambda_min": cert.lambda_min,
            "lambda_max": cert.lambda_max,
            "identifiable": cert.identifiable,
            "rank": cert.rank,
            "psi": cert.psi,
            "pdist_exact": p_distance(fit.p.cpu(), p_true, relative=True),
            "pdist_gd": p_distance((gd_u * scale[:, None]).T, p_true, relative=True),
            "pdist_erm_random_start": float(torch.linalg.norm(erm_p)) / ref,
            "pdist_sgd": p_distance(model.heads(), truth, relative=True),
            "sgd_val_nmse": res.val_nmse,
        }
