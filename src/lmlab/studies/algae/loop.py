"""The ALGAE loop: fit, detect a missing feature, contrast, propose, validate, add, repeat.

    F <- F0; theta <- MaxEnt-IRL(F, demos)
    repeat up to max_iters times:
        if the detector is quiet: stop ("explained")
        xi* <- the learned reward's optimal path in the room of the worst-explained demo
        show the proposer that demo beside xi* (as text) and ask for the missing feature
        keep the proposals that pass the sandbox's validation; add the one that most raises the
        demonstrations' likelihood; refit theta
    stop ("max_iters") when the detector still fires after the last addition

Every iteration is recorded: the detector's statistics, the proposals, which were valid, and
the feature added (name and code hash), so a run's log says why it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .detector import Detector, statistics
from .environment import STATE_API, TASK_DESCRIPTION
from .features import FeatureSpec, random_states, validate
from .irl import IRLFit, TabularMDP, demo_feature_counts, fit_maxent, greedy_path, optimal_policy
from .problem import Design, Observations
from .proposers import Proposer, ProposerInput


@dataclass
class Fitted:
    """A feature set fitted to demonstrations."""

    design: Design
    mdps: list[TabularMDP]
    fit: IRLFit

    def rewards(self, layouts: Sequence[Any], per_size: int = 2) -> list[np.ndarray]:
        """The learned state reward on each of `layouts`."""
        return [m @ self.fit.theta for m in self.design.matrices(layouts)]


def fit_features(specs: Sequence[FeatureSpec], obs: Observations, l2: float = 1e-2) -> Fitted:
    """MaxEnt IRL of a linear reward over `specs` on the observed demonstrations."""
    design = Design.fit(specs, obs.layouts)
    mdps = design.mdps(obs.layouts, obs.horizon_per_size)
    return Fitted(design, mdps, fit_maxent(mdps, obs.demos, l2=l2))


def demos_text(obs: Observations, max_demos: int = 2) -> str:
    parts = []
    for i, d in enumerate(obs.demos[:max_demos]):
        lay = obs.layouts[d.mdp_index]
        parts.append(f"Demonstration {i + 1}:\n{lay.describe_trajectory(d.states)}")
    return "\n".join(parts)


def contrast_text(obs: Observations, fitted: Fitted) -> str:
    """The worst-explained demonstration beside the learned reward's optimal path, as text."""
    gaps = []
    paths = []
    for d in obs.demos:
        m = fitted.mdps[d.mdp_index]
        r = m.features @ fitted.fit.theta
        _, pi = optimal_policy(m.transition_matrix, r, m.horizon)
        path = greedy_path(m.transition_matrix, pi, m.initial_state_dist)
        paths.append(path)
        gaps.append(float(r[path[:-1]].sum() - demo_feature_counts(d, m.features) @ fitted.fit.theta))
    k = int(np.argmax(gaps))
    d, lay = obs.demos[k], obs.layouts[obs.demos[k].mdp_index]
    return (
        f"With the current features, the best path from the start to the goal would be:\n"
        f"{lay.describe_trajectory(paths[k])}\n\n"
        f"But the person demonstrated this path instead, in the same room:\n"
        f"{lay.describe_trajectory(d.states)}"
    )


@dataclass
class LoopResult:
    """What the loop ended with and how it got there."""

    fitted: Fitted
    specs: list[FeatureSpec]
    stop_reason: str
    iterations: list[dict] = field(default_factory=list)
    proposed: int = 0
    valid: int = 0
    inputs: list[ProposerInput] = field(default_factory=list)

    @property
    def added(self) -> list[FeatureSpec]:
        return [f for it in self.iterations for f in it.get("added_specs", [])]


def run_algae(obs: Observations, initial: Sequence[FeatureSpec], proposer: Proposer,
              detector: Detector, *, max_iters: int = 3, l2: float = 1e-2, n_check: int = 100,
              seed: int = 0) -> LoopResult:
    """Run the loop from the features `initial` on the observations `obs`."""
    rng = np.random.default_rng(seed)
    specs = list(initial)
    fitted = fit_features(specs, obs, l2)
    res = LoopResult(fitted, specs, "max_iters")
    check_states = random_states(obs.layouts, n_check, rng)
    for it in range(max_iters + 1):
        stats = statistics(fitted.fit, fitted.mdps, obs.demos)
        fired = detector.fires(stats)
        rec: dict[str, Any] = {"iteration": it, "features": [f.name for f in specs],
                               "stats": stats, "fired": fired}
        res.iterations.append(rec)
        if not fired:
            res.stop_reason = "explained"
            break
        if it == max_iters:
            res.stop_reason = "max_iters"
            break
        inp = ProposerInput(TASK_DESCRIPTION, STATE_API, tuple(specs), demos_text(obs),
                            contrast_text(obs, fitted), obs)
        res.inputs.append(inp)
        candidates = proposer.propose(inp)
        checks = [validate(c, check_states, obs.layouts, specs) for c in candidates]
        valid = [c for c, v in zip(candidates, checks, strict=True) if v.ok]
        res.proposed += len(candidates)
        res.valid += len(valid)
        rec["proposals"] = [{"name": c.name, "hash": c.code_hash, "result": v.reason}
                            for c, v in zip(candidates, checks, strict=True)]
        if not valid:
            continue
        scored = [(fit_features([*specs, c], obs, l2), c) for c in valid]
        best_fit, best = max(scored, key=lambda fc: fc[0].fit.loglik)
        specs.append(best)
        fitted = best_fit
        rec["added"] = {"name": best.name, "hash": best.code_hash,
                        "loglik_gain": best_fit.fit.loglik - res.fitted.fit.loglik}
        rec["added_specs"] = [best]
        res.fitted = fitted
    res.fitted, res.specs = fitted, specs
    return res
