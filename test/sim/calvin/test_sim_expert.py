"""The scripted expert on a small batch: every required task family, clean and under large distraction."""

from __future__ import annotations

import pytest
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.expert import rollout

CORE = ["rotate_red_block_left", "rotate_pink_block_right", "push_blue_block_right", "push_red_block_left",
        "lift_pink_block_table", "lift_red_block_drawer", "open_drawer", "close_drawer", "move_slider_left",
        "move_slider_right", "turn_on_lightbulb", "turn_off_lightbulb", "turn_on_led", "turn_off_led"]


def test_expert_clean(fast_env):
    results = {t: rollout(fast_env, t, seed=11, max_steps=360) for t in CORE}
    failed = [t for t, ep in results.items() if not ep.success]
    assert not failed, failed
    assert all(ep.steps < 360 for ep in results.values())


@pytest.mark.parametrize("task", ["lift_blue_block_table", "open_drawer", "move_slider_right", "turn_on_lightbulb"])
def test_expert_large_distraction(fast_env, task):
    assert sum(rollout(fast_env, task, seed=s, distraction="large").success for s in range(2)) == 2


def test_composite_tasks(fast_env):
    for task in ("place_in_drawer", "stack_block", "unstack_block", "push_into_drawer"):
        assert rollout(fast_env, task, seed=3).success, task


def test_idle_policy_fails(fast_env):
    """The oracle does not hand out success for doing nothing."""
    fast_env.reset(seed=0, task="open_drawer")
    for _ in range(20):
        _, _, done, _, info = fast_env.step([0, 0, 0, 0, 0, 0, 1.0])
    assert not done and not info["success"] and not fast_env.check_success()
    assert T.family(fast_env.task) == "drawer"
