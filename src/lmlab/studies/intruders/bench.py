"""`lmlab bench intruders`: the detector against the strongest plain baseline, in one run.

Every linear layer of SmolLM2-135M-Instruct (30 layers x 7 matrices) is compared with a
LoRA-tuned copy of itself, made deterministically with PEFT: LoRA r=8, alpha=16 on all linear
layers, B drawn at random (std 1e-3, so every matrix moves), and every third adapter given one
large rank-1 direction of 0.5 to 2 times the matrix's top singular value, so intruders exist.

- `baseline` (the headline comparison): what a user who knows only the top-k tuned vectors are
  needed would write: `torch.linalg.svd` (thin) of W0, computed once and reusable across tuned
  models (`baseline_base_s`), and `scipy.sparse.linalg.svds(Wt, k)` (ARPACK, deterministic start)
  for the tuned top-k (`baseline_warm_s`: that part and the cosines, as with a cached base).
  `torch.svd_lowrank` (q = k + 10, 4 power iterations) was the other candidate; it is timed and
  its count mismatches are reported (`lowrank_*`), and it only becomes the baseline if its
  counts are identical and it is faster.
- `reference`: the full way, a thin `np.linalg.svd` of W0 and of Wt, reported beside the
  headline (`speedup_vs_full_svd`);
- `fast`: `detect.analyze` computing what the reference computes (counts and max |cos|), from
  scratch (`fast_s`) and again with the base's decompositions cached (`fast_warm_s`, against
  `baseline_warm_s`); `fast_full_s` is the from-scratch call with the update statistics too
  (||dW||_2 and the update's effective rank, which `lmlab intruders` prints and the baselines
  do not compute).

Every side is timed once, in the same process, with the same threads (`threads`, default 1: the
measurement runs in a child process with OMP/MKL/OpenBLAS limited to that many), so the ratio
measures the algorithm, not how many cores a busy machine lends to each. Counts must be
identical on every side (`counts_identical`, per matrix). With a GPU, `fast` runs there
(`device`) and the baselines stay on the CPU (SciPy's `svds` has no GPU version), so the ratios
are then not GPU against GPU. Wall and CPU seconds are both reported; `goal_met` (identical
counts and at least 5x against the baseline) judges the CPU-time ratio on the CPU, where one
thread's CPU time is its compute time and wall time also counts waiting for a shared core, and
the wall-time ratio on a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "base_left_vectors",
    "bench_intruders",
    "lora_tuned_copy",
    "lowrank_max_cos",
    "measure",
    "reference_max_cos",
    "svds_max_cos",
]


def lora_tuned_copy(
    spec: str = "smollm2-135m-instruct",
    r: int = 8,
    alpha: int = 16,
    seed: int = 0,
    spike_every: int = 3,
    noise: float = 1e-3,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(base, tuned) state dicts: `spec` and a deterministic PEFT LoRA of it, merged."""
    from lmlab.models import load_model
    from lmlab.nn.lora import add_lora

    model, _ = load_model(spec, with_tokenizer=False)
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    pm = add_lora(model, r, alpha, "all-linear", init_seed=seed)
    gen = torch.Generator().manual_seed(seed)
    layers = sorted((n, m) for n, m in pm.named_modules()
                    if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {}))
    with torch.no_grad():
        for i, (_, layer) in enumerate(layers):
            a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
            b.copy_(torch.randn(b.shape, generator=gen) * noise)
            if i % spike_every == 0:
                w0 = layer.get_base_layer().weight
                s1 = float(torch.linalg.matrix_norm(w0.double(), ord=2))
                size = 0.5 + 1.5 * float(torch.rand((), generator=gen))  # 0.5 to 2 sigma_1
                root = (size * s1 / layer.scaling["default"]) ** 0.5
                u = torch.randn(b.shape[0], generator=gen)
                v = torch.randn(a.shape[1], generator=gen)
                b[:, 0] = u / u.norm() * root
                a[0] = v / v.norm() * root
    merged = pm.merge_and_unload()
    tuned = {k: v.detach().clone() for k, v in merged.state_dict().items()}
    return base, tuned


def reference_max_cos(base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor],
                      names: list[str], k: int = 10) -> dict[str, np.ndarray]:
    """The plain way: a full (thin) numpy SVD of both matrices, then max |cos| per top-k vector."""
    out = {}
    for n in names:
        u0 = np.linalg.svd(base[n].numpy(), full_matrices=False)[0]
        ut = np.linalg.svd(tuned[n].numpy(), full_matrices=False)[0]
        out[n] = np.abs(ut[:, :k].T @ u0).max(axis=1)
    return out


def base_left_vectors(base: Mapping[str, torch.Tensor], names: list[str]) -> dict[str, np.ndarray]:
    """Each base matrix's left singular vectors, from a thin `torch.linalg.svd` (reusable)."""
    return {n: torch.linalg.svd(base[n], full_matrices=False)[0].numpy() for n in names}


def _top_k_svds(w: np.ndarray, k: int) -> np.ndarray:
    """The top-k left singular vectors of `w` (m x k, by descending value) from ARPACK."""
    import scipy.sparse.linalg

    if k >= min(w.shape):  # ARPACK needs k < min(m, n): the whole thin SVD is then no dearer
        return np.linalg.svd(w, full_matrices=False)[0][:, :k]
    u, s, _ = scipy.sparse.linalg.svds(w, k=k, random_state=0)
    return u[:, np.argsort(-s)]


def svds_max_cos(tuned: Mapping[str, torch.Tensor], names: list[str],
                 base_u: Mapping[str, np.ndarray], k: int = 10) -> dict[str, np.ndarray]:
    """Max |cos| per top-k tuned vector (from `scipy.sparse.linalg.svds`) against `base_u`."""
    return {n: np.abs(_top_k_svds(tuned[n].numpy(), k).T @ base_u[n]).max(axis=1) for n in names}


def lowrank_max_cos(tuned: Mapping[str, torch.Tensor], names: list[str],
                    base_u: Mapping[str, np.ndarray], k: int = 10, seed: int = 0,
                    oversample: int = 10, niter: int = 4) -> dict[str, np.ndarray]:
    """The same from `torch.svd_lowrank` (randomized: q = k + oversample, `niter` iterations)."""
    torch.manual_seed(seed)
    out = {}
    for n in names:
        w = tuned[n]
        q = min(k + oversample, *w.shape)
        u = torch.svd_lowrank(w, q=q, niter=niter)[0][:, :k].numpy()
        out[n] = np.abs(u.T @ base_u[n]).max(axis=1)
    return out


def _timed(fn: Any) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def measure(model: str = "smollm2-135m-instruct", k: int = 10, eps: float = 0.5, r: int = 8,
            seed: int = 0, layers: int | None = None, device: str = "auto") -> dict[str, Any]:
    """Build the pair and time both sides in this process (see the module docstring)."""
    from lmlab.studies.intruders.detect import BaseCache, analyze, layer_index, select_matrices

    (base, tuned), _, build_s = _timed(lambda: lora_tuned_copy(model, r=r, alpha=2 * r, seed=seed))
    names = [n for n in select_matrices(base)
             if layers is None or (layer_index(n) is not None and layer_index(n) < layers)]
    cache = BaseCache()
    fast, fast_s, fast_cpu = _timed(lambda: analyze(
        base, tuned, k=k, eps=eps, names=names, device=device, cache=cache, update_stats=False))
    _, warm_s_fast, warm_cpu = _timed(lambda: analyze(
        base, tuned, k=k, eps=eps, names=names, device=device, cache=cache, update_stats=False))
    full, full_s, full_cpu = _timed(
        lambda: analyze(base, tuned, k=k, eps=eps, names=names, device=device))
    ref, ref_s, ref_cpu = _timed(lambda: reference_max_cos(base, tuned, names, k))
    base_u, bb_s, bb_cpu = _timed(lambda: base_left_vectors(base, names))
    svds, sv_s, sv_cpu = _timed(lambda: svds_max_cos(tuned, names, base_u, k))
    low, low_s, low_cpu = _timed(lambda: lowrank_max_cos(tuned, names, base_u, k, seed=seed))

    def counts(maxcos: Mapping[str, Any]) -> dict[str, int]:
        return {n: int((np.asarray(m) < eps).sum()) for n, m in maxcos.items()}

    ref_counts, svds_counts, low_counts = counts(ref), counts(svds), counts(low)
    fast_counts = {m.name: m.count for m in fast.matrices}
    full_counts = {m.name: m.count for m in full.matrices}
    low_mismatched = sum(low_counts[n] != ref_counts[n] for n in names)
    # the baseline: svds, or svd_lowrank when that is both exact in its counts and faster
    use_low = low_mismatched == 0 and low_cpu < sv_cpu
    base_counts, warm_s, warm_cpu_b = (low_counts, low_s, low_cpu) if use_low else \
        (svds_counts, sv_s, sv_cpu)
    mismatched = [n for n in names
                  if not ref_counts[n] == fast_counts[n] == full_counts[n] == base_counts[n]]
    diff = max(float(np.abs(np.asarray(m.max_cos) - ref[m.name]).max()) for m in fast.matrices)
    line_s, line_cpu = bb_s + warm_s, bb_cpu + warm_cpu_b
    on_gpu = fast.device != "cpu"
    speedup, speedup_cpu = line_s / fast_s, line_cpu / max(fast_cpu, 1e-9)
    return {
        "model": model,
        "matrices": len(names),
        "k": k,
        "eps": eps,
        "lora_rank": r,
        "device": fast.device,
        "threads": torch.get_num_threads(),
        "build_pair_s": round(build_s, 2),
        "baseline": ("torch.linalg.svd(W0) + torch.svd_lowrank(Wt)" if use_low else
                     "torch.linalg.svd(W0) + scipy.sparse.linalg.svds(Wt, k)"),
        "baseline_s": round(line_s, 3),
        "baseline_cpu_s": round(line_cpu, 3),
        "baseline_base_s": round(bb_s, 3),
        "baseline_base_cpu_s": round(bb_cpu, 3),
        "baseline_warm_s": round(warm_s, 3),
        "baseline_warm_cpu_s": round(warm_cpu_b, 3),
        "reference_s": round(ref_s, 3),
        "reference_cpu_s": round(ref_cpu, 3),
        "lowrank_s": round(low_s, 3),
        "lowrank_cpu_s": round(low_cpu, 3),
        "lowrank_mismatched_matrices": low_mismatched,
        "intruders_lowrank": sum(low_counts.values()),
        "fast_s": round(fast_s, 3),
        "fast_cpu_s": round(fast_cpu, 3),
        "fast_warm_s": round(warm_s_fast, 3),
        "fast_warm_cpu_s": round(warm_cpu, 3),
        "fast_full_s": round(full_s, 3),
        "fast_full_cpu_s": round(full_cpu, 3),
        "speedup": round(speedup, 2),
        "speedup_cpu": round(speedup_cpu, 2),
        "speedup_warm": round(warm_s / warm_s_fast, 2),
        "speedup_warm_cpu": round(warm_cpu_b / max(warm_cpu, 1e-9), 2),
        "speedup_vs_full_svd": round(ref_s / fast_s, 2),
        "speedup_vs_full_svd_cpu": round(ref_cpu / max(fast_cpu, 1e-9), 2),
        "speedup_full": round(line_s / full_s, 2),
        "intruders_fast": sum(fast_counts.values()),
        "intruders_baseline": sum(base_counts.values()),
        "intruders_reference": sum(ref_counts.values()),
        "matrices_with_intruders": sum(c > 0 for c in fast_counts.values()),
        "counts_identical": not mismatched,
        "mismatched_matrices": len(mismatched),
        "max_abs_cos_diff": float(f"{diff:.3g}"),
        "goal_met": bool(not mismatched and (speedup if on_gpu else speedup_cpu) >= 5),
    }


def bench_intruders(model: str = "smollm2-135m-instruct", k: int = 10, eps: float = 0.5,
                    r: int = 8, seed: int = 0, layers: int | None = None, device: str = "auto",
                    threads: int = 1, isolate: bool = True) -> dict[str, Any]:
    """The benchmark: `measure` in a child process limited to `threads` (or here: isolate=False)."""
    if not isolate:
        return measure(model, k, eps, r, seed, layers, device)
    n = str(threads)
    env = {**os.environ, "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}
    args = (model, k, eps, r, seed, layers, device)
    code = (f"import json, torch; torch.set_num_threads({threads}); "
            "from lmlab.studies.intruders.bench import measure; "
            f"print(json.dumps(measure(*{args!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=False)
    if proc.returncode != 0:
        from lmlab.errors import LmlabError

        tail = " ".join(proc.stderr.strip().splitlines()[-1:])[-400:]
        raise LmlabError(f"the intruders benchmark failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
