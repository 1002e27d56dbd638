"""Zhong & Andreas (2024), "Algorithmic Capabilities of Random Transformers", as an lmlab study.

Train only the embeddings (token, position, unembedding) of randomly initialized transformers
and compare them with fully trained ones on the paper's tasks::

    from lmlab.studies.random_transformers import Job, run_job
    result = run_job(Job("parens", "random", width=128, seed=0,
                         task_kw=(("n_pairs", 10), ("batch_size", 64)), steps=500))

Modules: `tasks` (the algorithmic generators), `language` (grammar corpus, TinyStories),
`lstm` (the LSTM baseline), `experiments` (one training job), `imitation` (circuit imitation),
`analysis` (subspace concentration, attention heads, capacity), `config` (config, presets),
`study` (the jobs and their orchestration), `summary` (metrics, figures), `claims` (claims and
checks).
"""

from lmlab.studies.random_transformers.experiments import Job, build_model, run_job
from lmlab.studies.random_transformers.imitation import ImitationJob, run_imitation
from lmlab.studies.random_transformers.study import (
    STUDY,
    RandomTransformersConfig,
    RandomTransformersStudy,
)

__all__ = [
    "STUDY",
    "ImitationJob",
    "Job",
    "RandomTransformersConfig",
    "RandomTransformersStudy",
    "build_model",
    "run_imitation",
    "run_job",
]
