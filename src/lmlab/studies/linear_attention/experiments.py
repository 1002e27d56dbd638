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
from lmlab.seeding import derive, generator
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

__all__ = ["ExactJob", "MemoryJob", "Plan", "SgdJob", "describe", "dfa_shape", "exact_job", "memory_job",
           "plan", "run_job", "sgd_job", "sgd_models", "teacher_seed", "threads"]


@dataclass(frozen=True)
class ExactJob:
    """Algorithm 1 on a random teacher."""

    seed: int
    d: int
    T: int
    N: int
    n_val: int
    teacher_heads: int
    d_out: int  # 0: d
    threads: int
    device: str


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
    n_val: int
    teacher_heads: int
    d_out: int  # 0: d
    d_model: int
    threads: int
    device: str


def sgd_job(job: SgdJob) -> dict[str, Any]:
    """Train one model; final held-out nMSE (and p-distance to the teacher for MHLA)."""
    with threads(job.threads):
        d_out = job.d_out or job.d
        data = teacher_data(job.seed, job.d, job.T, job.N, job.n_val, d_out, job.teacher_heads)
        model = build_model(job.kind, job.d, d_out, job.size, job.T, job.seed, job.d_model)
        X, X_val = model.encode(data.Z), model.encode(data.Z_val)
        res = train_regressor(model, X, data.Y, X_val, data.Y_val, steps=job.steps,
                              batch_size=job.batch_size, lr=job.lr, seed=job.seed,
                              device=job.device)
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
    noise: float | None  # scale of the noise token (None: 1/sqrt(d), as in the paper)
    threads: int
    device: str


def memory_job(job: MemoryJob) -> dict[str, Any]:
    """Certificate and p-distances to the truth for one mixture dataset."""
    with threads(job.threads):
        Z, Y = memory_data(job.seed, job.N, job.d, job.frac, job.noise)
        Z_val, Y_val = memory_data(derive(job.seed, "memory-val"), 1024, job.d, job.frac, job.noise)
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


# -- the study's jobs, derived from its configuration ----------------------------------------------
@dataclass(frozen=True)
class Plan:
    """Every job of one run, by experiment (each list in a fixed order the analysis reads)."""

    paper_size: list[ExactJob]  # Algorithm 1 at the paper's size, one per teacher seed
    exact: list[ExactJob]  # Algorithm 1 on the sweep's data, per (d, seed)
    sgd: list[SgdJob]  # gradient-trained models, per (d, model, seed)
    memory: list[MemoryJob]  # per (seed, fraction)
    dfa: list[Any]  # automaton.DfaJob, per (grid value, N, seed)

    def all(self) -> list[Any]:
        return [*self.paper_size, *self.exact, *self.sgd, *self.memory, *self.dfa]

    def split(self, results: list[Any]) -> dict[str, list[Any]]:
        """`results` of `all()`'s jobs, back into the experiments."""
        out, i = {}, 0
        for name in ("paper_size", "exact", "sgd", "memory", "dfa"):
            n = len(getattr(self, name))
            out[name], i = results[i : i + n], i + n
        return out


def teacher_seed(seed: int, s: int) -> int:
    """Teacher `s` of run seed `seed`: its data, and the init of every model trained on it."""
    return derive(seed, "teacher", s)


def sgd_models(cfg: Any, d: int) -> list[tuple[str, int]]:
    """The gradient-trained models of dimension d: (kind, heads or layers)."""
    t = cfg.teacher
    models = [("mhla", h) for h in t.heads if h <= d * d] + [("stacked", L) for L in t.layers]
    if t.softmax_layers:
        models.append(("softmax", t.softmax_layers))
    return models


def dfa_shape(cfg: Any, v: int) -> tuple[int, int, int]:
    """(states, symbols, word length) of the DFA grid point `v`."""
    a = cfg.dfa
    return (v if a.vary == "states" else a.fixed, v if a.vary == "symbols" else a.fixed,
            v if a.vary == "word_len" else a.fixed)


def plan(cfg: Any, device: str) -> Plan:
    """Every job of a `LinearAttentionConfig`, each seeded by `lmlab.seeding.derive` so that no
    job of `--seed 1` repeats one of `--seed 0`."""
    from lmlab.studies.linear_attention.automaton import DfaJob

    t, m, a, th = cfg.teacher, cfg.memory, cfg.dfa, cfg.threads
    seeds = [teacher_seed(cfg.seed, s) for s in range(t.seeds)]
    paper_size = [ExactJob(s, t.exact_d, t.exact_seq_len, t.exact_n_train, t.n_val,
                           t.teacher_heads, 0, th, device) for s in seeds]
    exact = [ExactJob(s, d, t.seq_len, t.n_train, t.n_val, t.teacher_heads, t.d_out, th, device)
             for d in t.dims for s in seeds]
    sgd = [SgdJob(s, d, t.seq_len, t.n_train, kind, size, t.steps, t.batch_size, t.lr, t.n_val,
                  t.teacher_heads, t.d_out, t.softmax_width, th, device)
           for d in t.dims for kind, size in sgd_models(cfg, d) for s in seeds]
    memory = [MemoryJob(derive(cfg.seed, "memory", s), m.d, m.n, f, m.heads, m.steps,
                        m.batch_size, m.lr, m.gd_steps, None, th, device)
              for s in range(m.seeds) for f in m.fractions]
    dfa = [DfaJob(derive(cfg.seed, "dfa", s), *dfa_shape(cfg, v), n, a.epochs, a.batch_size, a.lr,
                  a.layers, a.heads, a.width, a.n_val, a.n_test, th, device)
           for v in a.values for n in a.n_train for s in range(a.seeds)]
    return Plan(paper_size, exact, sgd, memory, dfa)


def run_job(job: Any) -> dict[str, Any]:
    """Run one job of any experiment (the study maps this over all its jobs at once)."""
    from lmlab.studies.linear_attention.automaton import DfaJob, dfa_job

    fns = {ExactJob: exact_job, SgdJob: sgd_job, MemoryJob: memory_job, DfaJob: dfa_job}
    return fns[type(job)](job)


def describe(result: dict[str, Any]) -> str:
    """A finished job's short name for the progress display."""
    if "kind" in result:
        label = f"mhla {result['size']}h" if result["kind"] == "mhla" else \
            f"{result['kind']} {result['size']}L"
        return f"teacher d={result['d']}: {label}"
    if "frac" in result:
        return f"memory: fraction {result['frac']:g}"
    if "n_states" in result:
        return f"dfa: {result['n_states']} states, N={result['n_train']}"
    return f"Algorithm 1: d={result['d']}, T={result['T']}"
