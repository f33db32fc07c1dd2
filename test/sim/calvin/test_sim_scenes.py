"""CALVIN's four scenes: each its own table, blocks and mechanism positions (x shifts against scene D), and the
symbolic chain states: a symbolic start built in any scene reads back the same."""

from __future__ import annotations

import numpy as np
import pytest
from ivm_ros_sim.calvin import symbolic as S
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.scene import SCENES, scene_offsets


def test_offsets_follow_the_tables():
    assert set(scene_offsets("D").values()) == {0.0}
    b = scene_offsets("B")
    assert b["base__switch"] == pytest.approx(-0.62) and b["base__button"] == pytest.approx(0.4)  # mirrored
    assert scene_offsets("A")["table"] == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="valid scenes: A, B, C, D"):
        scene_offsets("E")


@pytest.mark.parametrize("scene", SCENES)
def test_each_scene_builds_and_reads_back_its_symbolic_start(scene):
    env = CalvinSceneEnv(64, 32, render=False, scene=scene)
    try:
        assert env.scene.name == scene
        d_switch_x = 0.375 * 0.8  # the switch's joint origin in scene D's table, scaled
        assert env.scene.link_position("switch_link")[0] == pytest.approx(
            d_switch_x + env.scene.offsets["base__switch"], abs=0.05)
        rng = np.random.default_rng(3)
        for _ in range(3):
            sym = S.random_chain_start(rng)
            off = {"table": env.scene.offsets["table"], "plank": env.scene.offsets["base__plank"]}
            env.reset_to_state(*S.start_state(sym, rng, jitter=0.01, offsets=off))
            for _ in range(15):  # blocks settle onto their surfaces
                env.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))
            assert S.read_state(env) == sym
            assert set(S.feasible_tasks(sym)) <= set(T.all_tasks()) and S.feasible_tasks(sym)
    finally:
        env.close()


def test_feasibility_rules():
    sym = {"led": 1, "lightbulb": 0, "slider": "left", "drawer": "closed", "grasped": 0,
           "red_block": "slider_left", "blue_block": "table", "pink_block": "slider_right"}
    ok = set(S.feasible_tasks(sym))
    assert {"turn_off_led", "turn_on_lightbulb", "move_slider_right", "open_drawer", "lift_blue_block_table",
            "lift_pink_block_slider", "push_blue_block_left", "rotate_blue_block_right"} <= ok
    assert not ok & {"turn_on_led", "lift_red_block_slider", "place_in_slider", "push_into_drawer", "stack_block",
                     "unstack_block", "lift_blue_block_drawer", "close_drawer", "move_slider_left"}
    held = dict(sym, grasped="blue", blue_block="grasped", drawer="open")
    ok = set(S.feasible_tasks(held))
    assert {"place_in_drawer", "close_drawer"} <= ok and "place_in_slider" not in ok  # the open half is taken
    assert not any(t.startswith(("lift", "push", "rotate")) for t in ok)


def test_official_chain_starts_move_with_the_scene():
    from ivm_ros_sim.calvin.chains import load_chains, start_in_scene

    chain = load_chains(1)[0]  # red in the shelf's left half, blue on the table, pink in the right half
    r, s = start_in_scene(chain, scene_offsets("D"))
    assert (r == chain.robot_obs).all() and (s == chain.scene_obs).all()
    off = scene_offsets("B")
    _, s = start_in_scene(chain, off)
    np.testing.assert_allclose(s[[6, 12, 18]] - chain.scene_obs[[6, 12, 18]],
                               [off["base__plank"], off["table"], off["base__plank"]])
    np.testing.assert_array_equal(np.delete(s, [6, 12, 18]), np.delete(chain.scene_obs, [6, 12, 18]))
