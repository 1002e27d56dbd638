"""The linear-attention study's claims (the paper's findings) and checks (our invariants).

Each verdict is computed from the metrics `LinearAttentionStudy.run` returns.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from lmlab.studies.linear_attention.config import LinearAttentionConfig
from lmlab.studies.linear_attention.mhla import n_independent
from lmlab.study import Check, Claim

__all__ = ["checks", "claims"]


def claims(config: LinearAttentionConfig, metrics: dict[str, Any]) -> list[Claim]:
    """The paper's findings, each evaluated from the measured metrics."""
    cfg, m = config, metrics
    out: list[Claim] = []
    nmse, pd = m["alg1_paper_size_val_nmse"], m["alg1_paper_size_pdist_rel"]
    out.append(Claim.check(
        "alg1_exact",
        f"Algorithm 1 recovers a realizable random MHLA teacher (d={cfg.exact_d}, "
        f"T={cfg.exact_seq_len}, N={cfg.exact_n_train}) to floating-point precision",
        "held-out MSE/Var(y) < 1e-12 and p-distance < 1e-8 relative",
        f"MSE/Var(y) {nmse:.2g}, p-distance {pd:.2g}",
        nmse < 1e-12 and pd < 1e-8,
    ))
    gap, nh = m["alg1_paper_size_heads_gap_rel"], m["alg1_paper_size_n_heads"]
    out.append(Claim.check(
        "alg1_heads",
        "the learned W folds back (SVD) into at most d^2 heads that reproduce the regression",
        "<= d^2 heads, outputs equal to 1e-8",
        f"{nh} heads (d^2 = {cfg.exact_d ** 2}), max relative gap {gap:.2g}",
        nh <= cfg.exact_d**2 and gap < 1e-8,
    ))
    # d^2 heads vs everything else, per d (medians over seeds).
    verdicts, parts, match = [], [], []
    for d in cfg.dims:
        mine = m.get(f"d{d}_mhla_{d * d}h_val_nmse")
        if mine is None:
            continue
        others = {k[len(f"d{d}_"):-len("_val_nmse")]: v for k, v in m.items()
                  if k.startswith(f"d{d}_") and k.endswith("_val_nmse")
                  and k not in (f"d{d}_mhla_{d * d}h_val_nmse", f"d{d}_alg1_val_nmse")}
        best_name, best = min(others.items(), key=lambda kv: kv[1]) if others else ("-", math.inf)
        verdicts.append(mine <= best)
        parts.append(f"d={d}: {mine:.2g} vs best other {best:.2g} ({best_name})")
        match.append((d, mine))
    out.append(Claim.check(
        "d2_heads_best",
        "among gradient-trained models, MHLA with d^2 heads reaches the lowest held-out error; "
        "fewer heads, stacked single-head layers and the softmax transformer do not do better",
        "d^2 heads best (Fig. 1)",
        "; ".join(parts) or "not run",
        all(verdicts) if verdicts else None,
    ))
    out.append(Claim.check(
        "d2_heads_match_alg1",
        "gradient-trained MHLA with d^2 heads matches Algorithm 1, approaching floating-point "
        "precision",
        "held-out MSE/Var(y) near float precision (read here as < 1e-6)",
        "; ".join(f"d={d}: {v:.2g} (Algorithm 1: {m[f'd{d}_alg1_val_nmse']:.2g})" for d, v in match)
        or "not run",
        all(v < 1e-6 for _, v in match) if match else None,
    ))
    lg, lo = m["mem_lambda_min_gaussian"], m["mem_lambda_min_orthonormal"]
    out.append(Claim.check(
        "certificate_separates",
        "the certificate's smallest eigenvalue is positive for Gaussian memories and 0 for "
        "orthonormal-key memories",
        "lambda_min > 0 (Gaussian), <= 1e-10 (orthonormal)",
        f"Gaussian {lg:.3g}, orthonormal {lo:.2g}",
        None if math.isnan(lg) or math.isnan(lo) else (lg > 1e-10 and lo <= 1e-10),
    ))
    for key, who in (("gd", f"Algorithm 1's objective minimized by {cfg.memory_gd_steps} "
                            "full-batch gradient-descent steps from a random start"),
                     ("sgd", f"MHLA ({cfg.memory_heads} heads) trained by Adam")):
        rho = m[f"mem_spearman_{key}"]
        out.append(Claim.check(
            f"pdist_falls_{key}",
            f"p-distance to the truth falls as the smallest eigenvalue rises ({who})",
            "Spearman rho < 0 (Fig. 2)",
            f"rho = {rho:.3f}",
            None if math.isnan(rho) else rho < 0,
        ))
    if "dfa_history_acc" in m:
        acc = m["dfa_history_acc"]
        out.append(Claim.check(
            "dfa_learned",
            "a softmax transformer learns to execute automata in context (99% next-token "
            "accuracy on the history of unseen automaton-word pairs)",
            "99% reached on test (App. G.4), the run chosen on validation",
            f"test history accuracy {acc:.3f} (next-state tokens {m['dfa_state_acc']:.3f}; "
            f"validation {m['dfa_val_history_acc']:.3f})",
            acc >= 0.99,
        ))
        tokens = [(v, m[f"dfa_{cfg.dfa_vary}{v}_tokens_to_99"]) for v in cfg.dfa_values]
        tokens = [(v, t) for v, t in tokens if t is not None]
        if len(tokens) >= 3:
            logs = [math.log(t) for _, t in tokens]
            steps = [b - a for a, b in itertools.pairwise(logs)]
            sub = all(b <= a + 1e-12 for a, b in itertools.pairwise(steps))
            out.append(Claim.check(
                "dfa_subexponential",
                f"tokens needed for 99% grow sub-exponentially in {cfg.dfa_vary}",
                "suggestive of sub-exponential dependence",
                ", ".join(f"{v}: {t}" for v, t in tokens),
                sub,
            ))
        else:
            out.append(Claim.untestable(
                "dfa_subexponential",
                f"tokens needed for 99% grow sub-exponentially in {cfg.dfa_vary}",
                "suggestive of sub-exponential dependence",
                f"needs >= 3 grid points reaching 99% ({len(tokens)} here); run the paper preset",
            ))
    return out


def checks(config: LinearAttentionConfig, metrics: dict[str, Any]) -> list[Check]:
    """Identities and invariants of this implementation (not findings of the paper)."""
    cfg, m = config, metrics
    out: list[Check] = []
    ranks = {d: m[f"design_rank_d{d}"] for d in cfg.rank_dims}
    out.append(Check.check(
        "design_rank",
        "the cubic design on Gaussian inputs has rank exactly d^2(d+1)/2 (an identity: the "
        "feature map's independent monomials)",
        ", ".join(f"d={d}: {n_independent(d)}" for d in cfg.rank_dims),
        ", ".join(f"d={d}: {r}" for d, r in ranks.items()),
        all(r == n_independent(d) for d, r in ranks.items()),
    ))
    ident_max = m["mem_identifiable_max_erm_pdist"]
    nonid_min = m["mem_nonidentifiable_min_erm_pdist"]
    testable = m["mem_n_identifiable"] > 0 and m["mem_n_nonidentifiable"] > 0
    out.append(Check.check(
        "positive_lambda_unique",
        "a positive smallest eigenvalue implies a unique learned function: every empirical-risk "
        "minimizer (here: the one nearest a random start) equals the truth in p-space, while "
        "at lambda_min = 0 minimizers that fit the data differ from the truth (holds by "
        "construction: the null space comes from the same eigendecomposition)",
        "unique iff lambda_min > 0 (Thm. 3)",
        f"max p-distance over {m['mem_n_identifiable']} certified sets {ident_max:.2g}; "
        f"min over {m['mem_n_nonidentifiable']} uncertified {nonid_min:.2g}",
        (ident_max < 1e-8 and nonid_min > 1e-3) if testable else None,
    ))
    if "dfa_format_ok" in m:
        out.append(Check.check(
            "dfa_generator",
            "DFA execution data: a table of 5|Q||Sigma| tokens and a history consistent with it",
            "format of App. G.4",
            f"format ok: {bool(m['dfa_format_ok'])}, history consistent: "
            f"{bool(m['dfa_history_consistent'])}",
            m["dfa_format_ok"] and m["dfa_history_consistent"],
        ))
    return out
