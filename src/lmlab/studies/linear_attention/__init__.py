"""Yau et al. (2024), "Learning Linear Attention in Polynomial Time", as an lmlab study.

Multi-head linear attention is a linear predictor on cubic features of its input, so ordinary
least squares learns it exactly (Algorithm 1), the solution folds back into at most d^2 heads, and
the smallest eigenvalue of the features' second moment certifies when every empirical-risk
minimizer computes the same function.

    from lmlab.studies.linear_attention import fit_mhla, certify, p_distance
    fit = fit_mhla(Z, Y)                 # Z (N, n, d), Y (N, n, d_out)
    heads = fit.heads()                  # mhla.Heads, <= d^2 heads
    certify(Z, prefixes=True).identifiable

Modules: `mhla` (the model, W, the parameter map p), `features` (the cubic feature maps),
`regression` (Algorithm 1, chunked normal equations), `certificate`, `data` (random teacher,
associative memories), `models` (gradient-trained baselines), `automaton` (DFA execution),
`experiments` (the jobs), `config` (config, presets), `study` (run), `claims` (claims and
checks), `cli`, `bench`.
"""

from __future__ import annotations

import importlib
from typing import Any

from lmlab.studies.linear_attention.study import STUDY, LinearAttentionConfig, LinearAttentionStudy

# The numerical API loads torch, so it is imported on first use: `lmlab list` and `--help`
# stay fast while every study is loaded.
_LAZY = {
    "Certificate": "certificate", "certify": "certificate",
    "Heads": "mhla", "mhla": "mhla", "mhla_prefixes": "mhla", "p_distance": "mhla", "p_map": "mhla",
    "Fit": "regression", "fit_mhla": "regression",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "STUDY",
    "Certificate",
    "Fit",
    "Heads",
    "LinearAttentionConfig",
    "LinearAttentionStudy",
    "certify",
    "fit_mhla",
    "mhla",
    "mhla_prefixes",
    "p_distance",
    "p_map",
]
