"""The symbolic world of CALVIN's chains: where each block is, the doors and the lights, read from the simulator;
which of the 34 tasks can run from there; and start states built from a symbolic description.

A symbolic state is a dict with the keys of the official chains' ``initial_state`` (``led``, ``lightbulb``: 0/1;
``slider``: "left"/"right" (where the sliding door is); ``drawer``: "open"/"closed"; ``red_block``,
``blue_block``, ``pink_block``: "table", "slider_left", "slider_right", "drawer", "grasped", "stacked" or "other";
``grasped``: 0 or the held block's colour). The task rules are our reading of the tasks' documented meaning
(not CALVIN code): a block in one half of the sliding cabinet can be taken only while the door covers the other
half; place_in_slider puts the held block in the uncovered half when it is free; a block with another on top is
not lifted, pushed or rotated; push_into_drawer needs the drawer open and a free block on the table.

:func:`random_chain_start` draws a start like the official chains' (the same slots: two on the table, one in each
cabinet half; blocks' yaw random), with optional jitter for training data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.scene import BLOCKS

COLORS = ("red", "blue", "pink")
#: Official chain start slots in scene D (x, y, z of the block centre), from eval_sequences.jsonl.
TABLE_SLOTS = ((0.05, -0.12, 0.46), (0.23, -0.12, 0.46))
SLIDER_SLOTS = {"slider_left": (-0.241, 0.092, 0.461), "slider_right": (0.07, 0.092, 0.461)}
#: Official chain start values of the articulations (scene_obs[0:6]) per symbolic value.
SLIDER_Q = {"right": 0.0, "left": 0.28}
DRAWER_Q = {"closed": 0.0, "open": 0.22}
SWITCH_Q = {0: 0.0, 1: 0.088}
#: The robot's start in every official chain (robot_obs (15,)).
ROBOT_START = (0.02586889, -0.2313129, 0.5712808, 3.09045411, -0.02908596, 1.50013585, 0.07999963, -1.21779124,
               1.03987629, 2.11978254, -2.34205014, -0.87015899, 1.64119093, 0.55344928, 1.0)


def _block_key(color: str) -> str:
    return f"{color}_block"


def free_on_table(sym: dict[str, Any], color: str) -> bool:
    """The block is on the table top with nothing on it."""
    return sym[_block_key(color)] == "table" and not sym.get(f"{color}_covered", False)


def feasible(sym: dict[str, Any], task: str) -> bool:
    """Whether ``task`` can be done from symbolic state ``sym`` (see the module docstring)."""
    kind, *args = T.check_task(task)
    held = sym["grasped"]
    target = T.target_block(task)
    color = target.split("_")[1] if target else None
    uncovered = "slider_right" if sym["slider"] == "left" else "slider_left"
    if kind in ("rotate_object", "push_object"):
        return not held and free_on_table(sym, color)
    if kind == "lift_object":
        where = {"base_link": "table", "plank_link": uncovered, "drawer_link": "drawer"}[args[3]]
        if not held and args[3] == "base_link":
            return free_on_table(sym, color)
        return not held and sym[_block_key(color)] == where and (where != "drawer" or sym["drawer"] == "open")
    if kind == "place_object":
        if args[1] == "drawer_link":
            return bool(held) and sym["drawer"] == "open"
        return bool(held) and all(sym[_block_key(c)] != uncovered for c in COLORS)
    if kind == "stack_objects":
        return bool(held) and any(free_on_table(sym, c) for c in COLORS if c != held)
    if kind == "unstack_objects":
        return not held and any(sym[_block_key(c)] == "stacked" for c in COLORS)
    if kind == "toggle_light":
        return sym[args[0]] == args[1]
    if kind == "move_door_rel":
        if args[0] == "base__drawer":
            return sym["drawer"] == ("closed" if args[1] > 0 else "open")
        return sym["slider"] == ("right" if args[1] > 0 else "left")
    if kind == "push_object_into":
        return not held and sym["drawer"] == "open" and any(free_on_table(sym, c) for c in COLORS)
    raise ValueError(f"task {task!r} has unsupported kind {kind!r}")


def feasible_tasks(sym: dict[str, Any]) -> list[str]:
    """The tasks that can run from ``sym``, in file order."""
    return [t for t in T.all_tasks() if feasible(sym, t)]


def read_state(env: Any) -> dict[str, Any]:
    """The symbolic state of a :class:`~ivm_ros_sim.calvin.env.CalvinSceneEnv` now (from its state and contacts)."""
    state = env.state()
    s = state.scene_obs
    upper = env.scene.joint_upper
    sym: dict[str, Any] = {"led": int(round(s[5])), "lightbulb": int(round(s[4])),
                           "slider": "left" if s[0] > upper["base__slide"] / 2 else "right",
                           "drawer": "open" if s[1] > 0.12 else "closed", "grasped": 0}
    plank_x = env.scene.link_position("plank_link")[0]
    for name, color in zip(BLOCKS, COLORS):
        where = "other"
        below = [b for b in BLOCKS if b != name and T._rests_on(state, name, b)]
        if state.touches(name, "robot", "finger") and not state.touches(name, "table"):
            where, sym["grasped"] = "grasped", color
        elif below:
            where = "stacked"
            sym[f"{below[0].split('_')[1]}_covered"] = True
        elif state.touches(name, "table", "drawer_link"):
            where = "drawer"
        elif state.touches(name, "table", "plank_link"):
            where = "slider_left" if state.block_pos(name)[0] < plank_x else "slider_right"
        elif state.touches(name, "table", "base_link"):
            where = "table"
        sym[_block_key(color)] = where
    return sym


def random_chain_start(rng: np.random.Generator) -> dict[str, Any]:
    """A symbolic start like the official chains': lights, door and drawer at random, one block per cabinet half
    at most, the others on the table, nothing held."""
    sym: dict[str, Any] = {"led": int(rng.integers(2)), "lightbulb": int(rng.integers(2)),
                           "slider": str(rng.choice(["left", "right"])), "drawer": str(rng.choice(["open", "closed"])),
                           "grasped": 0}
    slots = ["table", "table", "slider_left", "slider_right"]
    rng.shuffle(slots)
    for color, where in zip(COLORS, slots[:3]):
        sym[_block_key(color)] = where
    return sym


def start_state(sym: dict[str, Any], rng: np.random.Generator, jitter: float = 0.0,
                offsets: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(robot_obs (15,), scene_obs (24,)) for a symbolic start: the official slots (table slots in random order),
    yaw uniform in [-pi, pi), positions jittered uniformly by +-``jitter`` m in x and y. ``offsets``: x shifts of
    the table slots ("table") and cabinet slots ("plank") in scenes other than D (see ``CalvinScene.offsets``)."""
    off = offsets or {}
    s = np.zeros(24)
    s[0], s[1], s[3] = SLIDER_Q[sym["slider"]], DRAWER_Q[sym["drawer"]], SWITCH_Q[sym["lightbulb"]]
    s[4], s[5] = float(sym["lightbulb"]), float(sym["led"])
    table = list(TABLE_SLOTS)
    rng.shuffle(table)
    for i, color in enumerate(COLORS):
        where = sym[_block_key(color)]
        if where == "table":
            x, y, z = table.pop()
            x += off.get("table", 0.0)
        elif where in SLIDER_SLOTS:
            x, y, z = SLIDER_SLOTS[where]
            x += off.get("plank", 0.0)
        else:
            raise ValueError(f"a start puts blocks on the table or in the cabinet, not {where!r}")
        xy = np.array([x, y]) + (rng.uniform(-jitter, jitter, 2) if jitter else 0.0)
        s[6 + 6 * i: 12 + 6 * i] = [xy[0], xy[1], z, 0.0, 0.0, rng.uniform(-np.pi, np.pi)]
    return np.array(ROBOT_START), s
