"""Distractors inside the workspace: movable clutter around the blocks, look-alikes of the named block next to it,
look-alikes of the fixtures (drawer handle, button, switch, LED) and a small jitter of the static camera.

:func:`apply` adds them for a level of :mod:`ivm_ros_sim.calvin.distractors`; :func:`begin_subtask` keeps them right
as a chain goes on (look-alikes follow the block the new subtask names, and anything lying in the new subtask's
keep-out is moved to a free spot). Nothing is ever placed inside :func:`task_keep_out`: the mechanisms' swept
volumes, the volumes the scripted expert's fingers use to reach the handle, button and switch, a box around every
block and, when the task is known, the path the task moves its block along (a push's corridor, the way to the drawer
for push_into_drawer). Every candidate spot is also checked for contact with the table, the robot, the blocks and the
other distractors (1 mm clearance). All draws come from the generator handed to :func:`apply` (and one generator
derived from it for the chain's later subtasks), so a seed fixes the scene.

Units: metres, radians, kilograms.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pybullet as p
import pybullet_data
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.scene import BLOCKS, CalvinScene

Box = tuple[np.ndarray, np.ndarray]  # (min xyz, max xyz), m

#: Table-top region for workspace distractors (x/y box, surface z) in scene D; the cabinet, the mechanisms and the
#: blocks are cut out of it by :func:`task_keep_out` and the contact check.
TABLE_TOP = (np.array([-0.43, -0.165]), np.array([0.43, 0.0]), 0.46)
#: The cabinet's top, behind the sliding door's upper edge (for the LED look-alike).
CABINET_TOP = (np.array([-0.40, 0.160]), np.array([0.20, 0.170]), 0.649)
#: Where a distractor is parked when no free spot is left: the floor in front of the table.
FLOOR = (np.array([-0.55, -0.75]), np.array([0.55, -0.55]), 0.0)

#: Volumes the expert's fingers and hand use to reach the fixtures (scene D; they move with their mechanism in A-C):
#: the drawer handle from the front, the button from above, the switch from the front.
APPROACH = (
    ((0.02, -0.60, 0.28), (0.34, -0.17, 0.62), "base__drawer"),
    ((-0.17, -0.17, 0.44), (-0.07, -0.07, 0.62), "base__button"),
    ((0.18, -0.08, 0.51), (0.42, 0.20, 0.75), "base__switch"),
)
BLOCK_MARGIN = 0.06  # m: half size of the keep-out box around a block the task handles (fingers open around it)
OTHER_BLOCK_MARGIN = 0.03  # m: the same around the blocks it does not touch (only the arm passes over them)
#: Task kinds that may touch every block (the oracle accepts any block).
ANY_BLOCK_KINDS = ("stack_objects", "unstack_objects", "push_object_into", "place_object")
PUSH_REACH = 0.24  # m: a push's corridor along x from the block's centre (start behind it, 19 cm stroke)
PUSH_HALF_WIDTH = 0.05  # m: half width of the push corridor (block and closed fingers)
CLEARANCE = 0.001  # m: least gap between a placed distractor and any other body
PLACE_MARGIN = (0.01, 0.01, 0.002)  # m: keep-out boxes grow by this much while placing (settling stays out)
NEAR_RINGS = np.arange(0.06, 0.70, 0.02)  # m: distances from the named block a look-alike's spot is tried at
NEAR_STEP = 0.03  # m: spacing of the spots tried along a ring (at least 12 per ring)
#: Camera jitter bounds: each coordinate of the static camera's eye and target moves by at most this much (m).
JITTER_FROM, JITTER_AT = 0.02, 0.01

LOOKALIKE_KINDS = ("same", "other_colour", "other_shape")
#: Colours a look-alike of kind "other_colour" may take besides the other blocks' colours (rgba).
OTHER_COLOURS = ((0.0, 0.8, 0.0, 1.0), (1.0, 0.55, 0.0, 1.0), (1.0, 1.0, 0.0, 1.0), (0.55, 0.0, 1.0, 1.0))
#: Colours of clutter (none of them a block colour): greys, browns, greens, oranges, white.
CLUTTER_COLOURS = ((0.5, 0.5, 0.5, 1.0), (0.55, 0.35, 0.15, 1.0), (0.1, 0.6, 0.3, 1.0), (1.0, 0.6, 0.2, 1.0),
                   (0.95, 0.95, 0.95, 1.0), (0.2, 0.2, 0.25, 1.0), (0.6, 0.8, 0.2, 1.0))
CLUTTER_URDFS = (("duck_vhacd.urdf", 0.45), ("lego/lego.urdf", 1.2), ("jenga/jenga.urdf", 0.5),
                 ("cube_small.urdf", 0.7), ("objects/mug.urdf", 0.5))
FIXTURE_KINDS = ("handle", "button", "switch", "led")


@dataclasses.dataclass
class Workspace:
    """The workspace distractors of a scene's episode: their generator for later subtasks, the look-alikes (body ids
    and kinds), the block they copy, the other bodies (clutter and fixtures) and which of them are clutter."""

    rng: np.random.Generator
    lookalikes_on: bool
    lookalikes: list[int] = dataclasses.field(default_factory=list)
    kinds: list[str] = dataclasses.field(default_factory=list)
    target: str | None = None
    others: list[int] = dataclasses.field(default_factory=list)
    clutter: list[int] = dataclasses.field(default_factory=list)


def state(scene: CalvinScene) -> Workspace | None:
    """The scene's current :class:`Workspace` (None for levels without workspace distractors)."""
    return scene.__dict__.get("_workspace")


# ---------------------------------------------------------------------------------------------- keep-out
def task_keep_out(scene: CalvinScene, task: str | None = None) -> list[Box]:
    """Boxes no distractor may overlap: the mechanisms' (``distractors.keep_out``), the fixture approaches
    (:data:`APPROACH`), a box around every block up to 25 cm above it (half size :data:`BLOCK_MARGIN` for the blocks
    ``task`` may handle, :data:`OTHER_BLOCK_MARGIN` for the others and for every block when ``task`` is None), and
    ``task``'s own path: a push's corridor (:data:`PUSH_REACH` along x on the pushing side, :data:`PUSH_HALF_WIDTH`
    across) and push_into_drawer's way from each block to the table's front edge."""
    from ivm_ros_sim.calvin.distractors import keep_out  # distractors imports this module

    boxes = keep_out(scene)
    for lo, hi, joint in APPROACH:
        dx = np.array([scene.offsets[joint], 0.0, 0.0])
        boxes.append((np.array(lo) + dx, np.array(hi) + dx))
    kind, *args = T.check_task(task) if task is not None else (None,)
    handled = BLOCKS if kind in ANY_BLOCK_KINDS else (T.target_block(task),) if task is not None else ()
    for b in BLOCKS:
        pos, m = scene.block_pose(b)[0], BLOCK_MARGIN if b in handled else OTHER_BLOCK_MARGIN
        boxes.append((pos - [m, m, 0.05], pos + [m, m, 0.25]))
    if kind == "push_object":
        pos, sign = scene.block_pose(args[0])[0], np.sign(args[1])
        far = pos[0] + sign * PUSH_REACH
        boxes.append((np.array([min(pos[0], far), pos[1] - PUSH_HALF_WIDTH, pos[2] - 0.05]),
                      np.array([max(pos[0], far), pos[1] + PUSH_HALF_WIDTH, pos[2] + 0.25])))
    if kind == "push_object_into":
        for b in BLOCKS:
            pos = scene.block_pose(b)[0]
            boxes.append((np.array([pos[0] - 0.07, -0.6, 0.28]), np.array([pos[0] + 0.07, pos[1], pos[2] + 0.25])))
    return boxes


def overlaps(body: int, boxes: list[Box], client: int, margin: float | tuple[float, ...] = 0.0) -> bool:
    """Whether ``body``'s axis-aligned bounding box overlaps any of ``boxes`` grown by ``margin`` (m, or per axis)."""
    lo, hi = (np.array(v) for v in p.getAABB(body, -1, physicsClientId=client))
    margin = np.asarray(margin)
    return any((lo < bhi + margin).all() and (hi > blo - margin).all() for blo, bhi in boxes)


def _touches(scene: CalvinScene, body: int, others: list[int]) -> bool:
    """Whether ``body`` is within :data:`CLEARANCE` of the table, robot, a block or one of ``others``."""
    c = scene.client
    for other in [scene.table, scene.robot, *scene.blocks.values(), *others]:
        if other != body and p.getClosestPoints(body, other, CLEARANCE, physicsClientId=c):
            return True
    return False


def _try_spot(scene: CalvinScene, body: int, xy: np.ndarray, z: float, yaw: float, boxes: list[Box],
              others: list[int]) -> bool:
    """Puts ``body`` at ``xy`` with its bottom 2 mm above ``z`` (m) and ``yaw`` (rad); whether the spot is free
    (no keep-out box within :data:`PLACE_MARGIN`, nothing within :data:`CLEARANCE`)."""
    c = scene.client
    orn = p.getQuaternionFromEuler([0.0, 0.0, yaw])
    p.resetBasePositionAndOrientation(body, [float(xy[0]), float(xy[1]), z + 1.0], orn, physicsClientId=c)
    bottom = p.getAABB(body, -1, physicsClientId=c)[0][2]
    p.resetBasePositionAndOrientation(body, [float(xy[0]), float(xy[1]), z + 1.0 - bottom + z + 0.002], orn,
                                      physicsClientId=c)
    p.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0], physicsClientId=c)
    return not overlaps(body, boxes, c, PLACE_MARGIN) and not _touches(scene, body, others)


def place(scene: CalvinScene, body: int, rng: np.random.Generator, regions: list[tuple[np.ndarray, np.ndarray, float]],
          boxes: list[Box], others: list[int], tries: int = 60, yaw: float | None = None) -> bool:
    """Moves ``body`` (resting on its bottom; ``yaw`` rad, random when None) to a random spot in one of ``regions``
    (x/y box, surface z) that overlaps no keep-out box and touches nothing. Returns False (body left where it was)
    when none of ``tries`` spots is free."""
    c = scene.client
    start = p.getBasePositionAndOrientation(body, physicsClientId=c)
    for _ in range(tries):
        lo, hi, z = regions[int(rng.integers(len(regions)))]
        xy = rng.uniform(lo, hi)
        if _try_spot(scene, body, xy, z, float(rng.uniform(-np.pi, np.pi)) if yaw is None else yaw, boxes, others):
            return True
    p.resetBasePositionAndOrientation(body, *start, physicsClientId=c)
    return False


def place_near(scene: CalvinScene, body: int, rng: np.random.Generator, near: np.ndarray, boxes: list[Box],
               others: list[int]) -> bool:
    """Moves ``body`` to the free table-top spot closest to ``near`` (x, y): rings of :data:`NEAR_RINGS` around it,
    spots :data:`NEAR_STEP` apart from a random start angle, random yaw. False (body left where it was) if none."""
    c = scene.client
    start = p.getBasePositionAndOrientation(body, physicsClientId=c)
    lo, hi, z = TABLE_TOP
    for d in NEAR_RINGS:
        a0 = float(rng.uniform(0.0, 2 * np.pi))
        n = max(12, int(np.ceil(2 * np.pi * d / NEAR_STEP)))
        for a in a0 + np.arange(n) * 2 * np.pi / n:
            xy = np.asarray(near) + d * np.array([np.cos(a), np.sin(a)])
            if (xy >= lo).all() and (xy <= hi).all() and _try_spot(
                    scene, body, xy, z, float(rng.uniform(-np.pi, np.pi)), boxes, others):
                return True
    p.resetBasePositionAndOrientation(body, *start, physicsClientId=c)
    return False


def _table_regions(scene: CalvinScene) -> list[tuple[np.ndarray, np.ndarray, float]]:
    lo, hi, z = TABLE_TOP
    return [(lo, hi, z)]


# ---------------------------------------------------------------------------------------------- bodies
def primitive(scene: CalvinScene, kind: str, dims: tuple[float, ...], rgba: tuple[float, ...], mass: float) -> int:
    """A box (half extents), upright cylinder (radius, height) or sphere (radius) body far below the floor."""
    c = scene.client
    if kind == "box":
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=dims, rgbaColor=rgba, physicsClientId=c)
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=dims, physicsClientId=c)
    elif kind == "cylinder":
        vis = p.createVisualShape(p.GEOM_CYLINDER, radius=dims[0], length=dims[1], rgbaColor=rgba, physicsClientId=c)
        col = p.createCollisionShape(p.GEOM_CYLINDER, radius=dims[0], height=dims[1], physicsClientId=c)
    else:
        vis = p.createVisualShape(p.GEOM_SPHERE, radius=dims[0], rgbaColor=rgba, physicsClientId=c)
        col = p.createCollisionShape(p.GEOM_SPHERE, radius=dims[0], physicsClientId=c)
    return p.createMultiBody(mass, col, vis, [0.0, 0.0, -5.0], physicsClientId=c)


def _compound(scene: CalvinScene, parts: list[tuple[tuple[float, float, float], tuple[float, float, float]]],
              rgba: tuple[float, ...]) -> int:
    """A static body of boxes: ``parts`` = [(half extents, centre offset)], all in one colour."""
    c = scene.client
    half, offs = [list(h) for h, _ in parts], [list(o) for _, o in parts]
    n = len(parts)
    vis = p.createVisualShapeArray([p.GEOM_BOX] * n, halfExtents=half, visualFramePositions=offs,
                                   rgbaColors=[list(rgba)] * n, physicsClientId=c)
    col = p.createCollisionShapeArray([p.GEOM_BOX] * n, halfExtents=half, collisionFramePositions=offs,
                                      physicsClientId=c)
    return p.createMultiBody(0.0, col, vis, [0.0, 0.0, -5.0], physicsClientId=c)


def block_colour(scene: CalvinScene, block: str) -> tuple[float, ...]:
    """The block's rgba as its URDF draws it."""
    return tuple(p.getVisualShapeData(scene.blocks[block], physicsClientId=scene.client)[0][7])


def lookalike(scene: CalvinScene, target: str, kind: str, rng: np.random.Generator) -> int:
    """A movable look-alike of block ``target`` (0.1 kg): ``same`` (same size box, same colour), ``other_colour``
    (same size box, another block's colour or one of :data:`OTHER_COLOURS`) or ``other_shape`` (the block's colour,
    an upright cylinder as tall as the block, diameter its shorter side)."""
    size, rgba = scene.block_size[target], block_colour(scene, target)
    if kind == "other_shape":
        return primitive(scene, "cylinder", (float(min(size[:2])) / 2, float(size[2])), rgba, 0.1)
    if kind == "other_colour":
        options = [block_colour(scene, b) for b in BLOCKS if b != target] + list(OTHER_COLOURS)
        rgba = options[int(rng.integers(len(options)))]
    elif kind != "same":
        raise ValueError(f"unknown look-alike kind {kind!r}; valid: {', '.join(LOOKALIKE_KINDS)}")
    return primitive(scene, "box", tuple(float(v) / 2 for v in size), rgba, 0.1)


def clutter_item(scene: CalvinScene, rng: np.random.Generator) -> int:
    """One movable clutter object at most 5 cm tall: a box or upright cylinder in a non-block colour, or a scaled
    pybullet_data object (duck, lego brick, jenga piece, small cube, mug)."""
    c = scene.client
    if rng.random() < 0.5:
        name, scale = CLUTTER_URDFS[int(rng.integers(len(CLUTTER_URDFS)))]
        return p.loadURDF(str(Path(pybullet_data.getDataPath()) / name), [0.0, 0.0, -5.0], globalScaling=scale,
                          physicsClientId=c)
    rgba = CLUTTER_COLOURS[int(rng.integers(len(CLUTTER_COLOURS)))]
    if rng.random() < 0.5:
        dims = tuple(float(v) for v in rng.uniform([0.01, 0.01, 0.008], [0.03, 0.02, 0.02]))
        return primitive(scene, "box", dims, rgba, 0.05)
    return primitive(scene, "cylinder", (float(rng.uniform(0.01, 0.02)), float(rng.uniform(0.02, 0.05))), rgba, 0.05)


def fixture_lookalike(scene: CalvinScene, kind: str, rng: np.random.Generator) -> int:
    """A static look-alike of a fixture: ``handle`` (dark grey bar on two posts, like the drawer's), ``button``
    (black disc), ``switch`` (grey lever bar on a post), ``led`` (flat bar, green like the lit LED or white)."""
    if kind == "handle":
        return _compound(scene, [((0.07, 0.008, 0.008), (0.0, 0.0, 0.03)), ((0.008, 0.008, 0.015), (-0.06, 0.0, 0.007)),
                                 ((0.008, 0.008, 0.015), (0.06, 0.0, 0.007))], (0.3, 0.3, 0.33, 1.0))
    if kind == "switch":
        return _compound(scene, [((0.035, 0.01, 0.008), (0.0, 0.0, 0.035)), ((0.008, 0.008, 0.02), (0.0, 0.0, 0.01))],
                         (0.4, 0.4, 0.4, 1.0))
    if kind == "button":
        return primitive(scene, "cylinder", (0.03, 0.02), (0.0, 0.0, 0.0, 1.0), 0.0)
    if kind == "led":
        rgba = (0.0, 1.0, 0.0, 1.0) if rng.random() < 0.5 else (1.0, 1.0, 1.0, 1.0)
        return primitive(scene, "box", (0.06, 0.0045, 0.011), rgba, 0.0)
    raise ValueError(f"unknown fixture kind {kind!r}; valid: {', '.join(FIXTURE_KINDS)}")


# ---------------------------------------------------------------------------------------------- camera
def restore_camera(scene: CalvinScene) -> None:
    """Puts the static camera back where the scene's YAML has it (undoes :func:`jitter_camera`)."""
    base = scene.__dict__.get("_static_camera")
    if base is not None:
        scene.cameras["static"] = base


@contextmanager
def unjittered_camera(scene: CalvinScene) -> Iterator[None]:
    """Inside, the static camera stands where the scene's YAML has it; a jitter (:func:`jitter_camera`) is put back
    on leaving. A diagnostic (``CalvinSceneEnv(distraction_cameras="none")``)."""
    jittered = scene.cameras["static"]
    restore_camera(scene)
    try:
        yield
    finally:
        scene.cameras["static"] = jittered


def jitter_camera(scene: CalvinScene, rng: np.random.Generator) -> np.ndarray:
    """Moves the static camera's eye by up to :data:`JITTER_FROM` and its target by up to :data:`JITTER_AT` per
    coordinate (m), from its YAML pose. Returns the (6,) offsets (eye xyz, target xyz)."""
    base = scene.__dict__.setdefault("_static_camera", scene.cameras["static"])
    d = rng.uniform(-1.0, 1.0, 6) * np.repeat([JITTER_FROM, JITTER_AT], 3)
    scene.cameras["static"] = dataclasses.replace(
        base, look_from=tuple(float(v) for v in np.array(base.look_from) + d[:3]),
        look_at=tuple(float(v) for v in np.array(base.look_at) + d[3:]))
    return d


# ---------------------------------------------------------------------------------------------- levels
def _park(scene: CalvinScene, body: int, rng: np.random.Generator, others: list[int]) -> None:
    """Moves ``body`` to the floor in front of the table (when no workspace spot is free)."""
    place(scene, body, rng, [FLOOR], task_keep_out(scene), others, tries=200)


def add_lookalikes(scene: CalvinScene, ws: Workspace, target: str, boxes: list[Box], others: list[int]) -> list[int]:
    """One look-alike of each kind of :data:`LOOKALIKE_KINDS` of ``target``, each on the table top as close to the
    target as the keep-out allows (the target's own box is :data:`BLOCK_MARGIN` wide). Records them in ``ws``."""
    near = scene.block_pose(target)[0][:2]
    new: list[int] = []
    for kind in LOOKALIKE_KINDS:
        body = lookalike(scene, target, kind, ws.rng)
        if not place_near(scene, body, ws.rng, near, boxes, others + new):
            _park(scene, body, ws.rng, others + new)
        new.append(body)
    ws.lookalikes, ws.kinds, ws.target = new, list(LOOKALIKE_KINDS), target
    return new


def apply(scene: CalvinScene, n_clutter: int, lookalikes: bool, fixtures: bool, jitter: bool,
          rng: np.random.Generator, existing: list[int], task: str | None = None, copies: int = 0) -> list[int]:
    """Adds the workspace distractors of a level: camera jitter, the four fixture look-alikes (handle, button,
    switch on the table top; the LED's on the cabinet top), ``n_clutter`` movable clutter objects on the table top,
    and, with ``lookalikes``, three look-alikes of the block ``task`` names (of a random block when ``task`` is None
    or names none, e.g. a chain's start; :func:`begin_subtask` moves them). ``copies``: that many exact copies (same
    size and colour) of every block, movable and placed among the clutter (they stay when the named block changes).
    ``existing``: distractor bodies already in the scene. Returns the new body ids. A distractor with no free spot
    left goes to the floor."""
    ws = Workspace(np.random.default_rng(int(rng.integers(2**63))), lookalikes)
    scene.__dict__["_workspace"] = ws
    if jitter:
        jitter_camera(scene, rng)
    boxes, table = task_keep_out(scene, task), _table_regions(scene)
    new: list[int] = []
    if fixtures:
        for kind in FIXTURE_KINDS:
            body = fixture_lookalike(scene, kind, rng)
            regions, yaw = ([CABINET_TOP], 0.0) if kind == "led" else (table, None)  # the LED's bar runs along x
            if not place(scene, body, rng, regions, boxes, existing + new, yaw=yaw):
                _park(scene, body, rng, existing + new)
            new.append(body)
    if lookalikes:
        target = T.target_block(task) if task else None
        target = target or BLOCKS[int(rng.integers(len(BLOCKS)))]
        new += add_lookalikes(scene, ws, target, boxes, existing + new)
    def loose_items() -> Iterator[int]:  # made lazily: each is placed before the next draws from ``rng``
        for _ in range(copies):
            for block in BLOCKS:
                yield lookalike(scene, block, "same", rng)
        for _ in range(n_clutter):
            yield clutter_item(scene, rng)

    loose: list[int] = []
    for body in loose_items():
        if not place(scene, body, rng, table, boxes, existing + new):
            _park(scene, body, rng, existing + new)
        new.append(body)
        loose.append(body)
    ws.others = [b for b in new if b not in ws.lookalikes]
    ws.clutter = loose
    return new


def begin_subtask(scene: CalvinScene, bodies: list[int], task: str) -> list[int]:
    """Readies the workspace distractors for ``task`` within a chain: look-alikes are rebuilt next to the block
    ``task`` names (kept when it names none or the same block; clutter in their way moves), and every workspace
    distractor now inside :func:`task_keep_out` for ``task`` (moved there by the previous subtask or in ``task``'s
    path) or touching a look-alike goes to a free spot. ``bodies``: all distractor bodies of the scene. Returns them
    updated (removed look-alikes replaced)."""
    ws = state(scene)
    if ws is None:
        return bodies
    c = scene.client
    boxes = task_keep_out(scene, task)
    target = T.target_block(task)
    if ws.lookalikes_on and target is not None and target != ws.target:
        for body in ws.lookalikes:
            p.removeBody(body, physicsClientId=c)
        bodies = [b for b in bodies if b not in ws.lookalikes]
        bodies = bodies + add_lookalikes(scene, ws, target, boxes, [b for b in bodies if b not in ws.clutter])
    for body in ws.others + ws.lookalikes:
        if overlaps(body, boxes, c) or (body in ws.clutter and _touches(scene, body, ws.lookalikes)):
            rest = [b for b in bodies if b != body]
            if not place(scene, body, ws.rng, _table_regions(scene), boxes, rest):
                _park(scene, body, ws.rng, rest)
    return bodies
