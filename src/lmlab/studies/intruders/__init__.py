"""Shuttleworth, Andreas, Torralba & Sharma (2024), "LoRA vs Full Fine-tuning: An Illusion of
Equivalence", as an lmlab study.

LoRA-tuned weight matrices acquire intruder dimensions (new high-ranking singular vectors far from
every pre-trained one) that full fine-tuning does not. The tools work on any pair of models::

    from lmlab.studies.intruders.detect import analyze
    report = analyze(base_state_dict, tuned_state_dict, k=10, eps=0.5)

Modules: `detect` (the detector), `loading` (models, adapters, checkpoints), `mitigate` (scaling
intruders by lambda), `figures`, `cli` (`lmlab intruders BASE TUNED`), `bench`; the study:
`data` (synthetic language and tasks), `experiments` (pre-training and fine-tuning jobs), `tiny`,
`smol` (with its tasks in `smol_data`), `paper` (the three experiments), `summary` (metrics),
`plots`; `config` (the config and presets), `claims` (claims and checks), `study`
(orchestration).
"""

from lmlab.studies.intruders.study import STUDY, IntruderConfig, IntruderStudy

__all__ = ["STUDY", "IntruderConfig", "IntruderStudy"]
