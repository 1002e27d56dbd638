"""The `algae` study: Peng, Li, Sucholutsky, Kumar, Shah, Andreas & Bobu (CoRL 2024),
"Adaptive Language-Guided Abstraction from Contrastive Explanations".

A language model proposes human-meaningful features (as code, run in `lmlab.sandbox`) that
explain a few demonstrations; maximum-entropy IRL weights them; when the demonstrations stay
poorly explained (a detector calibrated on held-apart worlds), the model is shown a demonstration
beside the learned optimum and asked for the missing feature. Semantic gridworlds (Gymnasium)
with a hidden linear reward, a continuous 2-D navigation task, deep MaxEnt IRL and
all/initial/oracle-feature IRL baselines, regret on held-out rooms. No official code exists;
see the module docstrings for every reconstruction choice.
"""

from .study import STUDY

__all__ = ["STUDY"]
