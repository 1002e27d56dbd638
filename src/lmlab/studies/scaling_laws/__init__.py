"""A Hitchhiker's Guide to Scaling Law Estimation (Choshen, Zhang, Andreas 2024).

Fit scaling laws to checkpoint-level losses and measure how well they extrapolate, with the
paper's protocol and best practices. The package holds:

- `data`: the checkpoint schema, its validation, the ColPret table (packaged with lmlab, found
  through `lmlab.data`; `colpret`: the importer for the paper's public release);
- `forms`: functional forms (Chinchilla, multiplicative, one-model, PCA, linked);
- `fit`: least squares (the paper's) and the vectorized 4^5-start Huber L-BFGS, bootstrap;
- `protocol`: target and fit-set selection, ARE, the variants; `summary`: cells to metrics;
- `grow`: a family of small lmlab GPTs trained on a synthetic corpus;
- `figures`, `claims`, `study` (config, presets, run), `cli` (`lmlab scaling-laws ...`),
  `bench` (`lmlab bench scaling-laws`).

    from lmlab.studies.scaling_laws import fit, forms, data
    table = data.load_colpret().only_family("OPT")
    law = fit.fit(forms.ChinchillaForm(), table.num_params, table.tokens, table.loss)
    law.params()   # {'a': ..., 'E': ..., 'A': ..., 'B': ..., 'alpha': ..., 'beta': ...}
"""

from __future__ import annotations

from lmlab.studies.scaling_laws.study import Config, ScalingLawsStudy

__all__ = ["STUDY", "Config", "ScalingLawsStudy"]

STUDY = ScalingLawsStudy()
