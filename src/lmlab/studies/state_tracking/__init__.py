"""Li, Guo & Andreas (2025), "(How) Do Language Models Track State?", as an lmlab study.

Models trained to compose permutations learn an associative scan (AA) or a parity-associative
scan (PAA); probes and activation patching tell them apart, and intermediate tasks steer between
them.

    from lmlab.studies.state_tracking import make_group, OracleScan, classify
    g = make_group("S3", "gather")
    states = g.compose(actions)            # (N, T) action indices -> states after each action

Modules: `groups` (S3/S5/A4/A5, gather and scatter), `data` (stories, splits), `training` (the
recipe), `evaluation` (cutoffs), `probes` and `patching` (generic, by hook name), `oracles`
(hand-built AA/PAA/lookup models), `mechanism` (AA, PAA or neither, each from its own signature), `steering` (intermediate tasks),
`pretrained` (Hugging Face / embedded SmolLM2 models with added tokens and the same hook
names), `config` (config, presets), `study` (run), `claims` (claims and checks), `bench`
(`lmlab bench state-tracking`: a preset's step pace on this device). `topic_mapping/` holds the
paper's released topic-word matrix for the ntp task (MIT, with its provenance).
"""

from lmlab.studies.state_tracking.groups import Group, apply_action, make_group, perm_parity
from lmlab.studies.state_tracking.mechanism import Signature, classify, first_action_corruptions
from lmlab.studies.state_tracking.oracles import OracleScan
from lmlab.studies.state_tracking.patching import patch_grid, patched_nld
from lmlab.studies.state_tracking.probes import LinearProbe, collect_activations, probe_grid
from lmlab.studies.state_tracking.study import STUDY, StateTrackingConfig, StateTrackingStudy

__all__ = [
    "STUDY", "Group", "LinearProbe", "OracleScan", "Signature", "StateTrackingConfig",
    "StateTrackingStudy", "apply_action", "classify", "collect_activations",
    "first_action_corruptions", "make_group", "patch_grid", "patched_nld", "perm_parity",
    "probe_grid",
]
