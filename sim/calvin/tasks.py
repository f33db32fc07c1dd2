"""CALVIN's 34 tasks: definitions from eval/new_playtable_tasks.yaml, a success oracle that compares a start and
a current :class:`SceneState`, evaluation sentences and training paraphrases.

The oracle follows the behaviour of the official calvin_env oracle (``Tasks`` with
``conf/tasks/new_playtable_tasks.yaml``), checked against it on recorded state pairs
(``test/sim/calvin/test_fidelity_oracle.py``); it is our own code. Contacts are PyBullet contact points of a
block (or of the robot) in that state, taken per body or per (body, link) pair; the robot is one body.

* ``rotate_object(obj, deg)``: the relative rotation end * start^-1 as extrinsic xyz euler angles has
  ``|deg| < z < 180`` degrees in the sign of ``deg`` (positive = left / counter-clockwise seen from above) and
  ``|x|, |y| < 30``; the block moved at most 10 cm and at the end touches some body other than the robot (it
  rests on something: a carried block is not rotated).
* ``push_object(obj, dx, dy)``: the block moved more than ``|dx|`` along x (or ``|dy|`` along y) in that sign;
  its (body, link) contacts other than the robot are non-empty at start and at the end, and every one of the
  start is still there at the end. The robot may still touch the block.
* ``lift_object(obj, dz, body, link)``: at start the block touches ``(body, link)``; now it is more than ``dz``
  higher and touches the robot and no other body.
* ``place_object(body, link)``: at start the robot touches exactly one body, a block that touches only the
  robot; now the robot does not touch that block and the block touches ``(body, link)``.
* ``stack_objects``: some block touches no block at start (no grasp needed); at the end it touches at least one
  block and nothing but blocks (not the robot, not the table), every velocity component below 1 (m/s, rad/s).
* ``unstack_objects``: some block touches at least one block and nothing but blocks at start, every velocity
  component below 1 then, and touches no block at the end (the robot may hold it).
* ``toggle_light(light, a, b)``: the light was ``a`` and now is ``b``.
* ``move_door_rel(joint, d)``: the joint moved by more than ``|d|`` in the sign of ``d``.
* ``push_object_into(objs, src_body, src_link, dst_body, dst_link)``: for some block, its only (body, link)
  contact at start is ``(src_body, src_link)`` (so the robot does not touch it then) and at the end it touches
  ``(dst_body, dst_link)`` (the robot may touch it then).

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
    """What the oracle needs: ``scene_obs`` (24,) float64; per block name the set of named contacts
    ``{(body, link)}`` with body in {"table", "robot", "plane", block names, "other"} (robot links are
    "finger"/"arm"); per block its velocity (6,) (linear m/s, then angular rad/s; zero when absent); the bodies
    the robot touches (None: the blocks whose contacts name the robot)."""

    scene_obs: np.ndarray
    contacts: dict[str, set[tuple[str, str]]]
    velocities: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    robot_contacts: set[str] | None = None

    def block_pos(self, name: str) -> np.ndarray:
        i = 6 + 6 * BLOCK_SLOT[name]
        return self.scene_obs[i:i + 3]

    def block_euler(self, name: str) -> np.ndarray:
        i = 9 + 6 * BLOCK_SLOT[name]
        return self.scene_obs[i:i + 3]

    def touches(self, name: str, body: str, link: str | None = None) -> bool:
        return any(b == body and (link is None or lk == link) for b, lk in self.contacts.get(name, ()))

    def bodies(self, name: str) -> set[str]:
        """The bodies block ``name`` touches."""
        return {b for b, _ in self.contacts.get(name, ())}

    def robot_touches(self) -> set[str]:
        """The bodies the robot touches."""
        if self.robot_contacts is not None:
            return set(self.robot_contacts)
        return {b for b in BLOCKS if self.touches(b, "robot")}

    def slow(self, name: str, limit: float = 1.0) -> bool:
        """Every linear and angular velocity component of block ``name`` is below ``limit``."""
        return bool(np.all(np.abs(self.velocities.get(name, np.zeros(6))) < limit))

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
def _rotated(start: SceneState, now: SceneState, obj: str, deg: float) -> bool:
    rel = Rotation.from_euler("xyz", now.block_euler(obj)) * Rotation.from_euler("xyz", start.block_euler(obj)).inv()
    x, y, z = rel.as_euler("xyz", degrees=True)
    if np.linalg.norm(now.block_pos(obj) - start.block_pos(obj)) > 0.1 or not now.bodies(obj) - {"robot"}:
        return False
    turned = deg < z < 180.0 if deg > 0 else deg > z > -180.0
    return bool(turned and abs(x) < 30.0 and abs(y) < 30.0)


def _pushed(start: SceneState, now: SceneState, obj: str, dx: float, dy: float) -> bool:
    c0 = {c for c in start.contacts.get(obj, ()) if c[0] != "robot"}
    c1 = {c for c in now.contacts.get(obj, ()) if c[0] != "robot"}
    if not (c0 and c1 and c0 <= c1):
        return False
    moved = now.block_pos(obj) - start.block_pos(obj)
    axis, d = (0, dx) if dx else (1, dy)
    return bool(moved[axis] * np.sign(d) > abs(d))


def _lifted(start: SceneState, now: SceneState, obj: str, dz: float, body: str, link: str | None) -> bool:
    rise = now.block_pos(obj)[2] - start.block_pos(obj)[2]
    surface = body is None or start.touches(obj, body, link)
    return bool(rise > dz and now.bodies(obj) == {"robot"} and surface)


def _placed(start: SceneState, now: SceneState, body: str, link: str | None) -> bool:
    held = start.robot_touches()
    if len(held) != 1:
        return False
    (obj,) = held
    return (obj in BLOCKS and obj not in now.robot_touches() and start.bodies(obj) == {"robot"}
            and now.touches(obj, body, link))


def _stacked(start: SceneState, now: SceneState) -> bool:
    blocks = set(BLOCKS)
    return any(not start.bodies(a) & blocks and now.bodies(a) & blocks and now.bodies(a) <= blocks
               and now.slow(a) for a in BLOCKS)


def _unstacked(start: SceneState, now: SceneState) -> bool:
    blocks = set(BLOCKS)
    return any(start.bodies(a) & blocks and start.bodies(a) <= blocks and not now.bodies(a) & blocks
               and start.slow(a) for a in BLOCKS)


def _rests_on(state: SceneState, top: str, bottom: str) -> bool:
    """``top`` touches ``bottom`` with its centre at least 2 cm higher (the unstack mask, the chains' symbolic
    "stacked")."""
    return state.touches(top, bottom) and state.block_pos(top)[2] > state.block_pos(bottom)[2] + 0.02


def success(task: str, start: SceneState, now: SceneState) -> bool:
    """True when ``task`` is achieved going from ``start`` to ``now`` (ValueError for an unknown task)."""
    kind, *args = check_task(task)
    s0, s1 = start.scene_obs, now.scene_obs
    if kind == "rotate_object":
        return _rotated(start, now, *args)
    if kind == "push_object":
        return _pushed(start, now, *args)
    if kind == "lift_object":
        obj, dz, body, link = (*args, None, None)[:4]
        return _lifted(start, now, obj, dz, body, link)
    if kind == "place_object":
        body, link = (*args, None)[:2]
        return _placed(start, now, body, link)
    if kind == "stack_objects":
        return _stacked(start, now)
    if kind == "unstack_objects":
        return _unstacked(start, now)
    if kind == "toggle_light":
        light, a, b = args
        return round(s0[LIGHT_SLOT[light]]) == a and round(s1[LIGHT_SLOT[light]]) == b
    if kind == "move_door_rel":
        joint, d = args
        return bool((s1[JOINT_SLOT[joint]] - s0[JOINT_SLOT[joint]]) * np.sign(d) > abs(d))
    if kind == "push_object_into":
        objs, src_body, src_link, dst_body, dst_link = args
        return any(start.contacts.get(o, set()) == {(src_body, src_link)} and now.touches(o, dst_body, dst_link)
                   for o in objs)
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
