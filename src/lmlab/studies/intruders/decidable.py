"""Where the detector can decide: the base's spectral gaps and a null count per matrix.

The detector calls a tuned singular vector an intruder when its largest |cos| with any base
singular vector is below eps (0.5). When the base's top-k singular values form a near-degenerate
cluster (gaps sigma_i / sigma_i+1 near 1), a small perturbation rotates its singular vectors
freely inside the cluster, and a rotated vector spread over four or more cluster members has
every |cos| below 0.5: an "intruder" that no new direction caused. Whether that happens at the
size of a fine-tuning update is measured, not assumed:

- `null_counts`: perturb each base matrix W0 by N = U diag(s) V^T, where s are the singular
  values of the update dW = Wt - W0 (the same size and spectrum: ||N||_2 = ||dW||_2, ||N||_F =
  ||dW||_F) and U, V are Haar-random orthonormal columns (no direction of its own), and count the
  intruders of W0 + N against W0, over `draws` draws. These are intruders from noise alone.
- `decidable_sets`: a matrix is *decidable* on a seed's base when full fine-tuning's null count is
  0 in every draw: the detector then says "no intruder" to every random perturbation of full FT's
  size and spectrum, so an intruder it finds there is not a rotation that any such update makes.
  The set is one per seed (a property of the base and of full FT's update size), shared by every
  method of that seed, so paired comparisons count the same matrices.
- `restrict`: each run's first-stage count over its seed's decidable matrices
  (`intruders_decidable`), for the restricted claims.
- `spectral_gaps`: sigma_i / sigma_i+1 for i = 1..k (the top-k region and its boundary with
  sigma_k+1), for the log and the figure.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["base_gaps", "base_metrics", "decidable_sets", "null_counts", "random_directions",
           "restrict", "short_name", "spectral_gaps"]


def short_name(name: str) -> str:
    """A matrix's key part: `blocks.1.attn.o_proj.weight` -> `l1_o_proj`."""
    m = re.search(r"(?:^|\.)(?:blocks|layers|layer|h)\.(\d+)\.", name)
    kind = name.removesuffix(".weight").rsplit(".", 1)[-1]
    return f"l{m.group(1)}_{kind}" if m else kind


def spectral_gaps(w0: Tensor, k: int = 10) -> dict[str, Any]:
    """The top k + 1 singular values of `w0` (float64) and the k gaps sigma_i / sigma_i+1."""
    s = torch.linalg.svdvals(w0.detach().double())[: k + 1]
    gaps = (s[:-1] / s[1:].clamp_min(torch.finfo(s.dtype).tiny)).tolist()
    return {"sigma": s.tolist(), "gaps": gaps, "min_gap": min(gaps) if gaps else float("nan")}


def _haar(rows: int, cols: int, g: torch.Generator) -> Tensor:
    """`cols` orthonormal columns in R^rows, uniformly (Haar) distributed."""
    q, r = torch.linalg.qr(torch.randn(rows, cols, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def random_directions(s: Tensor, rows: int, cols: int, g: torch.Generator) -> Tensor:
    """A rows x cols matrix (float64) with singular values `s` and Haar-random singular vectors."""
    p = s.numel()
    return (_haar(rows, p, g) * s.double()) @ _haar(cols, p, g).T


def null_counts(base: Mapping[str, Tensor], tuned: Mapping[str, Tensor], k: int, eps: float,
                draws: int, seed: int) -> dict[str, list[int]]:
    """Per matrix, the intruders of W0 + N against W0 in each of `draws` draws, N having the
    update's singular values and Haar-random singular vectors (see the module docstring)."""
    from lmlab.seeding import derive
    from lmlab.studies.intruders.detect import BaseCache, analyze

    names = list(base)
    spectra = {n: torch.linalg.svdvals(tuned[n].double() - base[n].double()) for n in names}
    cache = BaseCache()
    out: dict[str, list[int]] = {n: [] for n in names}
    for d in range(draws):
        g = torch.Generator().manual_seed(derive(seed, "null", d))
        noisy = {}
        for n in names:
            w0 = base[n]
            noise = random_directions(spectra[n], w0.shape[0], w0.shape[1], g)
            noisy[n] = (w0.double() + noise).to(w0.dtype)
        rep = analyze(base, noisy, k=k, eps=eps, names=names, device="cpu", cache=cache,
                      update_stats=False)
        for mr in rep.matrices:
            out[mr.name].append(mr.count)
    return out


def decidable_sets(results: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Seed index -> the matrices full FT's null count leaves decidable (0 in every draw).

    Seeds without a full-FT run with null counts are left out (nothing to decide them by)."""
    out: dict[int, list[str]] = {}
    for r in results:
        stage = r["stages"][0]
        if r["type"] == "full" and stage.get("null_counts"):
            out[int(r.get("seed_index", 0))] = [n for n, c in stage["null_counts"].items()
                                                if max(c, default=0) == 0]
    return out


def restrict(results: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Add `intruders_decidable` (the count over the seed's decidable matrices) to the first
    stage of every run whose seed has a decidable set; returns the sets."""
    sets = decidable_sets(results)
    for r in results:
        chosen = sets.get(int(r.get("seed_index", 0)))
        if chosen is not None:
            stage = r["stages"][0]
            stage["intruders_decidable"] = sum(stage["per_matrix"][n] for n in chosen)
    return sets


def base_gaps(paths: Mapping[int, str], names: list[str], k: int) -> dict[int, dict[str, Any]]:
    """Seed index -> matrix -> `spectral_gaps` of the pre-trained base saved at `paths[i]`."""
    from lmlab.runs import load_tensors

    out = {}
    for i, path in paths.items():
        w, _ = load_tensors(path)
        out[i] = {n: spectral_gaps(w[n], k) for n in names}
    return out


def base_metrics(gaps: Mapping[int, Mapping[str, Mapping[str, Any]]],
                 sets: Mapping[int, list[str]], results: list[dict[str, Any]],
                 draws: int) -> dict[str, Any]:
    """The base's gaps and the decidable sets as flat metrics (`base.*`, per matrix by its
    `short_name`): the smallest gap in the top-k region (mean over seeds), full FT's null count
    (mean over draws and seeds), the share of seeds where the matrix is decidable, and how
    many matrices are decidable per seed."""
    m: dict[str, Any] = {}
    names = list(next(iter(gaps.values()))) if gaps else []
    nulls = {int(r.get("seed_index", 0)): r["stages"][0].get("null_counts") or {}
             for r in results if r["type"] == "full"}
    for n in names:
        p = f"base.{short_name(n)}"
        mins = [g[n]["min_gap"] for g in gaps.values()]
        m[f"{p}.min_gap"] = sum(mins) / len(mins)
        m[f"{p}.sigma_k"] = sum(g[n]["sigma"][-2] for g in gaps.values()) / len(gaps)
        counts = [sum(c) / len(c) for s in sets if (c := nulls.get(s, {}).get(n))]
        if counts:
            m[f"{p}.null"] = sum(counts) / len(counts)
        if sets:
            m[f"{p}.decidable"] = sum(n in v for v in sets.values()) / len(sets)
    all_min = sorted(g[n]["min_gap"] for g in gaps.values() for n in names)
    if all_min:
        m["base.min_gap.median"] = statistics.median(all_min)
        m["base.min_gap.max"] = all_min[-1]
    m["base.matrices"] = len(names)
    m["base.null_draws"] = draws
    if sets:
        sizes = [len(v) for v in sets.values()]
        m["base.decidable.mean"] = sum(sizes) / len(sizes)
        m["base.decidable.min"] = min(sizes)
        m["base.decidable.seeds"] = len(sets)
        bad = [(short_name(n), sum(n not in v for v in sets.values())) for n in names]
        m["base.undecidable"] = ", ".join(f"{s} {c}/{len(sets)}" for s, c in bad if c) or "none"
    return m
