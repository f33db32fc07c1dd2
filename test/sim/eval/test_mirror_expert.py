"""The mirror expert (privileged expert for another simulator's CALVIN env) driven through CALVIN's interface with
observations only: our own env plays the other env, the mirror sees only ``robot_obs`` / ``scene_obs``."""

from __future__ import annotations

import numpy as np
import pytest
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.chains import load_chains
from ivm_ros_sim.eval.mirror_expert import MirrorExpert, teleported
from ivm_ros_sim.eval.protocol import EP_LEN


def _official_obs(obs: dict[str, np.ndarray]) -> dict:
    """Only what the official env gives a model besides images, in its layout (images left out)."""
    return {"rgb_obs": {}, "robot_obs": obs["robot_obs"].copy(), "scene_obs": obs["scene_obs"].copy()}


def _first_subtask(world, mirror: MirrorExpert, chain) -> tuple[bool, int]:
    """CALVIN's rollout of the chain's first subtask: reset, model.reset(), step until the oracle says done."""
    obs, _ = world.reset_to_state(chain.robot_obs, chain.scene_obs)
    mirror.reset()
    world.begin_subtask(chain.subtasks[0])
    for step in range(1, EP_LEN + 1):
        obs, _, done, _, _ = world.step(mirror.step(_official_obs(obs), T.eval_sentences()[chain.subtasks[0]]))
        if done:
            return True, step
    return False, EP_LEN


def test_mirror_solves_first_subtasks_from_observations_only(fast_env):
    mirror = MirrorExpert()
    try:
        chains = load_chains(4)
        outcomes = [_first_subtask(fast_env, mirror, c) for c in chains]
        assert all(ok for ok, _ in outcomes), outcomes
        assert all(n < 150 for _, n in outcomes), outcomes
        assert mirror.resyncs == len(chains)  # every chain start recognised, nothing else
        assert mirror.env is not fast_env
    finally:
        mirror.close()


def test_mirror_keeps_the_other_envs_target(fast_env):
    """The tracked target is the observed tcp at a chain start plus the sum of the actions sent; the world's own
    target (what its controller follows) is the same."""
    mirror = MirrorExpert()
    try:
        chain = load_chains(1)[0]
        obs, _ = fast_env.reset_to_state(chain.robot_obs, chain.scene_obs)
        goal = T.eval_sentences()[chain.subtasks[0]]
        for _ in range(20):
            a = mirror.step(_official_obs(obs), goal)
            obs, *_ = fast_env.step(a)
            assert a.shape == (7,) and a.dtype == np.float64 and a[6] in (-1.0, 1.0)
        np.testing.assert_allclose(mirror.target_pos, fast_env.target_pos, atol=1e-9)
        assert mirror.resyncs == 1
    finally:
        mirror.close()


def test_teleport_means_a_reset_and_motion_does_not():
    chain = load_chains(2)
    r0, s0 = chain[0].robot_obs, chain[0].scene_obs
    moved = r0.copy()
    moved[7:14] += 0.06  # within the 2 rad/s cap over one 30 Hz step
    assert not teleported(r0, s0, moved, s0)
    jumped = r0.copy()
    jumped[9] += 0.3
    assert teleported(r0, s0, jumped, s0)
    assert teleported(r0, s0, r0, chain[1].scene_obs)  # another chain's doors / blocks


def test_mirror_refuses_unknown_goals(fast_env):
    mirror = MirrorExpert(fast_env)
    obs, _ = fast_env.reset_to_state(load_chains(1)[0].robot_obs, load_chains(1)[0].scene_obs)
    with pytest.raises(ValueError, match="evaluation sentences"):
        mirror.step(obs, "do a dance")
