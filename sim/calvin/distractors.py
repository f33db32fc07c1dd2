"""Visual distraction: extra objects, table texture and lighting changes.

Levels (:data:`LEVELS`):

* ``none``: the clean CALVIN scene.
* ``small``: 3 extra objects.
* ``medium``: 6 extra objects, lighting change.
* ``large``: up to 10 extra objects of which about half are look-alikes of the task objects (red / blue / pink
  boxes and cubes of block size, a yellow ball like the bulb, a green bead like the LED), a different table
  texture and random lighting (direction, colour, ambient/diffuse strength). This is our stand-in for the IVM
  paper's "large distraction" setting (many unrelated and similar-looking objects around the workspace
  plus a changed background).

Objects are static (mass 0), so they never drift into the task, and they are placed only in zones the tasks
and the scripted expert do not use: the left table wing, the top of the cabinet, the right back corner and the
floor in front of the table, at least 11 cm from every block, and outside the swept volumes of the door, drawer,
switch and button (:data:`KEEP_OUT`). In scenes A-C the keep-out volumes and the cabinet-top zone move with
their mechanisms (:func:`keep_out`). Everything is drawn from the episode's random generator: a seed fixes it.

Workspace levels (:mod:`ivm_ros_sim.calvin.workspace_distractors`; pictures and details in
docs/distraction_levels.md):

* ``clutter``: 6 movable clutter objects (boxes, cylinders, small pybullet_data objects, at most 5 cm tall) on the
  table top between and around the blocks.
* ``lookalike``: 3 movable look-alikes of the block the (sub)task names, next to it: same colour and shape, other
  colour same shape, same colour other shape (a cylinder). In a chain they follow each subtask's named block.
* ``fixture_lookalike``: static look-alikes of the drawer handle, the button, the switch (table top) and the LED
  (cabinet top).
* ``appearance``: table texture, random lighting and a small jitter of the static camera (eye <= 2 cm, target
  <= 1 cm per coordinate).
* ``texture``, ``lighting``, ``camera_jitter``: ``appearance``'s three parts, each alone (to tell which of them costs
  a policy).
* ``paper-large``: all of the above plus 4 of ``large``'s static objects outside the workspace.
* ``paper-xlarge``: ``paper-large`` made harder for a policy trained with table retexturing (whose success
  ``paper-large`` lowered by only 16 %): 10 clutter objects, an exact copy of every block on the table top (beside
  the named block's three look-alikes) and ``large``'s 10 static objects outside the workspace. The table top holds
  only so much outside the keep-out: over chains 0-19 (first two subtasks) 5.8 of its 13 loose objects stay on the
  table (paper-large: 4.6 of 6), the rest wait on the floor.

None of them is ever placed inside the keep-out of the task objects' paths
(:func:`~ivm_ros_sim.calvin.workspace_distractors.task_keep_out`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
import pybullet as p
import pybullet_data
from ivm_ros_sim.calvin import workspace_distractors as ws
from ivm_ros_sim.calvin.scene import CalvinScene, RenderSettings, shared_dir


@dataclasses.dataclass(frozen=True)
class Level:
    """What a level adds: ``n_objects`` static objects outside the workspace (a ``lookalike_fraction`` of them
    coloured like the task objects), a table ``texture``, random ``lighting``; in the workspace ``clutter`` movable
    objects, ``lookalikes`` of the named block, ``fixtures`` look-alikes and a ``camera_jitter``."""

    n_objects: int
    lookalike_fraction: float
    texture: bool
    lighting: bool
    clutter: int = 0
    lookalikes: bool = False
    fixtures: bool = False
    camera_jitter: bool = False
    block_copies: int = 0

    @property
    def adds_objects(self) -> bool:
        """Whether the level puts bodies into the world (a level without any changes only what cameras see)."""
        return bool(self.n_objects or self.clutter or self.lookalikes or self.fixtures or self.block_copies)

    @property
    def workspace(self) -> bool:
        """Whether the level has distractors of :mod:`ivm_ros_sim.calvin.workspace_distractors`."""
        return bool(self.clutter or self.lookalikes or self.fixtures or self.camera_jitter or self.block_copies)


LEVELS: dict[str, Level] = {
    "none": Level(0, 0.0, False, False),
    "small": Level(3, 0.3, False, False),
    "medium": Level(6, 0.4, False, True),
    "large": Level(10, 0.5, True, True),
    "clutter": Level(0, 0.0, False, False, clutter=6),
    "lookalike": Level(0, 0.0, False, False, lookalikes=True),
    "fixture_lookalike": Level(0, 0.0, False, False, fixtures=True),
    "appearance": Level(0, 0.0, True, True, camera_jitter=True),
    "texture": Level(0, 0.0, True, False),
    "lighting": Level(0, 0.0, False, True),
    "camera_jitter": Level(0, 0.0, False, False, camera_jitter=True),
    "paper-large": Level(4, 0.5, True, True, clutter=6, lookalikes=True, fixtures=True, camera_jitter=True),
    "paper-xlarge": Level(10, 0.5, True, True, clutter=10, lookalikes=True, fixtures=True, camera_jitter=True,
                          block_copies=1),
}
#: The levels that existed before the workspace levels (their scenes are unchanged for a given seed).
OUTSIDE_LEVELS = ("none", "small", "medium", "large")

#: Placement zones (x/y box, surface z): free of the task areas (table front-right, drawer, slider, switch,
#: button) and of the expert's paths.
ZONES = (
    (np.array([-0.42, -0.17]), np.array([-0.24, -0.02]), 0.46),  # left table wing, beside the button
    (np.array([-0.36, 0.165]), np.array([0.18, 0.175]), 0.65),  # cabinet top, behind the door
    (np.array([0.38, -0.15]), np.array([0.43, 0.15]), 0.46),  # right edge of the table
    (np.array([-0.6, -0.75]), np.array([0.6, -0.5]), 0.0),  # floor in front of the table
)

#: Boxes (min xyz, max xyz) no distractor may overlap: the swept volumes of the door, drawer, switch and
#: button, and the robot's base.
KEEP_OUT = (
    ((-0.40, -0.07, 0.42), (0.20, 0.155, 0.70)),  # sliding door over its whole travel
    ((-0.06, -0.50, 0.28), (0.42, 0.07, 0.42)),  # drawer, open or closed
    ((0.22, -0.02, 0.47), (0.38, 0.17, 0.66)),  # switch
    ((-0.17, -0.17, 0.45), (-0.07, -0.07, 0.51)),  # button
    ((-0.52, -0.66, 0.0), (-0.16, -0.28, 0.45)),  # robot base
)
#: The table joint each KEEP_OUT box moves with in scenes A-C (None: fixed).
KEEP_OUT_JOINT = ("base__slide", "base__drawer", "base__switch", "base__button", None)


def keep_out(scene: CalvinScene) -> list[tuple[np.ndarray, np.ndarray]]:
    """:data:`KEEP_OUT` for ``scene``: each box shifted along x with its mechanism (scene D: as listed)."""
    out = []
    for (lo, hi), joint in zip(KEEP_OUT, KEEP_OUT_JOINT):
        dx = np.array([scene.offsets[joint] if joint else 0.0, 0.0, 0.0])
        out.append((np.array(lo) + dx, np.array(hi) + dx))
    return out

PYBULLET_OBJECTS = ("duck_vhacd.urdf", "teddy_vhacd.urdf", "soccerball.urdf", "lego/lego.urdf",
                    "sphere_small.urdf", "cube_small.urdf", "jenga/jenga.urdf", "objects/mug.urdf",
                    "random_urdfs/000/000.urdf", "random_urdfs/001/001.urdf", "random_urdfs/002/002.urdf",
                    "random_urdfs/003/003.urdf", "random_urdfs/004/004.urdf", "random_urdfs/006/006.urdf")

LOOKALIKES = (  # (shape, half extents or radius, rgba): coloured like the task objects
    ("box", (0.035, 0.025, 0.025), (1.0, 0.0, 0.0, 1.0)),
    ("box", (0.025, 0.025, 0.025), (0.0, 0.0, 1.0, 1.0)),
    ("box", (0.045, 0.025, 0.025), (1.0, 0.0, 1.0, 1.0)),
    ("box", (0.02, 0.02, 0.02), (0.9, 0.1, 0.1, 1.0)),
    ("cylinder", (0.02, 0.04), (0.1, 0.1, 0.9, 1.0)),
    ("sphere", (0.025,), (1.0, 1.0, 0.0, 1.0)),
    ("sphere", (0.015,), (0.0, 1.0, 0.0, 1.0)),
    ("box", (0.03, 0.03, 0.015), (0.95, 0.4, 0.8, 1.0)),
)


def check_level(level: str) -> Level:
    """The Level for a name; ValueError listing valid names otherwise."""
    if level not in LEVELS:
        raise ValueError(f"unknown distraction level {level!r}; valid: {', '.join(LEVELS)}")
    return LEVELS[level]


@cache
def _textures() -> tuple[str, ...]:
    table = sorted((shared_dir() / "data/calvin_table_D/textures").glob("*.png"))
    extra = [Path(pybullet_data.getDataPath()) / n for n in ("checker_blue.png", "tex256.png", "uvmap.png")]
    return tuple(str(t) for t in [*table, *extra] if t.exists())


@cache
def _table_texture() -> str:
    """The table body's own texture (``map_Kd`` of its base_link.mtl: dark_wood.png for scene D), which a clean
    level restores after a re-textured one."""
    meshes = shared_dir() / "data/calvin_table_D/meshes"
    for line in (meshes / "base_link.mtl").read_text().splitlines():
        if line.strip().startswith("map_Kd"):
            return str((meshes / line.split(maxsplit=1)[1].strip()).resolve())
    raise FileNotFoundError(f"no map_Kd texture in {meshes / 'base_link.mtl'}")


def _texture_id(scene: CalvinScene, path: str) -> int:
    """Loads a texture once per PyBullet client (textures are never freed, so do not reload per episode)."""
    cache = scene.__dict__.setdefault("_texture_cache", {})
    if path not in cache:
        cache[path] = p.loadTexture(path, physicsClientId=scene.client)
    return cache[path]


def _shape(scene: CalvinScene, kind: str, dims: tuple[float, ...], rgba: tuple[float, ...], pos: list[float],
           yaw: float) -> int:
    c = scene.client
    if kind == "box":
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=dims, rgbaColor=rgba, physicsClientId=c)
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=dims, physicsClientId=c)
        h = dims[2]
    elif kind == "cylinder":
        vis = p.createVisualShape(p.GEOM_CYLINDER, radius=dims[0], length=dims[1], rgbaColor=rgba, physicsClientId=c)
        col = p.createCollisionShape(p.GEOM_CYLINDER, radius=dims[0], height=dims[1], physicsClientId=c)
        h = dims[1] / 2
    else:
        vis = p.createVisualShape(p.GEOM_SPHERE, radius=dims[0], rgbaColor=rgba, physicsClientId=c)
        col = p.createCollisionShape(p.GEOM_SPHERE, radius=dims[0], physicsClientId=c)
        h = dims[0]
    return p.createMultiBody(0.0, col, vis, [pos[0], pos[1], pos[2] + h],
                             p.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=c)


def _urdf(scene: CalvinScene, name: str, pos: list[float], yaw: float, rng: np.random.Generator) -> int:
    c = scene.client
    scale = {"teddy_vhacd.urdf": 0.8, "duck_vhacd.urdf": 0.6, "soccerball.urdf": 0.08, "jenga/jenga.urdf": 0.8,
             "objects/mug.urdf": 0.7, "lego/lego.urdf": 1.2}.get(name, 0.7)
    body = p.loadURDF(str(Path(pybullet_data.getDataPath()) / name), [pos[0], pos[1], pos[2] + 0.5],
                      p.getQuaternionFromEuler([0, 0, yaw]), useFixedBase=True, globalScaling=scale,
                      physicsClientId=c)
    lo, _ = p.getAABB(body, -1, physicsClientId=c)  # rest its bottom on the surface
    p.resetBasePositionAndOrientation(body, [pos[0], pos[1], pos[2] + 0.5 - lo[2] + pos[2]],
                                      p.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=c)
    if rng.random() < 0.5:  # recolour some of them, sometimes in task colours
        rgba = LOOKALIKES[int(rng.integers(len(LOOKALIKES)))][2]
        p.changeVisualShape(body, -1, rgbaColor=rgba, physicsClientId=c)
    return body


def apply(scene: CalvinScene, level: str, rng: np.random.Generator, task: str | None = None) -> list[int]:
    """Adds the level's distractors to ``scene`` and sets its texture, lighting and camera. Returns the new body ids
    (the caller removes them before the next episode). Level ``none`` restores default texture, light and camera.
    ``task``: the episode's task when known (workspace levels put look-alikes next to the block it names and keep
    its path clear; a chain passes None and then :func:`begin_subtask` per subtask)."""
    spec = check_level(level)
    c = scene.client
    scene.render_settings = RenderSettings()
    ws.restore_camera(scene)
    scene.__dict__["_workspace"] = None
    if spec.texture:
        tex = _texture_id(scene, _textures()[int(rng.integers(len(_textures())))])
        p.changeVisualShape(scene.table, -1, textureUniqueId=tex, physicsClientId=c)
        scene.textured = True
        scene.__dict__["_texture"] = tex
    elif getattr(scene, "textured", False):
        tex = _texture_id(scene, _table_texture())
        p.changeVisualShape(scene.table, -1, textureUniqueId=tex, physicsClientId=c)
        scene.textured = False
    if spec.lighting:
        d = rng.uniform([-2.0, -2.0, 1.0], [2.0, 2.0, 3.0])
        scene.render_settings = RenderSettings(tuple(d), tuple(rng.uniform(0.7, 1.0, 3)), float(rng.uniform(0.3, 0.8)),
                                               float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.0, 0.3)))
    bodies: list[int] = []
    taken: list[np.ndarray] = []
    blocks = [scene.block_pose(b)[0][:2] for b in scene.blocks]  # keep clear of the task's blocks
    boxes = keep_out(scene)
    attempts = 0
    while len(bodies) < spec.n_objects and attempts < 30 * spec.n_objects:
        attempts += 1
        k = len(bodies)
        zone = int(rng.integers(len(ZONES))) if k >= 2 else k
        lo, hi, z = ZONES[zone]
        xy = rng.uniform(lo, hi) + [scene.offsets["base__slide"] if zone == 1 else 0.0, 0.0]  # cabinet top moves
        if any(np.linalg.norm(xy - t) < 0.07 for t in taken) or (
                z > 0.3 and any(np.linalg.norm(xy - b) < 0.11 for b in blocks)):
            continue
        yaw = float(rng.uniform(-np.pi, np.pi))
        pos = [float(xy[0]), float(xy[1]), float(z)]
        if rng.random() < spec.lookalike_fraction:
            kind, dims, rgba = LOOKALIKES[int(rng.integers(len(LOOKALIKES)))]
            body = _shape(scene, kind, dims, rgba, pos, yaw)
        else:
            body = _urdf(scene, PYBULLET_OBJECTS[int(rng.integers(len(PYBULLET_OBJECTS)))], pos, yaw, rng)
        lo3, hi3 = (np.array(v) for v in p.getAABB(body, -1, physicsClientId=c))
        if any((lo3 < khi).all() and (hi3 > klo).all() for klo, khi in boxes):
            p.removeBody(body, physicsClientId=c)  # would block a mechanism: try elsewhere
            continue
        taken.append(xy)
        bodies.append(body)
    if spec.workspace:
        bodies += ws.apply(scene, spec.clutter, spec.lookalikes, spec.fixtures, spec.camera_jitter, rng, bodies, task,
                           spec.block_copies)
    return bodies


@contextmanager
def plain_view(scene: CalvinScene) -> Iterator[None]:
    """Inside, ``scene`` renders with its own table texture and default light (a level's texture and lighting undone;
    objects and the static camera's jitter stay); both are put back on leaving. A diagnostic (the real world has no
    such switch): ``CalvinSceneEnv(distraction_cameras="static")`` renders the gripper camera this way."""
    settings, textured = scene.render_settings, getattr(scene, "textured", False)
    c = scene.client
    scene.render_settings = RenderSettings()
    if textured:
        p.changeVisualShape(scene.table, -1, textureUniqueId=_texture_id(scene, _table_texture()), physicsClientId=c)
    try:
        yield
    finally:
        scene.render_settings = settings
        if textured:
            p.changeVisualShape(scene.table, -1, textureUniqueId=scene.__dict__["_texture"], physicsClientId=c)


@contextmanager
def hidden_bodies(scene: CalvinScene, bodies: list[int]) -> Iterator[None]:
    """Inside, ``scene`` renders without ``bodies`` (each visual shape made fully transparent, which the tiny
    renderer draws as nothing); their colours are put back on leaving. Visual only: poses, collisions and physics
    are untouched. A diagnostic (the real world has no such switch): ``CalvinSceneEnv(distraction_cameras=
    "static-all")`` renders the gripper camera without the level's objects this way."""
    c = scene.client
    saved = []  # (body, link, index of the shape within its link, rgba): a link may hold shapes of several colours
    for body in bodies:
        shapes_of: dict[int, int] = {}
        for shape in p.getVisualShapeData(body, physicsClientId=c):
            link = int(shape[1])
            saved.append((body, link, shapes_of.get(link, 0), list(shape[7])))
            shapes_of[link] = shapes_of.get(link, 0) + 1
    for body, link, index, _ in saved:
        p.changeVisualShape(body, link, shapeIndex=index, rgbaColor=[1.0, 1.0, 1.0, 0.0], physicsClientId=c)
    try:
        yield
    finally:
        for body, link, index, rgba in saved:
            p.changeVisualShape(body, link, shapeIndex=index, rgbaColor=rgba, physicsClientId=c)


@contextmanager
def camera_view(scene: CalvinScene, camera: str, mode: str, bodies: list[int]) -> Iterator[None]:
    """Inside, ``camera`` ("static" or "gripper") renders what ``mode`` (``CalvinSceneEnv``'s ``distraction_cameras``)
    lets it see of the level whose objects are ``bodies``: everything ("both"; "static" and "static-all" for the
    static camera), the scene's own texture and light ("static"), nor the objects ("static-all"), nor the static
    camera's jitter ("none")."""
    if mode == "both" or (camera == "static" and mode != "none"):
        yield
        return
    with plain_view(scene):
        if mode == "static":
            yield
            return
        with hidden_bodies(scene, bodies), ws.unjittered_camera(scene):
            yield


def begin_subtask(scene: CalvinScene, bodies: list[int], task: str) -> list[int]:
    """Readies the distractors of ``scene`` for a chain's next subtask ``task`` (look-alikes follow the named block,
    nothing stays in the task's keep-out; :func:`ivm_ros_sim.calvin.workspace_distractors.begin_subtask`).
    ``bodies``: the scene's distractor bodies; returns them updated. Levels without workspace distractors: no-op."""
    return ws.begin_subtask(scene, bodies, task)


def render_levels(out: str | Path, seed: int = 3, task: str = "lift_red_block_table", size: int = 256,
                  levels: tuple[str, ...] = tuple(LEVELS)) -> np.ndarray:
    """Renders the static camera of one ``task`` start (``seed``) under each of ``levels`` with the simulator's own
    tiny renderer, ``size`` px square, as a labelled grid (3 per row) saved to ``out`` (PNG). Returns the grid
    (H, W, 3) uint8. ``python -m ivm_ros_sim.calvin.distractors docs/distraction_levels.png`` makes the docs' one."""
    import cv2
    from ivm_ros_sim.calvin.env import CalvinSceneEnv  # env imports this module

    env = CalvinSceneEnv(static_size=size, render_gripper=False)
    tiles = []
    try:
        for level in levels:
            img = env.reset(seed=seed, task=task, distraction=level)[0]["rgb_static"].copy()
            cv2.rectangle(img, (0, 0), (size, 20), (255, 255, 255), -1)
            cv2.putText(img, level, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            tiles.append(img)
    finally:
        env.close()
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % 3)
    grid = np.concatenate([np.concatenate(tiles[i:i + 3], axis=1) for i in range(0, len(tiles), 3)], axis=0)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return grid


if __name__ == "__main__":
    import sys

    render_levels(sys.argv[1] if len(sys.argv) > 1 else "docs/distraction_levels.png")
