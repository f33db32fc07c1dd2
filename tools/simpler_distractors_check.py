"""Check our SimplerEnv distractors and the coke-can stage stand-in on the real SimplerEnv (needs SimplerEnv; on a
CPU machine ``source /opt/simpler_cpu/env.sh`` first). Writes docs/simpler_distractors_<task>_<level>.png (320x240
third-person view, first seed), docs/simpler_distractors.png (contact sheet), the coke-can frames and prints one
JSON line per check (determinism, resting height after 20 zero-action steps, clearances, mask ids).

    python tools/simpler_distractors_check.py [--seeds 0 1 2] [--out docs] [--skip-bridge] [--skip-coke]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from ivm_ros_sim.simpler import distractors as D
from ivm_ros_sim.simpler.env import SimplerTaskEnv
from ivm_ros_sim.simpler.masks import gt_mask

HOLD = np.array([0, 0, 0, 0, 0, 0, 1.0])  # zero deltas, gripper open


def _snapshot(env: SimplerTaskEnv) -> dict:
    u = env.env.unwrapped
    objs = list(u.distractor_objs)
    return {"models": [o.name for o in objs], "ids": [int(o.id) for o in objs],
            "xyz": np.array([o.pose.p for o in objs]).reshape(-1, 3),
            "plan": np.array(getattr(u, "distractor_plan", np.zeros((0, 3)))).copy()}


def _episode(env: SimplerTaskEnv, seed: int) -> dict:
    t = time.time()
    frame = env.reset(seed=seed, episode_id=seed)
    reset_s = time.time() - t
    first = _snapshot(env)
    seg = frame.segmentation["main"]
    mask = gt_mask(env, frame)
    u = env.env.unwrapped
    named = {role: np.asarray(getattr(u, attr).pose.p[:2]) for role, attr in
             (("source", "episode_source_obj"), ("target", "episode_target_obj"))}
    seen = [int((seg == i).sum()) for i in first["ids"]]
    overlap = int(sum(mask[seg == i].sum() for i in first["ids"]))
    for _ in range(20):
        last = env.step(HOLD)
    after = _snapshot(env)
    dist = {role: float(min(np.linalg.norm(after["xyz"][:, :2] - xy, axis=1))) for role, xy in named.items()}
    return {"seed": seed, "reset_s": round(reset_s, 2), "models": first["models"], "first": first, "after": after,
            "frame": frame, "last": last, "mask_ids": sorted(set(np.unique(seg[mask]).tolist())),
            "distractor_ids": first["ids"], "distractor_px": seen, "mask_overlap_px": overlap,
            "min_center_dist_m": dist}


def _report(task: str, level: int, ep: dict, again: dict) -> dict:
    z0, z1 = ep["first"]["xyz"][:, 2], ep["after"]["xyz"][:, 2]
    return {"task": task, "level": level, "seed": ep["seed"], "models": ep["models"], "reset_s": ep["reset_s"],
            "same_models_and_plan": ep["models"] == again["models"]
            and bool(np.array_equal(ep["first"]["plan"], again["first"]["plan"])),
            "settled_xyz_diff_m": float(np.abs(ep["first"]["xyz"] - again["first"]["xyz"]).max()),
            "z_after_20_steps": np.round(z1, 4).tolist(), "z_drift_m": float(np.abs(z1 - z0).max()),
            "xy_drift_m": float(np.linalg.norm(ep["after"]["xyz"][:, :2] - ep["first"]["xyz"][:, :2], axis=1).max()),
            "distractor_px": ep["distractor_px"], "mask_ids": ep["mask_ids"], "distractor_ids": ep["distractor_ids"],
            "mask_excludes_distractors": ep["mask_overlap_px"] == 0
            and not set(ep["mask_ids"]) & set(ep["distractor_ids"]),
            "min_center_dist_m": {k: round(v, 3) for k, v in ep["min_center_dist_m"].items()}}


def bridge(seeds: list[int], out: Path) -> list[np.ndarray]:
    """Every Bridge task with our distractors, every level: reports and one picture per task and level."""
    tiles = []
    for task in D.SLOTS:
        for level in D.LEVELS:
            t = time.time()
            env = SimplerTaskEnv(task, {"distractors": level}, make=D.make_env)
            made = time.time() - t
            for seed in seeds:
                ep, again = _episode(env, seed), None
                again = _episode(env, seed)
                print(json.dumps(_report(task, level, ep, again) | {"make_s": round(made, 1)}), flush=True)
                if seed == seeds[0]:
                    img = ep["frame"].images["main"][::2, ::2]
                    imageio.imwrite(out / f"simpler_distractors_{task}_{level}.png", img)
                    tiles.append(img)
            env.close()
    return tiles


def coke(out: Path) -> None:
    """The Google coke-can tasks with SimplerEnv's own distractors, with the stage stand-in and without."""
    for task in ("google_robot_pick_coke_can", "google_robot_pick_coke_can_distractors"):
        for standin in (True, False):
            env = SimplerTaskEnv(task, {"stage_standin": standin}, make=D.make_env)
            frame = env.reset(seed=0)
            u = env.env.unwrapped
            z0 = [float(u.obj.pose.p[2])] + [float(o.pose.p[2]) for o in u.distractor_objs]
            t = time.time()
            for _ in range(10):
                frame = env.step(HOLD)
            steps_s = 10 / (time.time() - t)
            z1 = [float(u.obj.pose.p[2])] + [float(o.pose.p[2]) for o in u.distractor_objs]
            seg, mask = frame.segmentation["main"], gt_mask(env, frame)
            print(json.dumps({"task": task, "standin": standin, "standin_top": getattr(u, "standin_top", None),
                              "objects": [u.obj.name] + [o.name for o in u.distractor_objs],
                              "z_reset": np.round(z0, 3).tolist(), "z_after_10_steps": np.round(z1, 3).tolist(),
                              "can_px": int((seg == u.obj.id).sum()), "mask_px": int(mask.sum()),
                              "distractor_px": [int((seg == o.id).sum()) for o in u.distractor_objs],
                              "steps_per_s": round(steps_s, 1)}), flush=True)
            if standin:
                name = "cokecan" if task.endswith("can") else "cokecan_distractors"
                imageio.imwrite(out / f"simpler_distractors_{name}.png", frame.images["main"][::2, ::2])
            env.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--skip-bridge", action="store_true")
    ap.add_argument("--skip-coke", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.skip_bridge:
        tiles = bridge(args.seeds, args.out)
        rows = [np.concatenate(tiles[i:i + 2], 1) for i in range(0, len(tiles), 2)]
        imageio.imwrite(args.out / "simpler_distractors.png", np.concatenate(rows, 0))
    if not args.skip_coke:
        coke(args.out)


if __name__ == "__main__":
    main()
