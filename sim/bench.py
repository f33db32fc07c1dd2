"""``ivm-ros bench sim``: simulator throughput on this machine.

Measures env steps/s with both cameras rendered (CALVIN sizes by default, the expert driving), render fps per
camera, physics+control-only steps/s, IVM data-engine samples/s, CALVIN protocol chains/s with the expert
(official chains, no images) and the evaluation's agent steps/s (lite masking + the embedded policy on rendered
frames, as ``calvin-eval --policy embedded`` runs them, beside the env step alone). Prints a table; ``--json``
adds one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.expert import Expert
from ivm_ros_sim.data.engine import generate_ivm


def _env_steps(env: CalvinSceneEnv, steps: int, task: str, distraction: str) -> float:
    env.reset(seed=0, task=task, distraction=distraction)
    plan = Expert(env).plan(task)
    idle = np.array([0, 0, 0, 0, 0, 0, 1.0])
    t0 = time.perf_counter()
    for _ in range(steps):
        a = next(plan, None)
        env.step(idle if a is None else a)
    return steps / (time.perf_counter() - t0)


def _protocol(static_size: int, gripper_size: int, chains: int = 3, agent_steps: int = 20) -> dict[str, float]:
    """Expert chains/s on the first ``chains`` official chains; agent steps/s (lite + embedded policy)."""
    from ivm_ros_sim.calvin.chains import load_chains
    from ivm_ros_sim.eval.protocol import ExpertAgent, run_chain
    from ivm_ros_sim.eval.workers import EvalSettings, build_agent

    out: dict[str, float] = {}
    env = CalvinSceneEnv(static_size, gripper_size, render=False)
    try:
        t0 = time.perf_counter()
        for chain in load_chains(chains):
            run_chain(env, ExpertAgent(env), chain)
        out["calvin_chains_per_s_expert"] = chains / (time.perf_counter() - t0)
        env.render = True
        agent = build_agent(EvalSettings(policy="embedded", model="lite"), env)
        obs, _ = env.reset_to_state(load_chains(1)[0].robot_obs, load_chains(1)[0].scene_obs)
        agent.step(obs, "open the drawer")  # compiles / warms up
        t0 = time.perf_counter()
        for _ in range(agent_steps):
            agent.step(obs, "open the drawer")
        out["agent_steps_per_s_lite_embedded"] = agent_steps / (time.perf_counter() - t0)
        agent.close()
    finally:
        env.close()
    return out


def run(steps: int = 60, static_size: int = 200, gripper_size: int = 84, samples: int = 30) -> dict[str, float]:
    """Returns the measured numbers (see module docstring)."""
    out: dict[str, float] = {}
    env = CalvinSceneEnv(static_size, gripper_size)
    try:
        out["env_steps_per_s_both_cameras"] = _env_steps(env, steps, "open_drawer", "none")
        out["env_steps_per_s_both_cameras_large_distraction"] = _env_steps(env, steps, "open_drawer", "large")
        env.reset(seed=0, task="open_drawer")
        for cam in ("static", "gripper"):
            t0 = time.perf_counter()
            for _ in range(20):
                env.scene.render(cam)
            out[f"render_fps_{cam}"] = 20 / (time.perf_counter() - t0)
        env.render = False
        out["env_steps_per_s_no_render"] = _env_steps(env, steps, "open_drawer", "none")
    finally:
        env.close()
    out.update(_protocol(static_size, gripper_size))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate_ivm(Path(tmp), samples, seed=0, size=static_size, progress=False)
        out["ivm_data_samples_per_s"] = samples / (time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ivm-ros bench sim", description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=60, help="env steps per measurement")
    ap.add_argument("--static-size", type=int, default=200)
    ap.add_argument("--gripper-size", type=int, default=84)
    ap.add_argument("--samples", type=int, default=30, help="IVM samples for the data-engine measurement")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.samples < 1:
        ap.error("--steps and --samples must be positive")
    res = run(args.steps, args.static_size, args.gripper_size, args.samples)
    print(f"sim bench: static {args.static_size}px + gripper {args.gripper_size}px, PyBullet tiny renderer, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    for k, v in res.items():
        print(f"  {k:<48} {v:8.1f}")
    target = 15.0
    ok = res["env_steps_per_s_both_cameras"] >= target
    print(f"  target >= {target:.0f} env steps/s with both cameras: {'met' if ok else 'NOT met'}")
    if args.json:
        print(json.dumps({"bench": "sim", "static_size": args.static_size, "gripper_size": args.gripper_size,
                          **{k: round(v, 2) for k, v in res.items()}}))
    return 0
