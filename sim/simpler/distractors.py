"""Distractors in SimplerEnv's Bridge (WidowX) scenes, and a table stand-in for the Google-robot coke-can stage
(ROS-free; SimplerEnv imported lazily).

SimplerEnv has distractor variants only for Google-robot tasks (``GraspSingleOpenedCokeCanDistractorInScene-v0``
with ``distractor_config``); its Bridge put-on/stack tasks have none. Here the four Bridge tasks get our own env ids
(:data:`TASKS`, registered by :func:`register`), subclasses of SimplerEnv's classes made at run time (nothing in
SimplerEnv's tree changes). Their make kwarg ``distractors`` (int, 1-4) adds that many objects from the release's
own object set, chosen and placed from the episode seed only (same seed and episode id -> same models, same
poses). Levels are nested: the first 2 models of ``distractors=4`` are ``distractors=2``'s, and so are their spots
unless the larger set needed a restart of the placement (:func:`place`).

* Models (:data:`SLOTS`): slot 1 a look-alike of the source object, slot 2 of the target object, slots 3-4 more
  of either kind; never a second carrot/plate/spoon/towel/green/yellow cube, so the instruction stays unambiguous.
  The stack-cube scene's other-coloured cubes are 3 cm boxes built here (the release has only green and yellow).
* Placement (:func:`place`): on a free part of the table (:data:`LAYOUTS`), over the table of SimplerEnv's real
  overlay photo as the third-person camera sees it, at least :data:`CLEARANCE` from the source and target footprints
  (discs of the models' bbox half-diagonals), from the straight path between them (swept by the source object)
  and from the gripper's path down to the source, and :data:`GAP` from each other. Distractors are dropped with the
  task's objects, so SimplerEnv's settling applies to them too; round ones (apple, orange, plate) keep their roll
  and pitch locked for the episode (they still slide and turn when pushed): a dropped orange otherwise rolled
  up to 5.6 cm, differently after a reset with and without reconfiguration.
* They are actors of their own (``env.unwrapped.distractor_objs``), never ``episode_source_obj`` or
  ``episode_target_obj``: ground-truth masks (:mod:`~ivm_ros_sim.simpler.masks`) keep covering only the named
  objects. They belong to ``episode_objs``, so SimplerEnv's ``moved_wrong_obj`` counts a distractor moved.

:data:`VARIANTS` names the levels for the evaluation harness (variant name -> make kwargs); :func:`make_env` is an
env maker (``(task, **kwargs) -> env``, like :func:`~ivm_ros_sim.simpler.env.make_simpler`) that understands them,
and makes the coke-can tasks with :data:`STANDIN_TABLE_TOPS`' collision stand-in when the stage .glb is missing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

#: Harness variants (name -> make kwargs for :func:`make_env`): distractor levels of the Bridge tasks.
VARIANTS: dict[str, dict[str, Any]] = {"distractors_2": {"distractors": 2}, "distractors_4": {"distractors": 4}}
LEVELS = (2, 4)
CLEARANCE = 0.03  # m, between a distractor's footprint and the source/target footprints and their paths
GAP = 0.02  # m, between two distractors' footprints
GRIPPER_HALF_WIDTH = 0.045  # m, half the open WidowX gripper's span, kept clear along the way down to the source
MAX_TRIES = 400  # candidate spots per distractor
RESTARTS = 50  # fresh streams for the whole set


@dataclasses.dataclass(frozen=True)
class Region:
    """An axis-aligned patch of support surface (m, world frame); a distractor's footprint disc stays inside."""

    x0: float
    x1: float
    y0: float
    y1: float
    z: float  # surface height


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where distractors may stand in one camera setup: ``regions``, ``camera`` (3, 4) pinhole projection K[R|t]
    of the third-person camera (world m -> px), ``image`` (W, H) px, ``margin`` px kept from the image border (and
    from ``photo_table``'s edges), ``tcp_xy`` the gripper's xy at reset (m) and ``photo_table`` the convex polygon
    (u, v px, clockwise on screen) of the table in SimplerEnv's real overlay photo (empty: no such check)."""

    regions: tuple[Region, ...]
    camera: tuple[tuple[float, ...], ...]
    image: tuple[int, int]
    margin: float
    tcp_xy: tuple[float, float]
    photo_table: tuple[tuple[float, float], ...] = ()


def _projection(extrinsic: list[list[float]], f: float = 623.6) -> tuple[tuple[float, ...], ...]:
    k = np.array([[f, 0, 319.5], [0, f, 239.5], [0, 0, 1]])
    return tuple(map(tuple, k @ np.asarray(extrinsic)))


#: Measured on the real env (``obs["camera_param"]["3rd_view_camera"]``, gripper pose at reset) and on
#: the overlay photos (``real_inpainting/bridge_real_eval_1.png``: the wooden table).
LAYOUTS: dict[str, Layout] = {
    "bridge_table": Layout(
        (Region(-0.50, 0.0, -0.36, 0.32, 0.87),),
        _projection([[-0.484, 0.875, 0.0, -0.093], [0.603, 0.333, -0.725, 0.741], [-0.635, -0.351, -0.689, 1.006]]),
        (640, 480), 30.0, (-0.145, 0.034), ((0, 150), (150, 75), (640, 190), (640, 480), (200, 480), (0, 420))),
}


@dataclasses.dataclass(frozen=True)
class Model:
    """A distractor model: ``half`` (x, y, z) bbox half extents (m) from the release's model json (``source``
    file under ``data/custom``), or a 3 cm box built here in ``color`` (sRGB 0-1)."""

    half: tuple[float, float, float]
    source: str = "info_pick_custom_baked_tex_v0.json"
    color: tuple[float, float, float] | None = None
    density: float = 1000.0
    round: bool = False  # a round footprint (fruit, plate)

    @property
    def radius(self) -> float:
        """Footprint radius (m): the bbox's xy half-diagonal (a bound for any yaw), or half width if round."""
        return max(self.half[:2]) if self.round else float(np.hypot(self.half[0], self.half[1]))


_BRIDGE_JSON, _CUBE = "info_bridge_custom_v0.json", (0.015, 0.015, 0.015)
MODELS: dict[str, Model] = {
    "baked_orange": Model((0.035, 0.035, 0.034), round=True),
    "baked_apple": Model((0.04, 0.04, 0.04), round=True),
    "baked_sponge": Model((0.035, 0.05, 0.018)),
    "bridge_carrot_generated_modified": Model((0.0575, 0.016, 0.019), _BRIDGE_JSON),
    "bridge_spoon_generated_modified": Model((0.07, 0.0173, 0.013021), _BRIDGE_JSON),
    "bridge_plate_objaverse_larger": Model((0.055, 0.055, 0.003), _BRIDGE_JSON, round=True),
    "table_cloth_generated_shorter": Model((0.05, 0.05, 0.005), _BRIDGE_JSON),
    "ivm_cube_red": Model(_CUBE, "", (0.70, 0.12, 0.10)),
    "ivm_cube_blue": Model(_CUBE, "", (0.12, 0.30, 0.70)),
    "ivm_cube_orange": Model(_CUBE, "", (0.90, 0.45, 0.08)),
    "ivm_cube_purple": Model(_CUBE, "", (0.45, 0.20, 0.60)),
}
#: Task -> footprint radii (m) of its source and target objects (release json bboxes: half-diagonals, the round
#: plate's half width).
TASK_RADII: dict[str, tuple[float, float]] = {
    "widowx_carrot_on_plate": (float(np.hypot(0.0575, 0.016)), 0.055),
    "widowx_spoon_on_towel": (float(np.hypot(0.07, 0.0173)), float(np.hypot(0.05, 0.05))),
    "widowx_stack_cube": (float(np.hypot(0.015, 0.015)), float(np.hypot(0.015, 0.015))),
}
_PRODUCE = ("baked_orange", "baked_apple")
#: Task -> model pools of the slots, in order (slot 1 source look-alikes, slot 2 target look-alikes, then more).
SLOTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "widowx_carrot_on_plate": (_PRODUCE, ("table_cloth_generated_shorter", "baked_sponge"),
                               ("bridge_spoon_generated_modified", *_PRODUCE),
                               ("baked_sponge", "table_cloth_generated_shorter", "bridge_spoon_generated_modified")),
    "widowx_spoon_on_towel": (("bridge_carrot_generated_modified",), ("bridge_plate_objaverse_larger", "baked_sponge"),
                              _PRODUCE, ("baked_sponge", "bridge_plate_objaverse_larger", *_PRODUCE)),
    "widowx_stack_cube": (("ivm_cube_red", "ivm_cube_blue"), ("ivm_cube_orange", "baked_sponge"),
                          ("ivm_cube_blue", "ivm_cube_purple", "ivm_cube_red"),
                          ("baked_sponge", "ivm_cube_purple", "ivm_cube_orange")),
}


@dataclasses.dataclass(frozen=True)
class TaskEnv:
    """Our env id of a task, SimplerEnv's env id it extends (module ``put_on_in_scene`` or ``grasp_single_in_scene``
    and class name) and its layout name (Bridge tasks) or stand-in (Google tasks)."""

    env_id: str
    base_id: str
    base_class: str
    layout: str = ""


TASKS: dict[str, TaskEnv] = {
    "widowx_carrot_on_plate": TaskEnv("IvmPutCarrotOnPlateDistractorsInScene-v0", "PutCarrotOnPlateInScene-v0",
                                      "put_on_in_scene.PutCarrotOnPlateInScene", "bridge_table"),
    "widowx_spoon_on_towel": TaskEnv("IvmPutSpoonOnTableClothDistractorsInScene-v0", "PutSpoonOnTableClothInScene-v0",
                                     "put_on_in_scene.PutSpoonOnTableClothInScene", "bridge_table"),
    "widowx_stack_cube": TaskEnv("IvmStackGreenCubeOnYellowCubeBakedTexDistractorsInScene-v0",
                                 "StackGreenCubeOnYellowCubeBakedTexInScene-v0",
                                 "put_on_in_scene.StackGreenCubeOnYellowCubeBakedTexInScene", "bridge_table"),
    "google_robot_pick_coke_can": TaskEnv("IvmGraspSingleOpenedCokeCanStandinInScene-v0",
                                          "GraspSingleOpenedCokeCanInScene-v0",
                                          "grasp_single_in_scene.GraspSingleOpenedCokeCanInSceneEnv"),
    "google_robot_pick_coke_can_distractors": TaskEnv(
        "IvmGraspSingleOpenedCokeCanDistractorStandinInScene-v0", "GraspSingleOpenedCokeCanDistractorInScene-v0",
        "grasp_single_in_scene.GraspSingleOpenedCokeCanDistractorInSceneEnv"),
}
#: Stage name -> table-top height (m) of the collision stand-in built when the stage .glb is missing. Google
#: coke-can stage: SimplerEnv's example notebook resets a lying opened can to 0.8406 m above the robot base
#: (base at 0.06205 + 0.017 m), can radius 0.033 m -> 0.887 m (its dummy_tabletop scene: 0.882 m).
#: Bridge tasks without our distractors, and why (measured on the real env).
UNSUPPORTED: dict[str, str] = {
    "widowx_put_eggplant_in_basket": (
        "the toy sink fills the third-person view (it spans x -0.297..-0.022, y -0.074..0.326 m; the table around "
        "it is out of view or hidden behind it) and its basin (about 12 x 16 cm) holds the eggplant and its way "
        "out: no spot keeps a distractor clear of the source, its path and the camera's view"),
}
STANDIN_TABLE_TOPS: dict[str, float] = {"google_pick_coke_can_1_v4": 0.887}
STANDIN_BOX = ((-0.75, 0.05), (-0.35, 0.75), 0.05)  # x range, y range, thickness (m) of the stand-in slab


# ------------------------------------------------------------------------------------------- pure planning
def is_built(model_id: str) -> bool:
    """Whether a distractor model is built here (a coloured box) rather than loaded from the release."""
    return model_id in MODELS and MODELS[model_id].color is not None


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) % 2**32, stream]))


def choose_models(task: str, seed: int, n: int) -> list[str]:
    """The ``n`` distractor model ids of an episode (slot order, no repeats), from ``seed`` alone; the first k of
    ``n`` are those of ``k``."""
    slots = SLOTS[task]
    if not 0 <= n <= len(slots):
        raise ValueError(f"distractors={n}: {task} has 0..{len(slots)}")
    rng, chosen = _rng(seed, 1), []
    for pool in slots:  # draw every slot so that a level's models do not depend on n
        free = [m for m in pool if m not in chosen]
        chosen.append(free[int(rng.integers(len(free)))])
    return chosen[:n]


def segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance (m) from point ``p`` (2,) to the segment ``a``-``b`` (2,) each."""
    ab, ap = b - a, p - a
    t = 0.0 if not ab.any() else float(np.clip(ap @ ab / (ab @ ab), 0.0, 1.0))
    return float(np.linalg.norm(ap - t * ab))


def visible(layout: Layout, xy: np.ndarray, z: float) -> bool:
    """Whether the point (xy, z) (m) projects into the third-person image, ``layout.margin`` px from its border."""
    u, v, w = np.asarray(layout.camera) @ np.array([xy[0], xy[1], z, 1.0])
    if w <= 0:
        return False
    (width, height), m, px = layout.image, layout.margin, np.array([u / w, v / w])
    if not (m <= px[0] <= width - m and m <= px[1] <= height - m):
        return False
    poly = np.asarray(layout.photo_table, dtype=float).reshape(-1, 2)
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):  # clockwise on screen (v down): inside is right of a->b
        edge = b - a
        if (edge[0] * (px[1] - a[1]) - edge[1] * (px[0] - a[0])) / np.linalg.norm(edge) < m:
            return False
    return True


def blocks_task(xy: np.ndarray, radius: float, source: np.ndarray, target: np.ndarray, r_source: float,
                r_target: float, tcp_xy: np.ndarray) -> bool:
    """Whether a footprint disc (``xy`` (2,) m, ``radius`` m) comes within :data:`CLEARANCE` of the source or
    target footprint, the source's straight path to the target, or the gripper's path from ``tcp_xy`` down to
    the source (:data:`GRIPPER_HALF_WIDTH` wide each side)."""
    if np.linalg.norm(xy - target) < radius + r_target + CLEARANCE:
        return True
    if segment_distance(xy, source, target) < radius + r_source + CLEARANCE:  # covers the source itself
        return True
    return segment_distance(xy, tcp_xy, source) < radius + GRIPPER_HALF_WIDTH + CLEARANCE


def _candidate(rng: np.random.Generator, layout: Layout, radius: float) -> tuple[np.ndarray, Region] | None:
    areas = np.array([(r.x1 - r.x0) * (r.y1 - r.y0) for r in layout.regions])
    region = layout.regions[int(rng.choice(len(areas), p=areas / areas.sum()))]
    xy = rng.uniform([region.x0, region.y0], [region.x1, region.y1])
    inside = region.x0 + radius <= xy[0] <= region.x1 - radius and region.y0 + radius <= xy[1] <= region.y1 - radius
    return (xy, region) if inside else None


def place(seed: int, radii: list[float], source_xy: np.ndarray, target_xy: np.ndarray, r_source: float,
          r_target: float, layout: Layout) -> np.ndarray:
    """(n, 3) x, y (m, world) and yaw (rad) of ``n`` distractors with footprint ``radii`` (m), from ``seed`` alone.
    Rules: the disc inside a layout region, its centre :func:`visible`, :func:`blocks_task` false, :data:`GAP`
    from the others. Rejection sampling, distractor by distractor (each depends only on those before it, so a
    level's spots are the first ones of a higher level's); a distractor that finds no spot in :data:`MAX_TRIES`
    restarts the whole set from the seed's next stream (:data:`RESTARTS` times, then RuntimeError). Every episode
    of the release's grids placed 2 and 4 distractors for seeds 0-9 (``test_distractors.py`` checks seeds 0-2)."""
    source, target, tcp = (np.asarray(v, dtype=float) for v in (source_xy, target_xy, layout.tcp_xy))
    for restart in range(RESTARTS):
        rng, out = _rng(seed, 2 + restart), []
        for radius in radii:
            spot = _spot(rng, radius, out, radii, layout, (source, target, r_source, r_target, tcp))
            if spot is None:
                break
            out.append(spot)
        else:
            return np.array(out).reshape(-1, 3)
    raise RuntimeError(f"no free spots for {len(radii)} distractors (radii {radii} m) in {RESTARTS} restarts")


def _spot(rng: np.random.Generator, radius: float, placed: list[np.ndarray], radii: list[float], layout: Layout,
          task: tuple[np.ndarray, np.ndarray, float, float, np.ndarray]) -> np.ndarray | None:
    source, target, r_source, r_target, tcp = task
    for _ in range(MAX_TRIES):
        yaw = float(rng.uniform(-np.pi, np.pi))
        found = _candidate(rng, layout, radius)
        if found is None:
            continue
        xy, region = found
        if (visible(layout, xy, region.z) and not blocks_task(xy, radius, source, target, r_source, r_target, tcp)
                and all(np.linalg.norm(xy - p[:2]) >= radius + radii[j] + GAP for j, p in enumerate(placed))):
            return np.array([xy[0], xy[1], yaw])
    return None


def plan(task: str, seed: int, n: int, source_xy: np.ndarray, target_xy: np.ndarray) -> tuple[list[str], np.ndarray]:
    """An episode's distractors: (model ids, (n, 3) x, y, yaw) from ``seed`` and the task objects' xy (m)."""
    models = choose_models(task, seed, n)
    r_source, r_target = TASK_RADII[task]
    poses = place(seed, [MODELS[m].radius for m in models], source_xy, target_xy, r_source, r_target,
                  LAYOUTS[TASKS[task].layout])
    return models, poses


def release_xy_configs(task: str) -> list[np.ndarray]:
    """The release's (2, 2) source/target xy drop points (m) of every episode of a Bridge task, as SimplerEnv's
    put_on_in_scene builds them (episode id // number of orientations indexes them)."""
    if task not in SLOTS:
        raise ValueError(f"{task}: no distractors (see UNSUPPORTED)")
    halves = (0.05, 0.1) if task == "widowx_stack_cube" else (0.075,)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]) * 2 - 1
    out = []
    for half in halves:
        grid = corners * half + np.array([-0.16, 0.0])
        out += [np.array([a, b]) for i, a in enumerate(grid) for j, b in enumerate(grid) if i != j]
    return out


# ---------------------------------------------------------------------------------------- env mixins
class BridgeDistractorsMixin:
    """Mixed before a SimplerEnv Bridge put-on class (:func:`register`): make kwarg ``distractors`` (0..4)."""

    ivm_task = ""

    def __init__(self, distractors: int = 2, **kwargs: Any) -> None:
        choose_models(self.ivm_task, 0, int(distractors))  # validates the count
        self.n_distractors = int(distractors)
        self.distractor_ids: list[str] = []
        self.distractor_objs: list[Any] = []
        self.distractor_plan = np.zeros((0, 3))
        kwargs["model_db_override"] = model_db_entries() | dict(kwargs.get("model_db_override") or {})
        super().__init__(**kwargs)

    def _check_assets(self) -> None:
        ids = self.model_ids
        self.model_ids = [m for m in ids if not is_built(m)]
        try:
            super()._check_assets()
        finally:
            self.model_ids = ids

    def _set_model(self, model_ids: list[str], model_scales: list[float] | None) -> bool:
        self.distractor_ids = choose_models(self.ivm_task, self._episode_seed, self.n_distractors)
        self.distractor_ids.sort(key=is_built)  # built cubes last (see _load_model); stable otherwise
        ids = list(model_ids[:2]) + self.distractor_ids
        scales = None if model_scales is None else list(model_scales[:2]) + [1.0] * len(self.distractor_ids)
        return super()._set_model(ids, scales)

    def _load_model(self) -> None:
        ids, scales = self.episode_model_ids, self.episode_model_scales
        keep = [i for i, m in enumerate(ids) if not is_built(m)]
        self.episode_model_ids, self.episode_model_scales = [ids[i] for i in keep], [scales[i] for i in keep]
        try:
            super()._load_model()
        finally:
            self.episode_model_ids, self.episode_model_scales = ids, scales
        self.episode_objs += [self._build_cube(m) for m in ids if is_built(m)]

    def _build_cube(self, model_id: str) -> Any:
        model = MODELS[model_id]
        builder = self._scene.create_actor_builder()
        material = self._scene.create_physical_material(static_friction=self.obj_static_friction,
                                                        dynamic_friction=self.obj_dynamic_friction, restitution=0.0)
        builder.add_box_collision(half_size=model.half, material=material, density=model.density)
        builder.add_box_visual(half_size=model.half, color=[c**2.2 for c in model.color])  # sRGB -> linear
        return builder.build(name=model_id)

    def _initialize_actors(self) -> None:
        from transforms3d.euler import euler2quat

        opts = dict(self.obj_init_options)
        xys = np.asarray(opts["init_xys"], dtype=float)[:2]
        quats = np.asarray(opts.get("init_rot_quats", [[1, 0, 0, 0]] * 2), dtype=float)[:2]
        _, self.distractor_plan = plan(self.ivm_task, self._episode_seed, self.n_distractors, xys[0], xys[1])
        order = [choose_models(self.ivm_task, self._episode_seed, self.n_distractors).index(m)
                 for m in self.distractor_ids]  # plan rows are in slot order; objects have built cubes last
        poses = self.distractor_plan[order]
        opts["init_xys"] = np.concatenate([xys, poses[:, :2]])
        opts["init_rot_quats"] = np.concatenate([quats] + [[euler2quat(0, 0, yaw)] for yaw in poses[:, 2]])
        self.obj_init_options = opts
        self.distractor_objs = list(self.episode_objs[2:])
        super()._initialize_actors()

    def _settle(self, t: float) -> None:
        for obj in self.distractor_objs:  # round ones (fruit, plate) never roll: SimplerEnv unlocks before settling
            if obj.name in MODELS and MODELS[obj.name].round:
                obj.lock_motion(0, 0, 0, 1, 1, 0)
        super()._settle(t)

    def get_distractor_info(self) -> dict[str, Any]:
        """Model ids, planned (n, 3) x, y, yaw, and the actors' ids and current xyz (m), in object order."""
        return {"models": list(self.distractor_ids), "actor_ids": [int(o.id) for o in self.distractor_objs],
                "xyz": [o.pose.p.tolist() for o in self.distractor_objs]}


class StageStandinMixin:
    """Mixed before a SimplerEnv Google-robot class: when the scene's stage .glb is missing (or make kwarg
    ``stage_standin=True``), a static collision slab at :data:`STANDIN_TABLE_TOPS`' height is added. It is named
    ``arena``, so SimplerEnv's real-photo overlay treats it as background, like the stage it stands in for."""

    def __init__(self, stage_standin: bool | None = None, **kwargs: Any) -> None:
        self.stage_standin = stage_standin
        self.standin_top: float | None = None
        super().__init__(**kwargs)

    def _load_arena_helper(self, add_collision: bool = True) -> None:
        super()._load_arena_helper(add_collision)
        stage = self.scene_root / "stages" / f"{self.scene_name}.glb"
        wanted = self.stage_standin if self.stage_standin is not None else not stage.exists()
        if not wanted or self.scene_name not in STANDIN_TABLE_TOPS:
            self.standin_top = None
            return
        import sapien.core as sapien

        top = self.standin_top = STANDIN_TABLE_TOPS[self.scene_name]
        (x0, x1), (y0, y1), thick = STANDIN_BOX
        half = np.array([(x1 - x0) / 2, (y1 - y0) / 2, thick / 2])
        pose = sapien.Pose([(x0 + x1) / 2, (y0 + y1) / 2, top - thick / 2])
        builder = self._scene.create_actor_builder()
        builder.add_box_collision(pose=pose, half_size=half)
        builder.add_box_visual(pose=pose, half_size=half, color=[0.35, 0.3, 0.25])
        builder.build_static(name="arena")


# ---------------------------------------------------------------------------------------- registration
def model_db_entries() -> dict[str, dict[str, Any]]:
    """Model-db entries (bbox, scales, density) of every distractor model: the release's json entries for its
    models (read from ManiSkill2_real2sim's ``data/custom``), ours for the built cubes."""
    from mani_skill2_real2sim import ASSET_DIR

    entries: dict[str, dict[str, Any]] = {}
    for model_id, model in MODELS.items():
        if model.color is not None:
            half = list(model.half)
            entries[model_id] = {"bbox": {"min": [-h for h in half], "max": half}, "scales": [1.0],
                                 "density": model.density}
        else:
            entries[model_id] = json.loads((Path(ASSET_DIR) / "custom" / model.source).read_text())[model_id]
    return entries


_REGISTERED: dict[str, type] = {}


def register() -> dict[str, type]:
    """Defines our env classes and registers :data:`TASKS`' env ids with ManiSkill2_real2sim and gymnasium (once
    per process; returns env id -> class). Raises :class:`~ivm_ros_sim.simpler.env.SimplerEnvMissing` without
    SimplerEnv."""
    if _REGISTERED:
        return dict(_REGISTERED)
    try:
        import importlib

        importlib.import_module("mani_skill2_real2sim.envs")  # first: registration imports it circularly
        from mani_skill2_real2sim.utils.registration import REGISTERED_ENVS, register_env
    except ModuleNotFoundError as exc:
        from ivm_ros_sim.simpler.env import INSTALL, SimplerEnvMissing

        raise SimplerEnvMissing(f"SimplerEnv cannot load ({exc}). Fix: {INSTALL}") from exc
    for task, spec in TASKS.items():
        module, name = spec.base_class.split(".")
        base = getattr(importlib.import_module(f"mani_skill2_real2sim.envs.custom_scenes.{module}"), name)
        mixin = BridgeDistractorsMixin if spec.layout else StageStandinMixin
        cls_name = spec.env_id.split("-")[0]
        cls = type(cls_name, (mixin, base), {"ivm_task": task, "__module__": __name__, "__doc__": mixin.__doc__})
        globals()[cls_name] = cls
        register_env(spec.env_id, max_episode_steps=REGISTERED_ENVS[spec.base_id].max_episode_steps)(cls)
        _REGISTERED[spec.env_id] = cls
    return dict(_REGISTERED)


def route(task: str, kwargs: dict[str, Any], stage_missing: bool = False) -> tuple[str | None, dict[str, Any]]:
    """(our env id, or None for SimplerEnv's own env; the make kwargs left) of ``task`` with make ``kwargs``:
    ``distractors`` > 0 picks a Bridge task's distractor env (ValueError for other tasks); a coke-can task gets
    its stand-in env when ``stage_standin`` is true, or is None and ``stage_missing``."""
    kwargs = dict(kwargs)
    n = int(kwargs.pop("distractors", 0) or 0)
    standin = kwargs.pop("stage_standin", None)
    spec = TASKS.get(task)
    if n > 0:
        if task in UNSUPPORTED:
            raise ValueError(f"distractors={n}: not for {task}: {UNSUPPORTED[task]}")
        if spec is None or not spec.layout:
            raise ValueError(f"distractors={n}: only the Bridge tasks have our distractors "
                             f"({sorted(t for t, s in TASKS.items() if s.layout)})")
        return spec.env_id, kwargs | {"distractors": n}
    if spec is not None and not spec.layout and (standin or (standin is None and stage_missing)):
        return spec.env_id, kwargs | {"stage_standin": True}
    return None, kwargs


def google_stage_missing() -> bool:
    """Whether the Google coke-can stage .glb is missing from ManiSkill2_real2sim's data (a fetched copy)."""
    from mani_skill2_real2sim import ASSET_DIR

    return not (Path(ASSET_DIR) / "hab2_bench_assets" / "stages" / "google_pick_coke_can_1_v4.glb").exists()


def make_env(task: str, **kwargs: Any) -> Any:
    """An env maker for :class:`~ivm_ros_sim.simpler.env.SimplerTaskEnv` (``make=make_env``): our env ids per
    :func:`route` (observations as SimplerEnv's: ``obs_mode="rgbd"``, prepackaged config), else
    :func:`~ivm_ros_sim.simpler.env.make_simpler`."""
    from ivm_ros_sim.simpler.env import make_simpler

    missing = task in TASKS and not TASKS[task].layout and google_stage_missing()
    env_id, rest = route(task, kwargs, missing)
    if env_id is None:
        return make_simpler(task, **rest)
    import gymnasium as gym

    register()
    return gym.make(env_id, **({"obs_mode": "rgbd", "prepackaged_config": True} | rest))
