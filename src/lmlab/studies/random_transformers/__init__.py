"""Zhong & Andreas (2024), "Algorithmic Capabilities of Random Transformers", as an lmlab study.

Train only the embeddings (token, position, unembedding) of randomly initialized transformers
and compare them with fully trained ones on the paper's tasks. One job, derived from a config::

    from lmlab.study import apply_overrides
    from lmlab.studies.random_transformers import TINY, job, run_job
    c = apply_overrides(TINY, ["parens.pairs=10", "parens.steps=500"])
    result = run_job(job(c, "parens", "random", width=128, i=0))

Modules: `config` (the config, its nested groups, presets), `tasks` (the algorithmic generators),
`language` (grammar corpus, TinyStories), `catalog` (every task by name), `lstm` (the LSTM
baseline), `experiments` (one training job), `imitation` (circuit imitation), `jobs` (the job
specs, derived from the config, with their seeds), `steps` (progress inside running jobs),
`analysis` (subspace concentration, attention heads, capacity, intervals), `gaps` (the frozen
heads' attainable attention logit gap), `gap_models` (the gaps of the grid's models), `width` (the width sweep's metrics, table and figures),
`costs` (FLOPs per step and the `gpu` preset's runtime estimate), `summary` (metrics, figures),
`claims` (claims and checks), `study` (orchestration).
"""

from lmlab.studies.random_transformers.config import TINY, RandomTransformersConfig
from lmlab.studies.random_transformers.experiments import Job, build_model, run_job
from lmlab.studies.random_transformers.imitation import ImitationJob, run_imitation
from lmlab.studies.random_transformers.jobs import job
from lmlab.studies.random_transformers.study import STUDY, RandomTransformersStudy

__all__ = [
    "STUDY",
    "TINY",
    "ImitationJob",
    "Job",
    "RandomTransformersConfig",
    "RandomTransformersStudy",
    "build_model",
    "job",
    "run_imitation",
    "run_job",
]
