"""Ground-truth instruction-relevant masks from PyBullet segmentation.

The rule (one line per task family): the mask covers every scene entity the instruction refers to, either by
name or as the thing to be manipulated, and nothing else:

* rotate / push / lift (from the table) a block: that block.
* lift a block from the sliding cabinet: that block + the sliding door (``slide_link``) + the shelf (``plank_link``).
* lift a block from the drawer: that block + the drawer (``drawer_link``, handle included).
* open / close the drawer: the drawer (its handle is part of ``drawer_link``).
* slider left / right: the sliding door with its handle (``slide_link``).
* place in the slider / drawer: the held block + the destination (door and shelf / drawer).
* stack: the held block + the other blocks (any of them can receive it); unstack: the two stacked blocks.
* lightbulb on / off: the switch (``switch_link``) + the bulb (``light_link``).
* LED on / off: the button (``button_link``) + the LED (``led_link``).
* push into the drawer: the block it pushes (the one on the table top nearest the drawer, as the expert picks)
  + the drawer.

Never in the mask: the robot, the table body, the floor and every distractor (including look-alikes of the task
objects). Occluded parts are not in the mask (it is what the camera sees).
"""

from __future__ import annotations

import numpy as np
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.scene import BLOCKS, CalvinScene, decode_segmentation

Part = tuple[int, int | None]  # (body id, link index or None for every link of the body)


def _held(state: T.SceneState) -> str | None:
    for b in BLOCKS:
        if state.grasped(b):
            return b
    return None


def relevant_parts(scene: CalvinScene, task: str, start: T.SceneState) -> list[Part]:
    """(body id, link index) pairs the mask covers for ``task``, given the episode's start state."""
    kind, *args = T.check_task(task)
    table, link = scene.table, scene.table_link
    block = T.target_block(task)
    parts: list[Part] = []
    if block is not None:
        parts.append((scene.blocks[block], None))
    fam = T.family(task)
    if kind == "lift_object" and args[3] == "plank_link":
        parts += [(table, link["slide_link"]), (table, link["plank_link"])]
    elif kind == "lift_object" and args[3] == "drawer_link":
        parts.append((table, link["drawer_link"]))
    elif fam == "drawer":
        parts.append((table, link["drawer_link"]))
    elif fam == "slider":
        parts.append((table, link["slide_link"]))
    elif kind == "place_object":
        held = _held(start)
        parts += [(scene.blocks[held], None)] if held else []
        parts += ([(table, link["drawer_link"])] if args[1] == "drawer_link"
                  else [(table, link["slide_link"]), (table, link["plank_link"])])
    elif kind == "stack_objects":
        parts += [(scene.blocks[b], None) for b in BLOCKS]
    elif kind == "unstack_objects":
        pairs = [(a, o) for a in BLOCKS for o in BLOCKS if a != o and T._rests_on(start, a, o)]
        if pairs:
            parts += [(scene.blocks[pairs[0][0]], None), (scene.blocks[pairs[0][1]], None)]
    elif fam == "lightbulb":
        parts += [(table, link["switch_link"]), (table, link["light_link"])]
    elif fam == "led":
        parts += [(table, link["button_link"]), (table, link["led_link"])]
    elif kind == "push_object_into":
        parts += [(scene.blocks[push_into_drawer_block(start)], None), (table, link["drawer_link"])]
    return parts


def push_into_drawer_block(state: T.SceneState) -> str:
    """The block a push-into-drawer episode is about: on the table top, nearest the drawer (smallest y)."""
    on_table = [b for b in BLOCKS if state.touches(b, "table", "base_link")] or list(BLOCKS)
    return min(on_table, key=lambda b: state.block_pos(b)[1])


def mask_from_segmentation(seg: np.ndarray, parts: list[Part]) -> np.ndarray:
    """(H, W) bool mask of the pixels whose (body, link) is in ``parts``; ``seg`` is a raw (H, W) int32
    PyBullet object+link segmentation image."""
    body, link = decode_segmentation(seg)
    out = np.zeros(seg.shape, dtype=bool)
    for b, lk in parts:
        hit = body == b
        if lk is not None:
            hit &= link == lk
        out |= hit
    return out


def gt_mask(env, camera: str = "static") -> np.ndarray:
    """Renders ``camera`` of an env (after reset) with segmentation and returns the task's (H, W) bool mask."""
    _, seg = env.scene.render(camera, segmentation=True)
    return mask_from_segmentation(seg, relevant_parts(env.scene, env.task, env.start_state))
