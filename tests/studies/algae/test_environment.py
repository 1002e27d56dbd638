"""Semantic gridworlds: Gymnasium API, layouts, text, the true reward."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lmlab.studies.algae.environment import (
    KINDS,
    SemanticGridEnv,
    random_layout,
    raw_observation,
    sample_reward,
    transition_matrix,
)
from lmlab.studies.algae.navigation import NavEnv, random_room, true_theta


@pytest.mark.parametrize("size", [7, 9, 12])
def test_layouts_and_gym_api(size):
    rng = np.random.default_rng(size)
    lay = random_layout(rng, size)
    assert lay.width == lay.height == size
    assert lay.kinds[lay.start[1]][lay.start[0]] == "floor"
    assert {k for row in lay.kinds for k in row} <= set(KINDS)
    env = SemanticGridEnv(lay, sample_reward(rng))
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert obs == lay.index(*lay.start) and info["state"]["x"] == lay.start[0]
    steps = 0
    while True:
        obs, _r, term, trunc, info = env.step(3)
        steps += 1
        if term or trunc:
            break
    assert steps == env.horizon == 2 * size


def test_transitions_are_stochastic_matrices_and_walls_block():
    lay = random_layout(np.random.default_rng(0), 7)
    for slip in (0.0, 0.2):
        P = transition_matrix(lay, slip)
        np.testing.assert_allclose(P.sum(-1), 1.0)
    P = transition_matrix(lay)
    corner = lay.index(0, 0)
    assert P[corner, 0, corner] == 1.0 and P[corner, 2, corner] == 1.0  # up, left: wall


def test_text_descriptions_are_stable():
    lay = random_layout(np.random.default_rng(5), 7)
    s = lay.index(*lay.goal)
    assert "(the goal)" in lay.describe_state(s)
    text = lay.describe_trajectory([lay.index(*lay.start), s, lay.index(*lay.start), s])
    assert text.count("the goal") == 1 and len(text.splitlines()) == 2  # ends at the goal
    grid = lay.render([s]).splitlines()
    assert len(grid) == 7 and all(len(row.split()) == 7 for row in grid)
    assert "S" in lay.render() and "G" in lay.render()


def test_true_reward_is_linear_in_true_features():
    rng = np.random.default_rng(3)
    lay = random_layout(rng, 8)
    rw = sample_reward(rng, with_rug=True)
    np.testing.assert_allclose(rw.state_rewards(lay), rw.features(lay) @ rw.theta)
    assert raw_observation(lay).shape == (64, 40)


def test_continuous_nav_env_gym_api():
    rng = np.random.default_rng(0)
    env = NavEnv(random_room(rng), true_theta(rng))
    check_env(env, skip_render_check=True)
