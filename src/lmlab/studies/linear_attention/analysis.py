"""From the jobs' results to the study's metrics (dotted keys, `task.condition.size.metric`).

- `teacher.<model>.d<d>.val_nmse` (median over teachers) and `....seed<s>` (each teacher), where
  <model> is `alg1`, `mhla_<H>h`, `stacked_<L>L` or `softmax_<L>L`; `teacher.alg1.paper.*`
  (Algorithm 1 at the paper's size); `teacher.d2_margin.d<d>.*`: the paired log10 ratio of the
  d^2-head MHLA's error to the best other trained model's on the same teacher, with its bootstrap
  interval over teachers.
- `memory.f<fraction>.*` (medians over seeds), `memory.spearman.<learner>.{rho,ci_lo,ci_hi,p}`
  (lambda_min against the p-distance, interval by bootstrap over datasets), and the extremes the
  checks read.
- `dfa.chosen.{val,test}.*` (the run chosen on validation, its test accuracy), `dfa.<vary><v>.*`
  per grid point, `dfa.generator.*`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from lmlab.stats import bootstrap_ci, median, spearman, spearman_ci

__all__ = ["design_metrics", "dfa_generator_metrics", "dfa_metrics", "memory_metrics",
           "model_label", "teacher_metrics"]

N_BOOT = 2000


def model_label(kind: str, size: int) -> str:
    """`mhla_4h`, `stacked_2L`, `softmax_1L`: a trained model's name in metric keys."""
    return f"mhla_{size}h" if kind == "mhla" else f"{kind}_{size}L"


def design_metrics(cfg: Any) -> dict[str, Any]:
    """The rank of the cubic design on Gaussian inputs, `design.d<d>.rank`."""
    import torch

    from lmlab.seeding import generator
    from lmlab.studies.linear_attention.data import gaussian_sequences
    from lmlab.studies.linear_attention.features import full_features
    from lmlab.studies.linear_attention.mhla import n_independent

    out: dict[str, Any] = {}
    for d in cfg.teacher.rank_dims:
        g = generator(cfg.seed, 500, d)
        X = full_features(gaussian_sequences(g, 4 * n_independent(d), 8, d))
        out[f"design.d{d}.rank"] = int(torch.linalg.matrix_rank(X))
    return out


def teacher_metrics(cfg: Any, paper_size: list[dict], exact: list[dict],
                    sgd: list[dict]) -> tuple[dict[str, Any], dict[int, dict[str, list[float]]]]:
    """Metrics of experiment (a), and the table d -> model -> per-teacher errors (for the figure)."""
    m: dict[str, Any] = {}
    for key in ("val_nmse", "pdist_rel", "heads_gap_rel"):
        m[f"teacher.alg1.paper.{key}"] = max(r[key] for r in paper_size)
    m["teacher.alg1.paper.n_heads"] = max(r["n_heads"] for r in paper_size)
    m["teacher.alg1.paper.wall_s"] = median([r["wall_s"] for r in paper_size])

    n_seeds = cfg.teacher.seeds
    # d -> model -> per-teacher errors, in teacher order (the plan lists seeds innermost).
    table: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in exact:
        table[r["d"]]["alg1"].append(r["val_nmse"])
    for r in sgd:
        table[r["d"]][model_label(r["kind"], r["size"])].append(r["val_nmse"])
    for d, rows in table.items():
        for label, vals in rows.items():
            assert len(vals) == n_seeds, (d, label, len(vals))
            m[f"teacher.{label}.d{d}.val_nmse"] = median(vals)
            for s, v in enumerate(vals):
                m[f"teacher.{label}.d{d}.val_nmse.seed{s}"] = v
    for r in sgd:
        if r["kind"] == "mhla" and r["size"] == r["d"] ** 2:
            key = f"teacher.mhla_d2h.d{r['d']}.pdist_rel"
            m[key] = min(m.get(key, math.inf), r["pdist_rel"])
    for d, rows in table.items():
        m.update(_d2_margin(d, rows, n_seeds))
    m["teacher.sgd.wall_s"] = sum(r["wall_s"] for r in sgd)
    return m, {d: dict(rows) for d, rows in table.items()}


def _d2_margin(d: int, rows: dict[str, list[float]], n_seeds: int) -> dict[str, Any]:
    """log10(error of d^2 heads / error of the best other trained model), per teacher, and the
    bootstrap interval of its mean over teachers (< 0 throughout: d^2 heads do best)."""
    mine = rows.get(f"mhla_{d * d}h")
    others = {k: v for k, v in rows.items() if k not in (f"mhla_{d * d}h", "alg1")}
    if mine is None or not others:
        return {}
    tiny = 1e-300  # an error of exactly 0 stays comparable on the log scale
    logs = []
    for s in range(n_seeds):
        best = min(v[s] for v in others.values())
        logs.append(math.log10(max(mine[s], tiny)) - math.log10(max(best, tiny)))
    ci = bootstrap_ci(logs, n_boot=N_BOOT)
    key = f"teacher.d2_margin.d{d}"
    out: dict[str, Any] = {f"{key}.log10_ratio": ci.value, f"{key}.ci_lo": ci.lo,
                           f"{key}.ci_hi": ci.hi, f"{key}.n": len(logs),
                           f"{key}.wins": sum(v < 0 for v in logs),
                           f"{key}.best_other": min(others, key=lambda k: median(others[k]))}
    for s, v in enumerate(logs):
        out[f"{key}.log10_ratio.seed{s}"] = v
    return out


def memory_metrics(res: list[dict]) -> dict[str, Any]:
    """Metrics of experiment (b)."""
    m: dict[str, Any] = {}
    by_frac: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in res:
        by_frac[r["frac"]].append(r)
    for f, rs in sorted(by_frac.items()):
        for k in ("lambda_min", "pdist_exact", "pdist_gd", "pdist_erm_random_start", "pdist_sgd"):
            m[f"memory.f{f:g}.{k}"] = median([r[k] for r in rs])
    lam = [r["lambda_min"] for r in res]
    for learner in ("exact", "gd", "sgd"):
        pdist = [r[f"pdist_{learner}"] for r in res]
        iv = spearman_ci(lam, pdist, n_boot=N_BOOT)
        stats = {"rho": iv.value, "p": spearman(lam, pdist)[1], "ci_lo": iv.lo, "ci_hi": iv.hi}
        for k, v in stats.items():
            m[f"memory.spearman.{learner}.{k}"] = v
    ident = [r for r in res if r["identifiable"]]
    nonid = [r for r in res if not r["identifiable"]]
    m["memory.identifiable.n"] = len(ident)
    m["memory.nonidentifiable.n"] = len(nonid)
    m["memory.identifiable.erm_pdist_max"] = max(
        (r["pdist_erm_random_start"] for r in ident), default=math.nan)
    m["memory.nonidentifiable.erm_pdist_min"] = min(
        (r["pdist_erm_random_start"] for r in nonid), default=math.nan)
    m["memory.all.pdist_exact_max"] = max(r["pdist_exact"] for r in res)
    pure = [r for r in res if r["frac"] == 0.0]
    orth = [r for r in res if r["frac"] == 1.0]
    m["memory.gaussian.lambda_min_lowest"] = min((r["lambda_min"] for r in pure), default=math.nan)
    m["memory.orthonormal.lambda_min_highest"] = max((r["lambda_min"] for r in orth),
                                                     default=math.nan)
    return m


def dfa_generator_metrics(cfg: Any) -> dict[str, Any]:
    """The DFA data generator checked on fresh examples of every grid point."""
    from lmlab.seeding import numpy_rng
    from lmlab.studies.linear_attention.automaton import (
        Vocab,
        encode_example,
        history_consistent,
        random_dfa,
    )
    from lmlab.studies.linear_attention.experiments import dfa_shape

    rng = numpy_rng(cfg.seed, 402)
    consistent, lengths_ok = True, True
    for v in cfg.dfa.values:
        q, a, L = dfa_shape(cfg, v)
        for _ in range(20):
            dfa = random_dfa(rng, q, a)
            toks, mask = encode_example(dfa, rng.integers(a, size=L), rng)
            consistent &= history_consistent(toks, Vocab(q, a), L)
            lengths_ok &= len(toks) == Vocab(q, a).seq_len(L) and int(mask.sum()) == 5 * L
    return {"dfa.generator.history_consistent": int(consistent),
            "dfa.generator.format_ok": int(lengths_ok)}


def dfa_metrics(cfg: Any, res: list[dict]) -> dict[str, Any]:
    """Metrics of experiment (c): the run chosen on validation (which also stopped it) is
    reported on test; per grid point, the fewest tokens whose run reached 99% on validation,
    counted when test agrees."""
    from lmlab.studies.linear_attention.experiments import dfa_shape

    m: dict[str, Any] = {}
    if not res:
        return m
    chosen = max(res, key=lambda r: r["val_history_acc"])
    m["dfa.chosen.test.history_acc"] = chosen["history_acc"]
    m["dfa.chosen.test.state_acc"] = chosen["state_acc"]
    m["dfa.chosen.val.history_acc"] = chosen["val_history_acc"]
    reached = 0
    for v in cfg.dfa.values:
        shape = dfa_shape(cfg, v)
        hits = sorted((r for r in res if (r["n_states"], r["n_symbols"], r["word_len"]) == shape
                       and r["val_reached_99"]), key=lambda r: r["train_tokens"])
        first = hits[0] if hits else None
        ok = first is not None and first["reached_99"]
        m[f"dfa.{cfg.dfa.vary}{v}.tokens_to_99"] = first["train_tokens"] if ok else None
        m[f"dfa.{cfg.dfa.vary}{v}.test_acc_at_99"] = first["history_acc"] if first else None
        reached += bool(ok)
    m["dfa.grid.points_reached_99"] = reached
    m["dfa.train.wall_s"] = sum(r["wall_s"] for r in res)
    return m
