"""Akyürek et al. (2024), "The Surprising Effectiveness of Test-Time Training for Abstract
Reasoning", as an lmlab study (`ttt-arc`).

Data layer: `arc` (tasks, the test-output guard, loaders), `serialize` (the official text format
and compact grid tokens), `transforms` (the 23 TTT transforms), `ttt_data` (leave-one-out TTT
tasks), `inference` (augmented queries), `voting`, `scoring` (pass@2, Kaggle submissions).
Model side: `generator` (procedural ARC-like tasks), `model` (the tiny GPT, cached decoding),
`pretrain`, `ttt` (per-task PEFT LoRA), `backends` (tiny GPT and HF models), `experiments`
(the per-task jobs), `evaluate`, `summary` (intervals), `figures`; `config` (the config and
presets), `claims` (claims and checks), `study` (orchestration).
"""

from lmlab.studies.ttt_arc.study import STUDY, TTTArcConfig, TTTArcStudy

__all__ = ["STUDY", "TTTArcConfig", "TTTArcStudy"]
