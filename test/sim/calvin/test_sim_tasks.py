"""The task oracle on constructed states (no physics), and the language tables."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from ivm_ros_sim.calvin import tasks as T
from scipy.spatial.transform import Rotation

TABLE = ("table", "base_link")
FINGER = ("robot", "finger")


def state(contacts: dict | None = None, **changes) -> T.SceneState:
    """Default: everything closed/off, blocks on the table top at known places."""
    s = np.zeros(24)
    for i, x in enumerate((0.05, 0.15, 0.25)):
        s[6 + 6 * i: 9 + 6 * i] = [x, -0.1, 0.48]
    for key, value in changes.items():
        kind, name = key.split("__", 1) if "__" in key else (key, "")
        if kind == "joint":
            s[T.JOINT_SLOT["base__" + name]] = value
        elif kind == "light":
            s[T.LIGHT_SLOT[name]] = value
        elif kind == "pos":
            s[6 + 6 * T.BLOCK_SLOT["block_" + name]: 9 + 6 * T.BLOCK_SLOT["block_" + name]] = value
        elif kind == "euler":
            s[9 + 6 * T.BLOCK_SLOT["block_" + name]: 12 + 6 * T.BLOCK_SLOT["block_" + name]] = value
    default = {b: {TABLE} for b in T.BLOCKS}
    return T.SceneState(s, {**default, **(contacts or {})})


def test_tables():
    tasks = T.all_tasks()
    assert len(tasks) == 34 and len(set(tasks)) == 34
    sentences = T.eval_sentences()
    assert set(sentences) == set(tasks)
    for t in tasks:
        train, held = T.paraphrases(t, "train"), T.paraphrases(t, "heldout")
        assert len(train) >= 3 and len(held) == 1
        assert held[0] not in train and sentences[t] not in train + held
        assert T.instruction(t) == sentences[t]
    assert {T.family(t) for t in tasks} == {"rotate", "push", "lift", "place", "stack", "unstack", "slider",
                                            "drawer", "lightbulb", "led", "push_into_drawer"}
    with pytest.raises(ValueError, match="unknown task"):
        T.success("fly", state(), state())
    with pytest.raises(ValueError):
        T.paraphrases("open_drawer", "test")


def test_rotate():
    start = state()
    left = state(euler__red=[0, 0, np.deg2rad(70)])
    assert T.success("rotate_red_block_left", start, left)
    assert not T.success("rotate_red_block_right", start, left)
    assert not T.success("rotate_red_block_left", start, state(euler__red=[0, 0, np.deg2rad(50)]))
    assert not T.success("rotate_blue_block_left", start, left)  # wrong block
    assert T.success("rotate_pink_block_right", start, state(euler__pink=[0, 0, np.deg2rad(-65)]))
    tilted = Rotation.from_euler("xyz", [np.deg2rad(45), 0, np.deg2rad(70)]).as_euler("xyz")
    assert not T.success("rotate_red_block_left", start, state(euler__red=tilted))
    # yaw measured relative to the start orientation, across the +-pi wrap
    assert T.success("rotate_blue_block_left", state(euler__blue=[0, 0, 3.0]), state(euler__blue=[0, 0, -2.0]))


def test_rotate_needs_the_block_resting_near_where_it_was():
    """Official rules: moved at most 10 cm, and at the end touching something besides the robot."""
    start, turned = state(), [0, 0, np.deg2rad(70)]
    assert T.success("rotate_red_block_left", start, state(euler__red=turned, pos__red=[0.13, -0.1, 0.48]))
    assert not T.success("rotate_red_block_left", start, state(euler__red=turned, pos__red=[0.17, -0.1, 0.48]))
    carried = state({"block_red": {FINGER}}, euler__red=turned, pos__red=[0.05, -0.1, 0.5])
    assert not T.success("rotate_red_block_left", start, carried)
    held_on_table = state({"block_red": {FINGER, TABLE}}, euler__red=turned)
    assert T.success("rotate_red_block_left", start, held_on_table)


def test_push():
    start = state()
    assert T.success("push_red_block_right", start, state(pos__red=[0.17, -0.1, 0.48]))
    assert not T.success("push_red_block_left", start, state(pos__red=[0.17, -0.1, 0.48]))
    assert not T.success("push_red_block_right", start, state(pos__red=[0.12, -0.1, 0.48]))  # 7 cm only
    held = state({"block_red": {FINGER}}, pos__red=[0.17, -0.1, 0.55])
    assert not T.success("push_red_block_right", start, held)  # carried, not pushed
    assert T.success("push_pink_block_left", start, state(pos__pink=[0.1, -0.1, 0.48]))


def test_push_is_done_while_the_robot_still_touches_the_block():
    """Official rules: the robot may still touch the block; what it touched besides the robot at start must all
    still be touched at the end."""
    start, pushed = state(), [0.17, -0.1, 0.48]
    assert T.success("push_red_block_right", start, state(pos__red=pushed))
    for link in ("finger", "arm"):
        touching = state({"block_red": {TABLE, ("robot", link)}}, pos__red=pushed)
        assert T.success("push_red_block_right", start, touching), link
    on_blue = state({"block_red": {TABLE, ("block_blue", "base_link")}})
    assert not T.success("push_red_block_right", on_blue, state(pos__red=pushed))  # lost the blue block
    assert T.success("push_red_block_right", state(), state({"block_red": {TABLE, ("block_blue", "base_link")}},
                                                            pos__red=pushed))  # gained one


def test_lift():
    start = state()
    up = state({"block_blue": {FINGER}}, pos__blue=[0.15, -0.1, 0.56])
    assert T.success("lift_blue_block_table", start, up)
    assert not T.success("lift_blue_block_slider", start, up)  # it did not start in the slider
    assert not T.success("lift_blue_block_table", start, state({"block_blue": {FINGER, TABLE}}))  # not lifted
    dropped = state(pos__blue=[0.15, -0.1, 0.56], contacts={"block_blue": set()})
    assert not T.success("lift_blue_block_table", start, dropped)  # in the air but not held
    in_drawer = state({"block_red": {("table", "drawer_link")}})
    assert T.success("lift_red_block_drawer", in_drawer, state({"block_red": {FINGER}}, pos__red=[0.05, -0.1, 0.6]))
    also_blue = state({"block_blue": {FINGER, ("block_red", "base_link")}}, pos__blue=[0.15, -0.1, 0.56])
    assert not T.success("lift_blue_block_table", start, also_blue)  # touches the robot and another body


def test_place_stack_unstack():
    holding = state({"block_pink": {FINGER}}, pos__pink=[0.2, -0.2, 0.6])
    in_drawer = state({"block_pink": {("table", "drawer_link")}}, pos__pink=[0.2, -0.3, 0.36])
    assert T.success("place_in_drawer", holding, in_drawer)
    assert not T.success("place_in_slider", holding, in_drawer)
    assert not T.success("place_in_drawer", state(), in_drawer)  # nothing was held
    on_red = state({"block_pink": {("block_red", "base_link")}, "block_red": {TABLE,
                   ("block_pink", "base_link")}}, pos__pink=[0.05, -0.1, 0.525])
    assert T.success("stack_block", holding, on_red)
    assert T.success("stack_block", state(), on_red)  # no grasp needed at the start
    assert not T.success("stack_block", holding, holding)
    assert T.success("unstack_block", on_red, state())
    assert not T.success("unstack_block", state(), state())
    assert not T.success("unstack_block", on_red, on_red)
    spinning = dataclasses.replace(on_red, velocities={"block_pink": np.array([0, 0, 0, 0, 0, 1.5])})
    assert not T.success("stack_block", holding, spinning) and not T.success("unstack_block", spinning, state())
    slow = dataclasses.replace(on_red, velocities={"block_pink": np.array([0.9, 0, 0, 0, 0, -0.9])})
    assert T.success("stack_block", holding, slow) and T.success("unstack_block", slow, state())


def test_place_needs_the_robot_touching_only_the_block_it_holds():
    holding = state({"block_pink": {FINGER}}, pos__pink=[0.2, -0.2, 0.6])
    in_slider = state({"block_pink": {("table", "plank_link")}})
    assert T.success("place_in_slider", holding, in_slider)
    also_table = dataclasses.replace(holding, robot_contacts={"block_pink", "table"})
    assert not T.success("place_in_slider", also_table, in_slider)
    pink_on_blue = state({"block_pink": {FINGER, ("block_blue", "base_link")}})
    assert not T.success("place_in_slider", pink_on_blue, in_slider)  # the held block touched another too
    still_held = state({"block_pink": {FINGER, ("table", "plank_link")}})
    assert not T.success("place_in_slider", holding, still_held)


def test_doors_and_lights():
    closed = state()
    assert T.success("open_drawer", closed, state(joint__drawer=0.15))
    assert not T.success("open_drawer", closed, state(joint__drawer=0.1))
    assert T.success("close_drawer", state(joint__drawer=0.2), closed)
    assert T.success("move_slider_left", closed, state(joint__slide=0.2))
    assert not T.success("move_slider_right", closed, state(joint__slide=0.2))
    assert T.success("move_slider_right", state(joint__slide=0.28), state(joint__slide=0.1))
    assert T.success("turn_on_lightbulb", closed, state(light__lightbulb=1))
    assert not T.success("turn_off_lightbulb", closed, state(light__lightbulb=1))
    assert T.success("turn_off_led", state(light__led=1), closed)
    assert not T.success("turn_on_led", state(light__led=1), state(light__led=1))


def test_push_into_drawer():
    start = state()
    inside = state({"block_blue": {("table", "drawer_link")}}, pos__blue=[0.15, -0.3, 0.36])
    assert T.success("push_into_drawer", start, inside)
    assert not T.success("push_into_drawer", start, start)
    held_inside = state({"block_blue": {("table", "drawer_link"), FINGER}})
    assert T.success("push_into_drawer", start, held_inside)  # official: the robot may touch it at the end
    touched = state({"block_blue": {TABLE, FINGER}})
    assert not T.success("push_into_drawer", touched, inside)  # at the start only the table top may touch it
