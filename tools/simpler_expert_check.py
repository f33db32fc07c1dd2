"""Success of the scripted WidowX expert (:mod:`ivm_ros_sim.simpler.expert`) on the real SimplerEnv.

Runs each task's episodes (SimplerEnv's Bridge placements, ``episode_id`` 0..N-1) to the env's time limit
through :class:`~ivm_ros_sim.simpler.env.SimplerTaskEnv` (the 640x480 third-person camera is rendered every
step) and reports SimplerEnv's metric, success at the last step, beside success at any step; prints one line
per episode and per task and a JSON line last. ``--gif-dir`` writes one GIF per task of its first episode
(3rd_view_camera, every 2nd frame, 320x240) as ``simpler_expert_<task>.gif``.

Needs SimplerEnv (ManiSkill2_real2sim) installed, e.g. in /opt/simpler_venv on a CPU-only machine::

    source /opt/simpler_cpu/env.sh
    PYTHONPATH=/tmp/simpler_path OMP_NUM_THREADS=1 /opt/simpler_venv/bin/python tools/simpler_expert_check.py \
        --episodes 24 --gif-dir docs

(``/tmp/simpler_path`` holds links ``ivm_ros_sim -> sim`` and ``ivm_ros -> ivm_ros``.) ``--no-render`` makes the
same env with ``obs_mode="state_dict"`` (no cameras: the same physics, controller and action conversion,
~10x faster on a CPU) and steps it with :func:`~ivm_ros_sim.simpler.actions.policy_to_env` as
:class:`SimplerTaskEnv` does; no GIFs then.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from ivm_ros_sim.simpler import actions
from ivm_ros_sim.simpler.env import TASKS, Frame, SimplerTaskEnv, make_simpler
from ivm_ros_sim.simpler.expert import SimplerExpert

BRIDGE_TASKS = ("widowx_carrot_on_plate", "widowx_spoon_on_towel", "widowx_stack_cube",
                "widowx_put_eggplant_in_basket")


class StateOnlyEnv:
    """The task's env without cameras (``obs_mode="state_dict"``), with SimplerTaskEnv's ``task``, ``env``,
    ``control_hz``, ``reset`` and ``step`` (Frames without images)."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.env = make_simpler(task, obs_mode="state_dict")
        self.control_hz = float(self.env.unwrapped.control_freq)
        self.gripper_map = actions.GripperMap(actions.WIDOWX)
        self.steps = 0

    def reset(self, seed: int, episode_id: int) -> Frame:
        self.env.reset(seed=seed, options={"obj_init_options": {"episode_id": episode_id}})
        self.gripper_map.reset()
        self.steps = 0
        return Frame({}, {})

    def step(self, policy_action: np.ndarray) -> Frame:
        _, _, _, truncated, info = self.env.step(actions.policy_to_env(policy_action, self.gripper_map))
        self.steps += 1
        return Frame({}, {}, bool(info.get("success", False)), self.steps, bool(truncated), dict(info))

    def close(self) -> None:
        self.env.close()


def run_episode(env: SimplerTaskEnv | StateOnlyEnv, expert: SimplerExpert, seed: int, episode_id: int,
                frames: list[np.ndarray] | None = None) -> dict[str, Any]:
    """One episode to the time limit; ``frames`` collects every 2nd main image at half size (240x320x3)."""
    frame = env.reset(seed=seed, episode_id=episode_id)
    expert.reset()
    ever, t0 = False, time.perf_counter()
    while True:
        if frames is not None and frame.steps % 2 == 0:
            frames.append(frame.images["main"][::2, ::2].copy())
        frame = env.step(expert.act(frame))
        ever |= frame.success
        if frame.truncated:
            break
    elapsed = time.perf_counter() - t0
    return {"episode_id": episode_id, "success": frame.success, "ever_success": ever, "steps": frame.steps,
            "phases": "->".join(expert.history), "steps_per_s": round(frame.steps / elapsed, 2)}


def write_gif(path: Path, frames: list[np.ndarray], fps: float, colors: int = 128) -> None:
    """A looping GIF of (H, W, 3) uint8 frames, one palette (from the first frame) for all: ~0.25 MB for 30
    frames of 320x240."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    palette = images[0].quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    quantized = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    quantized[0].save(path, save_all=True, append_images=quantized[1:], duration=round(1000 / fps), loop=0,
                      optimize=True)


def check_task(task: str, episodes: int, seed: int, gif_dir: Path | None, render: bool = True) -> dict[str, Any]:
    """All episodes of one task; returns the task's summary."""
    if task not in TASKS:
        raise SystemExit(f"unknown task {task!r}")
    env = SimplerTaskEnv(task) if render else StateOnlyEnv(task)
    gif_dir = gif_dir if render else None
    expert = SimplerExpert(env)
    rows, frames = [], ([] if gif_dir is not None else None)
    for episode_id in range(episodes):
        row = run_episode(env, expert, seed, episode_id, frames if episode_id == 0 else None)
        rows.append(row)
        print(task, json.dumps(row), flush=True)
    env.close()
    if gif_dir is not None and frames:
        write_gif(gif_dir / f"simpler_expert_{task}.gif", frames, fps=env.control_hz / 2)
    summary = {"task": task, "episodes": len(rows), "render": render,
               "success": sum(r["success"] for r in rows) / len(rows),
               "ever_success": sum(r["ever_success"] for r in rows) / len(rows),
               "failed": [r["episode_id"] for r in rows if not r["success"]],
               "steps_per_s": round(float(np.mean([r["steps_per_s"] for r in rows])), 2)}
    print(f"{task}: success {summary['success']:.3f} ({len(rows)} episodes, {summary['steps_per_s']} steps/s)",
          flush=True)
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(BRIDGE_TASKS))
    ap.add_argument("--episodes", type=int, default=24, help="episode ids 0..N-1 (Bridge tasks have 24)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gif-dir", type=Path, default=None)
    ap.add_argument("--no-render", action="store_true", help="state observations only (no cameras, no GIFs)")
    args = ap.parse_args(argv)
    summaries = [check_task(t, args.episodes, args.seed, args.gif_dir, not args.no_render) for t in args.tasks]
    print(json.dumps({"expert": "ivm_ros_sim.simpler.expert.SimplerExpert", "seed": args.seed,
                      "tasks": {s["task"]: s for s in summaries}}))


if __name__ == "__main__":
    main()
