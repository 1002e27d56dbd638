"""Damani, Shenfeld, Peng, Bobu & Andreas (ICLR 2025), "Learning How Hard to Think:
Input-Adaptive Allocation of LM Computation", as an lmlab study.

A light predictor reads a query's hidden state and predicts how much more sampling would help;
an allocator spends a batch's budget of best-of-k samples where the predicted gains are largest,
or routes queries between a weak and a strong decoder. Modules: `labels` (exact reward-vs-budget
curves), `allocation` (greedy, per-query thresholds, random), `routing`, `evaluation` (curves,
savings, bootstrap), `tables` (sample tables, JSONL/Parquet), `queries` (graded arithmetic and
word problems), `verifiers` (rewards; code runs in `lmlab.sandbox`), `collect` (sampling through
`lmlab.llm`, chunks fanned out to worker processes),
`predictors` (the MLP probe, heuristics), `analysis` (the whole comparison on arrays),
`synthetic` (tables with known pass rates), `figures`, `claims`, `config`, `study`.
"""

from lmlab.studies.adaptive_compute.study import STUDY, AdaptiveComputeStudy

__all__ = ["STUDY", "AdaptiveComputeStudy"]
