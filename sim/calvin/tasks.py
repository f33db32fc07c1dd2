"""CALVIN's 34 tasks: definitions from eval/new_playtable_tasks.yaml, a success oracle that compares a start and
a current :class:`SceneState`, evaluation sentences and training paraphrases.

The oracle is our own reading of the documented task signatures (written without CALVIN's code):

* ``rotate_object(obj, deg)``: the block turned about world z by more than ``|deg|`` in the sign of ``deg``
  (positive = left / counter-clockwise seen from above) while tilting less than 30 degrees about x and y.
* ``push_object(obj, dx, dy)``: the block moved more than ``|dx|`` along x in the sign of ``dx`` and touches the
  table top (``base_link``) at start and end and not the robot at the end.
* ``lift_object(obj, dz, body, link)``: at start the block touches ``link``; now it is more than ``dz`` higher,
  touches the robot's fingers and no longer touches ``link``.
* ``place_object(body, link)``: at start some block touches the fingers and not ``link``; now that block touches
  ``link`` and not the robot.
* ``stack_objects``: at start a block touches the fingers and no other block; now it rests on another block
  (touching it and above it) and does not touch the robot.
* ``unstack_objects``: at start a block rests on another block (touching it, centre at least 2 cm higher); now
  the two do not touch (the removed block may still be held).
* ``toggle_light(light, a, b)``: the light was ``a`` and now is ``b``.
* ``move_door_rel(joint, d)``: the joint moved by more than ``|d|`` in the sign of ``d``.
* ``push_object_into(objs, src_body, src_link, dst_body, dst_link)``: some block touched ``src_link`` at start
  and now touches ``dst_link`` and not the robot.

Paraphrase split: every task has one evaluation sentence (the CALVIN validation sentence) and several training
paraphrases; the last paraphrase in each list is held out (``split="heldout"``) for testing language
generalisation; ``split="train"`` gives the others. The evaluation sentence is never a training paraphrase.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

import numpy as np
import yaml
from ivm_ros_sim.calvin.scene import BLOCKS, JOINTS, LIGHTS, shared_dir
from scipy.spatial.transform import Rotation

COLORS = ("red", "blue", "pink")
BLOCK_SLOT = {name: i for i, name in enumerate(BLOCKS)}
JOINT_SLOT = {name: i for i, name in enumerate(JOINTS)}
LIGHT_SLOT = {name: 4 + i for i, name in enumerate(LIGHTS)}


@dataclasses.dataclass
class SceneState:
    """What the oracle needs: ``scene_obs`` (24,) float64 and, per block name, the set of named contacts
    ``{(body, link)}`` with body in {"table", "robot", block names, "other"}; robot links are "finger"/"arm"."""

    scene_obs: np.ndarray
    contacts: dict[str, set[tuple[str, str]]]

    def block_pos(self, name: str) -> np.ndarray:
        i = 6 + 6 * BLOCK_SLOT[name]
        return self.scene_obs[i:i + 3]

    def block_euler(self, name: str) -> np.ndarray:
        i = 9 + 6 * BLOCK_SLOT[name]
        return self.scene_obs[i:i + 3]

    def touches(self, name: str, body: str, link: str | None = None) -> bool:
        return any(b == body and (link is None or lk == link) for b, lk in self.contacts.get(name, ()))

    def grasped(self, name: str) -> bool:
        return self.touches(name, "robot", "finger")


@lru_cache(maxsize=1)
def task_table() -> dict[str, list[Any]]:
    """Task name -> [kind, *args] exactly as in eval/new_playtable_tasks.yaml (34 entries)."""
    with open(shared_dir() / "eval/new_playtable_tasks.yaml") as f:
        return dict(yaml.safe_load(f)["tasks"])


@lru_cache(maxsize=1)
def eval_sentences() -> dict[str, str]:
    """Task name -> the CALVIN evaluation sentence (eval/new_playtable_validation.yaml)."""
    with open(shared_dir() / "eval/new_playtable_validation.yaml") as f:
        return {k: v[0] for k, v in yaml.safe_load(f).items()}


def all_tasks() -> list[str]:
    """The 34 task names in file order."""
    return list(task_table())


def check_task(task: str) -> list[Any]:
    """The task's definition; ValueError naming the valid tasks for an unknown name."""
    table = task_table()
    if task not in table:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(table)}")
    return table[task]


def family(task: str) -> str:
    """Coarse family for reporting: rotate, push, lift, place, stack, unstack, slider, drawer, lightbulb, led,
    push_into_drawer."""
    check_task(task)
    for prefix, fam in (("rotate", "rotate"), ("push_into", "push_into_drawer"), ("push", "push"),
                        ("lift", "lift"), ("place", "place"), ("stack", "stack"), ("unstack", "unstack"),
                        ("move_slider", "slider"), ("open_drawer", "drawer"), ("close_drawer", "drawer")):
        if task.startswith(prefix):
            return fam
    return "lightbulb" if "lightbulb" in task else "led"


def target_block(task: str) -> str | None:
    """The block a block-specific task names (e.g. "block_red"), else None."""
    for color in COLORS:
        if f"_{color}_" in f"_{task}_":
            return f"block_{color}"
    return None


# ---------------------------------------------------------------------------------------------- oracle
def _yaw_change(start: np.ndarray, now: np.ndarray) -> tuple[float, float]:
    """(rotation about world z, tilt) in degrees between two xyz euler orientations."""
    r0 = Rotation.from_euler("xyz", start)
    r1 = Rotation.from_euler("xyz", now)
    rel = r1 * r0.inv()  # world-frame rotation taking start to now
    z_axis = rel.apply([0.0, 0.0, 1.0])
    tilt = float(np.degrees(np.arccos(np.clip(z_axis[2], -1.0, 1.0))))
    rv = rel.as_rotvec()
    return float(np.degrees(rv[2])), tilt


def _rests_on(state: SceneState, top: str, bottom: str) -> bool:
    return state.touches(top, bottom) and state.block_pos(top)[2] > state.block_pos(bottom)[2] + 0.02


def success(task: str, start: SceneState, now: SceneState) -> bool:
    """True when ``task`` is achieved going from ``start`` to ``now`` (ValueError for an unknown task)."""
    kind, *args = check_task(task)
    s0, s1 = start.scene_obs, now.scene_obs
    if kind == "rotate_object":
        obj, deg = args
        yaw, tilt = _yaw_change(start.block_euler(obj), now.block_euler(obj))
        return tilt < 30.0 and yaw * np.sign(deg) > abs(deg)
    if kind == "push_object":
        obj, dx, _ = args
        moved = (now.block_pos(obj) - start.block_pos(obj))[0]
        on_table = start.touches(obj, "table", "base_link") and now.touches(obj, "table", "base_link")
        return on_table and moved * np.sign(dx) > abs(dx) and not now.touches(obj, "robot")
    if kind == "lift_object":
        obj, dz, body, link = args
        rise = now.block_pos(obj)[2] - start.block_pos(obj)[2]
        return (start.touches(obj, body, link) and rise > dz and now.grasped(obj)
                and not now.touches(obj, body, link))
    if kind == "place_object":
        body, link = args
        return any(start.grasped(b) and not start.touches(b, body, link) and now.touches(b, body, link)
                   and not now.touches(b, "robot") for b in BLOCKS)
    if kind == "stack_objects":
        return any(start.grasped(a) and not any(start.touches(a, o) for o in BLOCKS if o != a)
                   and any(_rests_on(now, a, o) for o in BLOCKS if o != a) and not now.touches(a, "robot")
                   for a in BLOCKS)
    if kind == "unstack_objects":
        return any(_rests_on(start, a, o) and not now.touches(a, o) for a in BLOCKS for o in BLOCKS if o != a)
    if kind == "toggle_light":
        light, a, b = args
        return round(s0[LIGHT_SLOT[light]]) == a and round(s1[LIGHT_SLOT[light]]) == b
    if kind == "move_door_rel":
        joint, d = args
        return (s1[JOINT_SLOT[joint]] - s0[JOINT_SLOT[joint]]) * np.sign(d) > abs(d)
    if kind == "push_object_into":
        objs, _, src_link, _, dst_link = args
        return any(start.touches(o, "table", src_link) and now.touches(o, "table", dst_link)
                   and not now.touches(o, "robot") for o in objs)
    raise ValueError(f"task {task!r} has unsupported kind {kind!r}")


# ---------------------------------------------------------------------------------------------- language
_BLOCK_TEMPLATES = {
    "rotate_object_left": ["rotate the {c} block to the left", "turn the {c} block counterclockwise",
                           "twist the {c} block left", "spin the {c} block to the left a bit",
                           "grab the {c} block and turn it leftwards"],
    "rotate_object_right": ["rotate the {c} block to the right", "turn the {c} block clockwise",
                            "twist the {c} block right", "spin the {c} block to the right a bit",
                            "grab the {c} block and turn it rightwards"],
    "push_object_left": ["push the {c} block to the left", "slide the {c} block leftwards",
                         "nudge the {c} block left", "shove the {c} block towards the left",
                         "move the {c} block to the left by pushing it"],
    "push_object_right": ["push the {c} block to the right", "slide the {c} block rightwards",
                          "nudge the {c} block right", "shove the {c} block towards the right",
                          "move the {c} block to the right by pushing it"],
    "lift_table": ["pick up the {c} block", "lift the {c} block off the table", "raise the {c} block",
                   "grab the {c} block and lift it up", "take the {c} block up from the table"],
    "lift_slider": ["pick up the {c} block from the sliding cabinet", "take the {c} block out of the cabinet",
                    "lift the {c} block in the sliding cabinet", "grab the {c} block from the cupboard shelf",
                    "remove the {c} block from the sliding cabinet"],
    "lift_drawer": ["pick up the {c} block from the drawer", "lift the {c} block out of the drawer",
                    "grab the {c} block inside the drawer", "take the {c} block out of the open drawer",
                    "retrieve the {c} block from the drawer"],
}
_FIXED_PARAPHRASES = {
    "move_slider_left": ["slide the door to the left", "move the sliding door left", "shift the cabinet door left",
                         "open the sliding door towards the left", "push the slider to the left"],
    "move_slider_right": ["slide the door to the right", "move the sliding door right",
                          "shift the cabinet door right", "close the sliding door towards the right",
                          "push the slider to the right"],
    "open_drawer": ["open the drawer", "pull the drawer open", "pull out the drawer", "slide the drawer open",
                    "grab the drawer handle and pull"],
    "close_drawer": ["close the drawer", "push the drawer shut", "push in the drawer", "slide the drawer closed",
                     "shut the drawer"],
    "place_in_slider": ["put the block in the sliding cabinet", "place the held block into the cabinet",
                        "drop the block onto the cabinet shelf", "set the block down inside the sliding cabinet",
                        "store the block in the cupboard"],
    "place_in_drawer": ["put the block in the drawer", "place the held block into the drawer",
                        "drop the block into the drawer", "set the block down inside the drawer",
                        "store the block in the open drawer"],
    "stack_block": ["stack the block on another block", "put the held block on top of another block",
                    "place the block onto the other block", "build a tower with the block", "stack the blocks"],
    "unstack_block": ["take the top block off the stack", "unstack the blocks", "remove the block from the tower",
                      "take the block off the other block", "break up the stack"],
    "turn_on_lightbulb": ["turn on the light bulb", "switch the lamp on", "move the switch to light the bulb",
                          "make the yellow light come on", "flip the switch so the bulb lights up"],
    "turn_off_lightbulb": ["turn off the light bulb", "switch the lamp off", "move the switch to darken the bulb",
                           "make the yellow light go out", "flip the switch so the bulb goes dark"],
    "turn_on_led": ["turn on the green light", "press the button to switch the led on", "push the button",
                    "light up the led", "press the black button so the green lamp turns on"],
    "turn_off_led": ["turn off the green light", "press the button to switch the led off",
                     "push the button to turn the led off", "make the led go dark",
                     "press the black button so the green lamp turns off"],
    "push_into_drawer": ["push the block into the drawer", "slide the block off the table into the drawer",
                         "shove the block so it drops into the drawer", "nudge the block into the open drawer",
                         "sweep the block into the drawer"],
}


def paraphrases(task: str, split: str = "train") -> list[str]:
    """Training paraphrases (``split="train"``), the held-out one (``"heldout"``), or ``"all"``."""
    kind, *args = check_task(task)
    if task in _FIXED_PARAPHRASES:
        items = _FIXED_PARAPHRASES[task]
    else:
        color = target_block(task).split("_")[1]
        if kind in ("rotate_object", "push_object"):
            side = "left" if (args[1] > 0 if kind == "rotate_object" else args[1] < 0) else "right"
            key = f"{kind}_{side}"
        else:
            key = "lift_" + task.rsplit("_", 1)[1]
        items = [t.format(c=color) for t in _BLOCK_TEMPLATES[key]]
    if split == "train":
        return list(items[:-1])
    if split == "heldout":
        return [items[-1]]
    if split == "all":
        return list(items)
    raise ValueError(f"split must be 'train', 'heldout' or 'all', got {split!r}")


def instruction(task: str, rng: np.random.Generator | None = None, split: str = "eval") -> str:
    """The evaluation sentence (``split="eval"``) or a random paraphrase from ``split``."""
    check_task(task)
    if split == "eval":
        return eval_sentences()[task]
    options = paraphrases(task, split)
    return options[int((rng or np.random.default_rng()).integers(len(options)))]
