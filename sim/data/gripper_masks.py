"""``ivm-ros sim-data gripper-masks``: the gripper camera's ground-truth masks, added to recorded demonstrations.

For every episode of a demos folder (``sim-data chains`` or ``sim-data demos``) the simulator is put in each
recorded state (``robot_obs``, ``scene_obs``) and the gripper camera is rendered with segmentation. Added to the
episode file (rewritten atomically, no pickles):

* ``mask_gripper`` (T, h, w) bool: the instruction mask, by the rule of :mod:`ivm_ros_sim.calvin.masks` with its
  parts taken from the episode's first state (as ``mask_static`` is); all False while nothing it names is in view.
* ``table_gripper`` (T, h, w) bool: the table body's own pixels (the surface a ``texture`` level re-textures).

Distractors are not in a recorded state, so they are not re-created: where one hid a task object from the gripper
camera, the mask covers the object's pixels behind it. How well the re-rendered frames match the recorded ones is
measured per episode (mean absolute difference in grey levels, ``rgb_mad``) and summed up in ``index.json``
(``gripper_masks``); on clean demonstrations it is a fraction of a grey level, under texture, lighting or
distractors it is large (the masks are still right where no distractor stands in front of a task object).
Episodes that have both arrays already are skipped, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.masks import mask_from_segmentation, relevant_parts
from ivm_ros_sim.calvin.scene import set_observed_state
from tqdm import tqdm

from ivm_ros.datasets import read_index
from ivm_ros.policies.embedded.data import DEMOS_FORMAT

KEYS = ("mask_gripper", "table_gripper")


def episode_masks(env: CalvinSceneEnv, task: str, robot_obs: np.ndarray, scene_obs: np.ndarray,
                  recorded: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
    """({mask_gripper, table_gripper}: (T, h, w) bool, mean absolute difference of the re-rendered gripper frames
    from ``recorded`` (T, h, w, 3) uint8, grey levels) for one episode's states (T, 15) and (T, 24)."""
    env.reset_to_state(robot_obs[0], scene_obs[0], physics_steps=0)
    env.begin_subtask(task)
    parts = relevant_parts(env.scene, task, env.start_state)
    table = [(env.scene.table, -1)]
    out: dict[str, list[np.ndarray]] = {k: [] for k in KEYS}
    mad = 0.0
    for r, s, rec in zip(robot_obs, scene_obs, recorded, strict=True):
        set_observed_state(env.scene, r, s)
        rgb, seg = env.scene.render("gripper", segmentation=True)
        out["mask_gripper"].append(mask_from_segmentation(seg, parts))
        out["table_gripper"].append(mask_from_segmentation(seg, table))
        mad += float(np.abs(rgb.astype(np.int16) - rec).mean())
    return {k: np.stack(v) for k, v in out.items()}, mad / len(recorded)


def _rewrite(path: Path, extra: dict[str, np.ndarray]) -> None:
    """Adds ``extra`` arrays to the episode file ``path``, replacing those of the same names (a temporary file
    replaced atomically)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **{**arrays, **extra})
    tmp.replace(path)


def add_gripper_masks(root: Path, progress: bool = True) -> dict[str, Any]:
    """Adds the gripper camera's masks to every episode of the demos folder ``root`` (see the module docstring);
    each index entry gets ``gripper_masks`` ({rgb_mad, empty_frames}), the index its summary (returned)."""

    def masks(env: CalvinSceneEnv, _number: int, entry: dict[str, Any], z: Any
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        recorded = z["rgb_gripper"]
        out, mad = episode_masks(env, str(entry["task"]), z["robot_obs"], z["scene_obs"], recorded)
        return out, {"rgb_mad": round(mad, 3), "frames": len(recorded),
                     "empty_frames": int((~out["mask_gripper"].any(axis=(1, 2))).sum())}

    index, done = rerender_episodes(root, KEYS, "gripper_masks", masks, "gripper masks", progress)
    index["gripper_masks"] = {"episodes": len(done), "frames": sum(e["gripper_masks"]["frames"] for e in done),
                              "empty_frames": sum(e["gripper_masks"]["empty_frames"] for e in done),
                              "rgb_mad_mean": float(np.mean([e["gripper_masks"]["rgb_mad"] for e in done]))
                              if done else 0.0}
    _write_index(root, index)
    return index["gripper_masks"]


PerEpisode = Callable[[CalvinSceneEnv, int, dict[str, Any], Any], tuple[dict[str, np.ndarray], dict[str, Any]]]


def rerender_episodes(root: Path, keys: tuple[str, ...], entry_key: str, per_episode: PerEpisode, desc: str,
                      progress: bool = True, static: bool = False,
                      stale: Callable[[dict[str, Any]], bool] | None = None
                      ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Runs ``per_episode(env, episode number, index entry, opened npz)`` -> (arrays named ``keys``, stats) on every
    episode of the demos folder ``root`` that lacks them (the number: its place in the index), with a simulator of
    the episode's scene whose gripper camera (and static camera, when ``static``) has the recorded frames' size;
    the arrays join the episode file (atomic rewrite), the stats its index entry under ``entry_key`` (the index is
    rewritten after each episode, so an interrupted run continues where it stopped). ``stale(entry)`` True: an episode
    that has them is run again (rendered under other settings).
    Returns (the index, the entries that have ``entry_key``)."""
    index = read_index(root, DEMOS_FORMAT, "ivm-ros sim-data chains")
    envs: dict[str, CalvinSceneEnv] = {}
    try:
        for number, entry in enumerate(tqdm(index["episodes"], desc=desc, unit="ep", disable=not progress)):
            path = root / entry["file"]
            with np.load(path, allow_pickle=False) as z:
                if all(k in z.files for k in keys) and entry_key in entry and not (stale and stale(entry)):
                    continue
                scene = str(entry.get("scene", "D"))
                if scene not in envs:
                    static_size = z["rgb_static"].shape[1] if static else 64  # 64: not rendered
                    envs[scene] = CalvinSceneEnv(static_size, z["rgb_gripper"].shape[1], scene=scene)
                arrays, stats = per_episode(envs[scene], number, entry, z)
            _rewrite(path, arrays)
            entry[entry_key] = stats
            _write_index(root, index)
    finally:
        for env in envs.values():
            env.close()
    return index, [e for e in index["episodes"] if entry_key in e]


def _write_index(root: Path, index: dict[str, Any]) -> None:
    tmp = root / f".index.{os.getpid()}.tmp.json"
    tmp.write_text(json.dumps(index, indent=1))
    tmp.replace(root / "index.json")


def add_parser(sub: Any) -> None:
    """The ``gripper-masks`` subcommand of ``ivm-ros sim-data``."""
    g = sub.add_parser("gripper-masks", help="add the gripper camera's ground-truth masks to recorded demonstrations "
                       "(re-rendered from their states)")
    g.add_argument("--demos", type=Path, required=True, help="a demos folder (sim-data chains or demos)")


def run(args: Any) -> None:
    s = add_gripper_masks(args.demos)
    print(f"{args.demos}: gripper masks in {s['episodes']} episodes ({s['frames']} frames, "
          f"{s['empty_frames'] / max(s['frames'], 1):.0%} with nothing named in view); re-rendered frames differ from "
          f"the recorded ones by {s['rgb_mad_mean']:.2f} grey levels on average")
