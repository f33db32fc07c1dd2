"""``ivm-ros sim-data gripper-views``: the gripper camera re-rendered under a random appearance, beside the recorded.

For every episode of a demos folder the simulator is put in each recorded state (``robot_obs``, ``scene_obs``) with
an appearance-only distraction level drawn once per episode (``appearance``: one of the level's table textures and a
random light; ``texture``; ``lighting``; the draws of :func:`ivm_ros_sim.calvin.distractors.apply` with the seed
``seed + episode number``), and the gripper camera is rendered. Added to the episode file (rewritten atomically, no
pickles):

* ``rgb_gripper_varied`` (T, h, w, 3) uint8: the same states, actions and instruction as ``rgb_gripper``, seen under
  another table texture and light.
* with ``--static``, also ``rgb_static_varied`` (T, H, W, 3) uint8: the static camera of the same states under the
  same draw: with the level's camera jitter (``--static-pose level``, the default) or at the recorded camera pose
  (``--static-pose recorded``: the table texture and light only, so a pair differs in look, never in geometry).

Training reads them with ``sim-train-policy --wrist-views P`` (a fraction ``P`` of the samples see the re-rendered
wrist view; ``--static-views`` swaps the static camera's window with it): paired views of every state, so the
table and light stop telling the policy anything. Distractors of the recording are not re-created (a
``paper-large`` episode's re-rendered views show no clutter). Episodes that have the arrays already are skipped,
unless their static views were rendered at another ``--static-pose`` (those are rendered again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ivm_ros_sim.calvin import distractors
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.scene import set_observed_state
from ivm_ros_sim.calvin.workspace_distractors import restore_camera
from ivm_ros_sim.data.gripper_masks import _write_index, rerender_episodes

KEY = "rgb_gripper_varied"
STATIC_KEY = "rgb_static_varied"
#: Default seed base: far from the evaluation's chain seeds, so no evaluated chain sees a drawn light again.
SEED = 1_000_000
#: Where the re-rendered static camera stands: where the level's jitter puts it, or where the recording had it.
STATIC_POSES = ("level", "recorded")


def static_pose_of(views: dict[str, Any]) -> str:
    """The pose an index entry's ``gripper_views`` stats rendered the static camera at (entries written before
    ``--static-pose`` existed: "level")."""
    return views.get("static_pose", "level")


def appearance_level(level: str) -> str:
    """``level`` when it changes only what cameras see (no objects, a texture or a light); ValueError otherwise."""
    spec = distractors.check_level(level)
    if spec.adds_objects or not (spec.texture or spec.lighting):
        raise ValueError(f"gripper-views needs a level that changes only the table texture or the light (appearance, "
                         f"texture, lighting), got {level!r}")
    return level


def episode_views(env: CalvinSceneEnv, robot_obs: np.ndarray, scene_obs: np.ndarray, level: str, seed: int,
                  cameras: tuple[str, ...] = ("gripper",), static_pose: str = "level") -> dict[str, np.ndarray]:
    """{camera: (T, h, w, 3) uint8}: each of ``cameras`` at each of an episode's states (T, 15) and (T, 24), under
    ``level`` drawn with ``seed`` (``static_pose`` "recorded": the static camera where the scene has it, the level's
    jitter undone; the texture and light drawn as with "level"); the scene's own texture, light and camera pose are
    put back afterwards."""
    env.reset_to_state(robot_obs[0], scene_obs[0], distraction=level, seed=seed, physics_steps=0)
    if static_pose == "recorded":
        restore_camera(env.scene)
    try:
        frames: dict[str, list[np.ndarray]] = {c: [] for c in cameras}
        for r, s in zip(robot_obs, scene_obs, strict=True):
            set_observed_state(env.scene, r, s)
            for c in cameras:
                frames[c].append(env.scene.render(c)[0])
    finally:
        distractors.apply(env.scene, "none", np.random.default_rng(0))
    return {c: np.stack(f) for c, f in frames.items()}


def add_gripper_views(root: Path, level: str = "appearance", seed: int = SEED, progress: bool = True,
                      static: bool = False, static_pose: str = "level") -> dict[str, Any]:
    """Adds ``rgb_gripper_varied`` (and ``rgb_static_varied`` when ``static``, its camera at ``static_pose``) to every
    episode of the demos folder ``root`` (module docstring); each index entry gets ``gripper_views`` ({level, seed,
    rgb_mad[, static_rgb_mad, static_pose], frames}: the re-rendered frames' mean absolute difference from the
    recorded ones, grey levels), the index its summary (returned)."""
    appearance_level(level)
    if static_pose not in STATIC_POSES:
        raise ValueError(f"static_pose must be one of {STATIC_POSES}, got {static_pose!r}")
    if static_pose != "level" and not static:
        raise ValueError("static_pose places the re-rendered static camera: it needs static views (--static)")
    cameras = ("gripper", "static") if static else ("gripper",)

    def views(env: CalvinSceneEnv, number: int, _entry: dict[str, Any], z: Any
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        ep_seed = seed + number
        frames = episode_views(env, z["robot_obs"], z["scene_obs"], level, ep_seed, cameras, static_pose)
        stats: dict[str, Any] = {"level": level, "seed": ep_seed, "frames": len(frames["gripper"]),
                                 **({"static_pose": static_pose} if static else {})}
        for c in cameras:
            mad = float(np.abs(frames[c].astype(np.int16) - z[f"rgb_{c}"]).mean())
            stats["rgb_mad" if c == "gripper" else f"{c}_rgb_mad"] = round(mad, 2)
        return {f"rgb_{c}_varied": f for c, f in frames.items()}, stats

    keys = (KEY, STATIC_KEY) if static else (KEY,)

    def stale(entry: dict[str, Any]) -> bool:  # static views of another pose: rendered again
        return static and static_pose_of(entry["gripper_views"]) != static_pose

    index, done = rerender_episodes(root, keys, "gripper_views", views, "views", progress, static=static,
                                    stale=stale)
    levels = sorted({e["gripper_views"]["level"] for e in done})
    index["gripper_views"] = {"episodes": len(done), "levels": levels,
                              "frames": sum(e["gripper_views"]["frames"] for e in done),
                              "rgb_mad_mean": float(np.mean([e["gripper_views"]["rgb_mad"] for e in done]))
                              if done else 0.0}
    with_static = [e["gripper_views"] for e in done if "static_rgb_mad" in e["gripper_views"]]
    if with_static:
        index["gripper_views"]["static_rgb_mad_mean"] = float(np.mean([v["static_rgb_mad"] for v in with_static]))
        index["gripper_views"]["static_poses"] = sorted({static_pose_of(v) for v in with_static})
    _write_index(root, index)
    return index["gripper_views"]


def add_parser(sub: Any) -> None:
    """The ``gripper-views`` subcommand of ``ivm-ros sim-data``."""
    g = sub.add_parser("gripper-views", help="add the gripper camera re-rendered under a random table texture and "
                       "light (per episode) to recorded demonstrations (for sim-train-policy --wrist-views)")
    g.add_argument("--demos", type=Path, required=True, help="a demos folder (sim-data chains or demos)")
    g.add_argument("--level", default="appearance", help="an appearance-only distraction level: appearance, "
                   "texture or lighting (default appearance)")
    g.add_argument("--seed", type=int, default=SEED, help=f"episode i is drawn with seed + i (default {SEED})")
    g.add_argument("--static", action="store_true", help="re-render the static camera too (rgb_static_varied, for "
                   "sim-train-policy --static-views)")
    g.add_argument("--static-pose", choices=STATIC_POSES, default="level", help="with --static: the static camera "
                   "where the level's jitter puts it (level, default) or where the recording had it (recorded: only "
                   "texture and light change)")


def run(args: Any) -> None:
    s = add_gripper_views(args.demos, args.level, args.seed, static=args.static, static_pose=args.static_pose)
    static = (f"; static views ({', '.join(s['static_poses'])} pose) by {s['static_rgb_mad_mean']:.1f}"
              if "static_rgb_mad_mean" in s else "")
    print(f"{args.demos}: gripper views ({', '.join(s['levels'])}) in {s['episodes']} episodes ({s['frames']} "
          f"frames); they differ from the recorded ones by {s['rgb_mad_mean']:.1f} grey levels on average{static}")
