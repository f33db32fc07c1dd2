"""``ivm-ros calvin-sensitivity``: which camera carries an appearance change into a policy's actions (no ROS).

An appearance level (``texture``, ``lighting``, ``camera_jitter``, ``appearance``: nothing added to the world, so
the physics is the clean scene's) changes only what the cameras see. Along the scripted expert's own path through
official chains (the expert reads the state, so the path is the same whatever the images), every step is rendered
twice, clean and under the level (drawn exactly as ``calvin-eval --distraction LEVEL`` draws it for that chain), and
four copies of the agent, each with its own history, see four streams:

- ``clean``: both cameras clean (the reference);
- ``both``: both cameras under the level;
- ``static``: the static camera under the level, the gripper camera clean;
- ``gripper``: the gripper camera under the level, the static camera clean.

Reported per stream, over all steps: ``dev_xyz`` / ``dev_rot``, the mean Euclidean distance of its (7,) action's
xyz / rotation part from the clean copy's (CALVIN relative actions, [-1, 1] per axis); ``gripper_flip``, how often
its gripper command differs from the clean copy's; and ``cos_expert``, the mean cosine between its xyz motion and
the expert's (where the expert moves). A stream whose deviation is close to ``both``'s names the camera that
carries the change. Open loop: the agents' actions never move the arm, so a deviation here is the first step of
what would compound in closed loop.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

STREAMS = ("clean", "both", "static", "gripper")
STATIC_KEYS = ("rgb_static", "seg_static")  # what the static camera renders; the rest comes from the gripper side


def check_appearance_level(level: str) -> None:
    """ValueError unless ``level`` only changes appearance (no bodies: the physics stays the clean scene's)."""
    from ivm_ros_sim.calvin import distractors as dist

    spec = dist.check_level(level)
    if level == "none" or spec.adds_objects:
        names = [n for n, s in dist.LEVELS.items() if n != "none" and not s.adds_objects]
        raise ValueError(f"{level!r} is not an appearance-only level; use one of {', '.join(names)}")


def compose(static_from: dict[str, Any], gripper_from: dict[str, Any]) -> dict[str, Any]:
    """An observation with the static camera's images (``STATIC_KEYS``) of ``static_from`` and everything else
    (gripper camera, robot_obs, scene_obs) of ``gripper_from``."""
    out = dict(gripper_from)
    for k in STATIC_KEYS:
        if k in static_from:
            out[k] = static_from[k]
    return out


@dataclasses.dataclass
class StreamStats:
    """Running sums of one stream's deviations from the clean stream (see the module docstring)."""

    n: int = 0
    xyz: float = 0.0
    rot: float = 0.0
    flips: int = 0
    cos: float = 0.0
    n_cos: int = 0

    def add(self, action: np.ndarray, clean: np.ndarray, expert: np.ndarray) -> None:
        self.n += 1
        self.xyz += float(np.linalg.norm(action[:3] - clean[:3]))
        self.rot += float(np.linalg.norm(action[3:6] - clean[3:6]))
        self.flips += int(np.sign(action[6]) != np.sign(clean[6]))
        e = float(np.linalg.norm(expert[:3]))
        if e > 1e-6:
            self.cos += float(action[:3] @ expert[:3]) / (max(float(np.linalg.norm(action[:3])), 1e-9) * e)
            self.n_cos += 1

    def summary(self) -> dict[str, float]:
        n = max(self.n, 1)
        return {"dev_xyz": self.xyz / n, "dev_rot": self.rot / n, "gripper_flip": self.flips / n,
                "cos_expert": self.cos / max(self.n_cos, 1), "steps": self.n}


def renders(env: Any, level: str, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(clean, level) observations of ``env``'s current state; the level is drawn from ``seed`` (a chain's
    ``seed + index``, as :func:`~ivm_ros_sim.calvin.chains.reset_to_chain` draws it). Leaves the scene clean."""
    from ivm_ros_sim.calvin import distractors as dist

    rendering, env.render = env.render, True
    try:
        dist.apply(env.scene, level, np.random.default_rng(seed))
        shown = env.observe()
        dist.apply(env.scene, "none", np.random.default_rng(0))
        return env.observe(), shown
    finally:
        env.render = rendering


def probe_chain(env: Any, agents: dict[str, Any], chain: Any, level: str, seed: int, subtasks: int, max_steps: int,
                stats: dict[str, StreamStats]) -> int:
    """Runs the expert along ``chain``'s first ``subtasks`` subtasks (stopping at its first failure), feeding the
    four streams to ``agents`` and adding to ``stats``. Returns the subtasks the expert completed."""
    from ivm_ros_sim.calvin.chains import reset_to_chain
    from ivm_ros_sim.eval.protocol import ExpertAgent

    reset_to_chain(env, chain, "none", seed)
    expert = ExpertAgent(env)
    for done_count, task in enumerate(chain.subtasks[:subtasks]):
        expert.reset()
        for a in agents.values():
            a.reset()
        env.begin_subtask(task)
        goal = env.instruction
        for _ in range(max_steps):
            clean, shown = renders(env, level, seed + chain.index)
            obs = {"clean": clean, "both": shown, "static": compose(shown, clean), "gripper": compose(clean, shown)}
            act = expert.step(clean, goal)
            out = {k: np.asarray(agents[k].step(obs[k], goal), np.float64) for k in STREAMS}
            for k in STREAMS:
                stats[k].add(out[k], out["clean"], act)
            if env.step(act)[2]:
                break
        else:
            return done_count
    return min(subtasks, len(chain.subtasks))


def run(settings: Any, level: str, chains: Sequence[Any], subtasks: int, max_steps: int) -> dict[str, Any]:
    """The four streams' summaries over ``chains`` (see the module docstring) for the agent ``settings`` build
    (:class:`~ivm_ros_sim.eval.workers.EvalSettings`)."""
    from ivm_ros_sim.calvin.env import CalvinSceneEnv
    from ivm_ros_sim.eval.workers import build_agent
    from tqdm import tqdm

    check_appearance_level(level)
    env = CalvinSceneEnv(settings.static_size, settings.gripper_size, render=False,  # renders() renders
                         segmentation=settings.segmentation, scene=settings.scene)
    stats = {k: StreamStats() for k in STREAMS}
    completed = []
    try:
        agents = {k: build_agent(settings, env) for k in STREAMS}
        for chain in tqdm(chains, desc=f"sensitivity {level}", unit="chain"):
            completed.append(probe_chain(env, agents, chain, level, settings.seed, subtasks, max_steps, stats))
    finally:
        env.close()
    return {"level": level, "streams": {k: s.summary() for k, s in stats.items()},
            "expert_completed": completed, "n_chains": len(chains)}


def format_table(result: dict[str, Any]) -> str:
    rows = ["| stream | dev_xyz | dev_rot | gripper_flip | cos_expert | steps |", "|---|---|---|---|---|---|"]
    for k, s in result["streams"].items():
        rows.append(f"| {k} | {s['dev_xyz']:.3f} | {s['dev_rot']:.3f} | {s['gripper_flip']:.3f} | "
                    f"{s['cos_expert']:.3f} | {s['steps']} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    from ivm_ros_sim.eval.runs import key_values

    ap = argparse.ArgumentParser(prog="ivm-ros calvin-sensitivity", description=__doc__.split("\n")[0])
    ap.add_argument("--level", required=True, help="an appearance-only distraction level (texture, lighting, ...)")
    ap.add_argument("--policy", default="embedded")
    ap.add_argument("--masking", choices=("on", "off"), default="on")
    ap.add_argument("--model", default="lite", help="masking predictor (lite, groundtruth, ...)")
    ap.add_argument("--wrist-model", choices=("", "groundtruth"), default="",
                    help="mask the gripper camera too (as calvin-eval --wrist-model)")
    ap.add_argument("--policy-config", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--model-config", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--scene", default="D")
    ap.add_argument("--chains", type=int, default=10, help="the first N official chains")
    ap.add_argument("--subtasks", type=int, default=2, help="subtasks per chain the expert walks")
    ap.add_argument("--max-steps", type=int, default=360)
    ap.add_argument("--seed", type=int, default=0, help="distractors of chain i are drawn with seed + i")
    args = ap.parse_args(argv)
    from ivm_ros_sim.calvin.chains import load_chains
    from ivm_ros_sim.eval.workers import EvalSettings, check_settings

    try:
        check_appearance_level(args.level)
        if not 1 <= args.subtasks <= 5 or args.max_steps < 1:
            raise ValueError("--subtasks must be in 1..5 and --max-steps >= 1")
        settings = EvalSettings(policy=args.policy, masking=args.masking == "on", model=args.model,
                                wrist_model=args.wrist_model,
                                policy_config=key_values(args.policy_config, "--policy-config", ap.prog),
                                model_config=key_values(args.model_config, "--model-config", ap.prog), scene=args.scene,
                                distraction=args.level, seed=args.seed, max_steps=args.max_steps)
        check_settings(settings)
        settings, _note = settings.paired()
        if settings.policy == "expert":
            raise ValueError("--policy expert reads the state, not the cameras: nothing to probe")
        result = run(settings, args.level, load_chains(args.chains), args.subtasks, args.max_steps)
    except ValueError as e:
        print(f"calvin-sensitivity: {e}", file=sys.stderr)
        return 2
    print(format_table(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
