"""``ivm-ros sim-data chains``: expert demonstrations of random chains, so a policy sees the states chains reach.

Each chain starts from an official-like symbolic start (:func:`~ivm_ros_sim.calvin.symbolic.random_chain_start`:
the official slots, random yaw, ``jitter`` m of position noise) in one of ``scenes`` (chain k: scenes[k % n]);
then, ``length`` times, a task that can run from the simulator's current symbolic state is drawn (the least
demonstrated so far first, ties at random) and the scripted expert does it with a training paraphrase as its
instruction. A successful subtask is saved as one episode in the ``ivm-ros sim-data demos`` format (plus
``chain``, ``scene``, ``position`` in the chain); the chain ends at the expert's first failure (nothing of that
subtask is kept). ``index.json`` is rewritten after every chain, so an interrupted run continues with ``--resume``
(chain k's draws depend only on ``seed`` and k). The index also counts the expert's attempts and successes per
task from chain states.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from ivm_ros_sim.calvin import distractors as dist
from ivm_ros_sim.calvin import symbolic as S
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.expert import RECORDED, run_plan
from ivm_ros_sim.calvin.scene import check_scene
from tqdm import tqdm

from ivm_ros.datasets import start_index

FORMAT = "ivm_ros_sim.demos/1"


def _pick(candidates: list[str], counts: dict[str, int], rng: np.random.Generator) -> str:
    least = min(counts.get(t, 0) for t in candidates)
    pool = [t for t in candidates if counts.get(t, 0) == least]
    return pool[int(rng.integers(len(pool)))]


def _record_subtask(env: CalvinSceneEnv, task: str, instruction: str, obs: dict[str, np.ndarray],
                    max_steps: int) -> tuple[bool, dict[str, list[np.ndarray]], dict[str, np.ndarray]]:
    """Runs the expert on ``task`` from now: (success, frames + actions, last observation)."""
    env.begin_subtask(task, instruction)
    frames, actions, obs, _, _ = run_plan(env, task, obs, max_steps, record=True)
    rec = {k: frames[k] for k in RECORDED}
    rec["actions"] = actions
    return env.succeeded, rec, obs


def _chain(env: CalvinSceneEnv, k: int, seed: int, length: int, jitter: float, distraction: str,
           counts: dict[str, int], max_steps: int) -> list[tuple[str, str, dict[str, list[np.ndarray]]]]:
    """One chain: [(task, instruction, recording)] of its successful subtasks, in order."""
    rng = np.random.default_rng([seed, k])
    sym = S.random_chain_start(rng)
    off = {"table": env.scene.offsets["table"], "plank": env.scene.offsets["base__plank"]}
    robot_obs, scene_obs = S.start_state(sym, rng, jitter, off)
    obs, _ = env.reset_to_state(robot_obs, scene_obs, distraction, seed=int(rng.integers(2**31)))
    for _ in range(10):  # let the blocks settle before the first subtask
        obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))
    done: list[tuple[str, str, dict[str, list[np.ndarray]]]] = []
    for _ in range(length):
        candidates = S.feasible_tasks(S.read_state(env))
        if not candidates:
            break
        task = _pick(candidates, counts, rng)
        instruction = T.instruction(task, rng, "train")
        counts[f"attempts/{task}"] = counts.get(f"attempts/{task}", 0) + 1
        ok, rec, obs = _record_subtask(env, task, instruction, obs, max_steps)
        if not ok:
            break
        counts[task] = counts.get(task, 0) + 1
        done.append((task, instruction, rec))
    return done


def generate_chain_demos(out: Path, chains: int, seed: int = 0, scenes: tuple[str, ...] = ("D",), length: int = 5,
                         jitter: float = 0.02, distraction: str = "none", static_size: int = 200,
                         gripper_size: int = 84, max_steps: int = 360, resume: bool = False,
                         progress: bool = True) -> dict[str, Any]:
    """Records the demonstrations of ``chains`` chains into ``out`` (see the module docstring); returns the index."""
    for sc in scenes:
        check_scene(sc)
    dist.check_level(distraction)
    out.mkdir(parents=True, exist_ok=True)
    args = {"seed": seed, "scenes": list(scenes), "length": length, "jitter": jitter, "distraction": distraction,
            "static_size": static_size, "gripper_size": gripper_size, "max_steps": max_steps,
            "instruction_split": "train"}
    index = start_index(out, args, resume, "sim-data chains", {"format": FORMAT, "kind": "chains", "args": args,
                                                              "chains_done": 0, "counts": {}, "episodes": []})
    counts: dict[str, int] = index["counts"]
    envs: dict[str, CalvinSceneEnv] = {}
    t0, steps = time.perf_counter(), 0
    bar = tqdm(range(index["chains_done"], chains), desc="chains", unit="chain", disable=not progress,
               initial=index["chains_done"], total=chains)
    try:
        for k in bar:
            scene = scenes[k % len(scenes)]
            if scene not in envs:
                envs[scene] = CalvinSceneEnv(static_size, gripper_size, scene=scene)
            for pos, (task, instruction, rec) in enumerate(_chain(envs[scene], k, seed, length, jitter,
                                                                  distraction, counts, max_steps)):
                name = f"chain{k:05d}_{pos}.npz"
                arrays = {key: np.stack(v) for key, v in rec.items()}
                np.savez_compressed(out / name, **arrays, task=np.array(task), instruction=np.array(instruction))
                index["episodes"].append({"file": name, "task": task, "instruction": instruction, "chain": k,
                                          "position": pos, "scene": scene, "distraction": distraction,
                                          "success": True, "steps": len(rec["actions"])})
                steps += len(rec["actions"])
            index["chains_done"] = k + 1
            (out / "index.json").write_text(json.dumps(index, indent=1))
            bar.set_postfix(episodes=len(index["episodes"]), steps_per_s=f"{steps / (time.perf_counter() - t0):.1f}")
    finally:
        bar.close()
        for env in envs.values():
            env.close()
    return index


def add_parser(sub: Any) -> None:
    """The ``chains`` subcommand of ``ivm-ros sim-data``."""
    c = sub.add_parser("chains", help="expert demonstrations of random chains (states chains reach), for training")
    c.add_argument("--out", type=Path, default=Path("out/sim_data/chains"))
    c.add_argument("--chains", type=int, default=10)
    c.add_argument("--scenes", default="D", help="comma-separated scenes (A,B,C for the ABC->D split)")
    c.add_argument("--length", type=int, default=5, help="subtasks per chain")
    c.add_argument("--jitter", type=float, default=0.02, help="m of start position noise around the official slots")
    c.add_argument("--distraction", default="none", choices=tuple(dist.LEVELS))
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--resume", action="store_true")


def run(args: Any) -> None:
    scenes = tuple(s for s in args.scenes.split(",") if s)
    index = generate_chain_demos(args.out, args.chains, args.seed, scenes, args.length, args.jitter,
                                 args.distraction, resume=args.resume)
    rates = expert_rates(index)
    frames = sum(e["steps"] for e in index["episodes"])
    print(f"wrote {len(index['episodes'])} episodes ({frames} frames) of {index['chains_done']} chains to {args.out}")
    print(f"expert success from chain states: {np.mean(list(rates.values())):.3f} mean over {len(rates)} tasks; "
          f"lowest: " + ", ".join(f"{t} {r:.2f}" for t, r in sorted(rates.items(), key=lambda kv: kv[1])[:5]))


def expert_rates(index: dict[str, Any]) -> dict[str, float]:
    """The expert's success rate per task from chain states, from an index's counts."""
    counts = index["counts"]
    return {t: counts.get(t, 0) / counts[f"attempts/{t}"] for t in T.all_tasks() if counts.get(f"attempts/{t}")}
