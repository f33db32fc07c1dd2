"""``ivm-ros sim-data simpler-demos``: scripted-expert demonstrations in SimplerEnv's WidowX tasks, for the embedded
policy (``ivm-ros sim-train-policy --demos DIR`` trains on them; the index says ``robot: widowx``).

For every seed s, task and placement e (0 .. ``episodes`` - 1) the task env resets to placement e with seed
``s * 1000 + e`` (:data:`SEED_STRIDE`) and the expert (default :class:`~ivm_ros_sim.simpler.expert.SimplerExpert`)
acts until the env's time limit (Bridge 60 steps, eggplant 120) or ``max_steps``, as ``simpler-eval`` runs an
episode; the episode is kept when the env reports success at its last step.

``noise`` (DART-style disturbance, :class:`Noise`): the env executes the expert's action plus Gaussian noise on the
xyz deltas (m) and the yaw delta (rad), drawn from the env seed, while the *clean* expert action is recorded; the
expert plans from the state it finds, so the demos show it correcting the drift a learned policy makes (behaviour
cloning on noise-free demos sees only the expert's own path). Visual-matching episodes do not vary with the seed,
so seeds with noise are the way to more than one demonstration per placement. Written in the ``ivm-ros sim-data
demos`` format (``ivm_ros_sim.demos/1``), one ``<task>_s<seed>_e<placement>.npz`` per kept episode, T = actions:

- ``rgb_static`` (T, H, W, 3) uint8: the third-person camera (640x480) resized to :data:`STATIC_SIZE` (H, W) px
  (half size, aspect kept; lite and the policy squash it to their own squares as they squash the full frame at
  deployment), the frame the action was chosen on;
- ``rgb_gripper`` (T, 128, 128, 3) uint8: the base camera as rendered (the WidowX has no wrist camera in
  SimplerEnv; the WidowX policy arch uses no second camera, the data keeps it for others);
- ``mask_static`` (T, H, W) uint8 (0/1): the simulator's ground-truth instruction mask of each stored frame
  (:func:`~ivm_ros_sim.simpler.masks.gt_mask`: source and target object, never a distractor), nearest-resized to
  the stored size; for ``ivm-ros sim-train-policy --masks groundtruth``. Left out when the env renders no
  segmentation;
- ``robot_obs`` (T, 8) float32: the WidowX proprio vector (:data:`ivm_ros.policies.embedded.robots.WIDOWX_PROPRIO`);
- ``actions`` (T, 7) float32: the expert's policy actions (m, rad, gripper +1 open / -1 closed;
  :mod:`~ivm_ros_sim.simpler.actions`); ``task``, ``instruction`` (the env's).

``index.json`` (rewritten after every episode, so ``--resume`` continues an interrupted run, or extends it with more
tasks, placements or seeds under the same settings) holds the settings, the episodes attempted (``done``), the kept
ones and the expert's attempts and successes per task (``counts``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from ivm_ros.datasets import start_index

FORMAT = "ivm_ros_sim.demos/1"
STATIC_SIZE = (240, 320)  # (H, W) px of the stored third-person frames
SEED_STRIDE = 1000  # env seed = seed * SEED_STRIDE + placement
EXPERT = "ivm_ros_sim.simpler.expert:SimplerExpert"

@dataclasses.dataclass(frozen=True)
class Noise:
    """Executed-action noise: std of the xyz deltas (m per step) and of the yaw delta (rad per step); 0: none."""

    xyz: float = 0.0
    yaw: float = 0.0

    def __post_init__(self) -> None:
        if not (self.xyz >= 0 and self.yaw >= 0):
            raise ValueError(f"noise std must be >= 0, got xyz {self.xyz} m, yaw {self.yaw} rad")

    def disturb(self, action: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(7,) policy action -> the action the env executes (a copy; gripper and roll/pitch untouched)."""
        out = np.array(action, np.float64)
        if self.xyz:
            out[:3] += rng.normal(0.0, self.xyz, 3)
        if self.yaw:
            out[5] += rng.normal(0.0, self.yaw)
        return out


ExpertFactory = Callable[[Any], Any]  # task env -> expert with reset() and act(frame) -> (7,) policy action


def load_expert(spec: str) -> ExpertFactory:
    """``module:Class`` -> the class (ValueError naming the spec when it cannot be imported)."""
    module, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"--expert {spec!r} cannot be loaded ({exc}); give module:Class") from exc


def record_episode(env: Any, expert: Any, seed: int, episode: int, size: tuple[int, int] = STATIC_SIZE,
                   max_steps: int = 0, noise: Noise = Noise()) -> tuple[bool, dict[str, np.ndarray]]:
    """One expert episode of ``env`` (a :class:`~ivm_ros_sim.simpler.env.SimplerTaskEnv`) at placement
    ``episode`` with env seed ``seed``: (success at the last step, the arrays of the module docstring); ``noise``
    disturbs the executed actions (drawn from ``seed``), the recorded ones are the expert's."""
    from ivm_ros_sim.simpler.masks import gt_mask

    frame = env.reset(seed, episode)
    expert.reset()
    rng = np.random.default_rng(seed)
    rec: dict[str, list[np.ndarray]] = {"rgb_static": [], "rgb_gripper": [], "robot_obs": [], "actions": [],
                                        "mask_static": []}
    while not frame.truncated and not (max_steps and len(rec["actions"]) >= max_steps):
        if frame.proprio is None:
            raise ValueError(f"{env.task}: the frame has no WidowX proprio (simpler-demos records WidowX tasks)")
        action = np.asarray(expert.act(frame), np.float64).reshape(7)
        main = frame.images["main"]
        rec["rgb_static"].append(cv2.resize(main, (size[1], size[0]), interpolation=cv2.INTER_AREA)
                                 if main.shape[:2] != size else main)
        rec["rgb_gripper"].append(frame.images.get("base", np.zeros((0, 0, 3), np.uint8)))
        if "main" in frame.segmentation:
            rec["mask_static"].append(cv2.resize(gt_mask(env, frame).astype(np.uint8), (size[1], size[0]),
                                                 interpolation=cv2.INTER_NEAREST))
        rec["robot_obs"].append(frame.proprio)
        rec["actions"].append(action)
        frame = env.step(noise.disturb(action, rng))
    arrays = {k: np.stack(v).astype(np.float32 if k in ("robot_obs", "actions") else np.uint8)
              for k, v in rec.items() if v or k != "mask_static"}
    return bool(frame.success), arrays


def generate_simpler_demos(out: Path, tasks: tuple[str, ...], episodes: int, seeds: tuple[int, ...],
                           variant: tuple[str, dict[str, Any]] = ("visual_matching", {}),
                           size: tuple[int, int] = STATIC_SIZE, max_steps: int = 0, resume: bool = False,
                           make: Callable[..., Any] | None = None, expert: ExpertFactory | str = EXPERT,
                           progress: bool = True, noise: Noise = Noise()) -> dict[str, Any]:
    """Records the demonstrations into ``out`` (module docstring) and returns the index. ``make``: the env factory
    (default SimplerEnv with our variants; tests pass SimplerEnvDouble's); ``expert``: a factory or ``module:Class``."""
    from ivm_ros_sim.simpler.env import SimplerTaskEnv

    out.mkdir(parents=True, exist_ok=True)
    name = expert if isinstance(expert, str) else f"{expert.__module__}:{expert.__qualname__}"
    factory = load_expert(expert) if isinstance(expert, str) else expert
    args = {"variant": variant[0], "variant_kwargs": variant[1], "static_size": list(size), "max_steps": max_steps,
            "expert": name, **({"noise": dataclasses.asdict(noise)} if noise != Noise() else {})}
    # ^ what a resumed run must share; tasks, placements and seeds may grow
    index = start_index(out, args, resume, "sim-data simpler-demos", {"format": FORMAT, "kind": "simpler",
                        "robot": "widowx", "args": args, "counts": {}, "done": [], "episodes": []})
    todo = [(t, s, e) for s in seeds for t in tasks for e in range(episodes) if _key(t, s, e) not in index["done"]]
    bar = tqdm(todo, desc="simpler demos", unit="ep", disable=not progress)
    env: Any = None
    try:
        for task, seed, ep in bar:
            if env is None or env.task != task:
                if env is not None:
                    env.close()
                env = SimplerTaskEnv(task, variant[1], make)
            t0 = time.perf_counter()
            ok, arrays = record_episode(env, factory(env), seed * SEED_STRIDE + ep, ep, size, max_steps, noise)
            _keep(out, index, task, seed, ep, env.instruction, ok, arrays, time.perf_counter() - t0)
            bar.set_postfix(kept=len(index["episodes"]))
    finally:
        bar.close()
        if env is not None:
            env.close()
    return index


def _key(task: str, seed: int, episode: int) -> str:
    return f"{task}_s{seed}_e{episode:03d}"


def _keep(out: Path, index: dict[str, Any], task: str, seed: int, ep: int, instruction: str, ok: bool,
          arrays: dict[str, np.ndarray], seconds: float) -> None:
    """Writes a successful episode's file, counts the attempt, rewrites index.json."""
    key = _key(task, seed, ep)
    counts = index["counts"]
    counts[f"attempts/{task}"] = counts.get(f"attempts/{task}", 0) + 1
    if ok:
        counts[task] = counts.get(task, 0) + 1
        np.savez_compressed(out / f"{key}.npz", **arrays, task=np.array(task), instruction=np.array(instruction))
        index["episodes"].append({"file": f"{key}.npz", "task": task, "instruction": instruction, "seed": seed,
                                  "placement": ep, "variant": index["args"]["variant"], "success": True,
                                  "steps": len(arrays["actions"]), "seconds": round(seconds, 2)})
    index["done"].append(key)
    index["seconds"] = round(index.get("seconds", 0.0) + seconds, 2)
    (out / "index.json").write_text(json.dumps(index, indent=1))


def expert_rates(index: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Task -> (expert successes, attempts) from an index's counts."""
    c = index["counts"]
    return {k.split("/", 1)[1]: (c.get(k.split("/", 1)[1], 0), v) for k, v in c.items() if k.startswith("attempts/")}


def add_parser(sub: Any) -> None:
    """The ``simpler-demos`` subcommand of ``ivm-ros sim-data``."""
    from ivm_ros_sim.eval.simpler_jobs import BACKENDS, WIDOWX_TASKS

    c = sub.add_parser("simpler-demos", help="SimplerEnv WidowX expert demonstrations (for the embedded policy)")
    c.add_argument("--out", type=Path, default=Path("out/sim_data/simpler_demos"))
    c.add_argument("--tasks", default=",".join(WIDOWX_TASKS), help="comma-separated SimplerEnv WidowX tasks")
    c.add_argument("--episodes", type=int, default=24, help="object placements per task and seed (0 .. N-1)")
    c.add_argument("--seeds", default="0", help="comma-separated seeds; env seed = seed * 1000 + placement")
    c.add_argument("--variant", default="visual_matching", metavar="NAME[=JSON]",
                   help="scene variant, as simpler-eval's --variant (e.g. distractors_2)")
    c.add_argument("--size", default=f"{STATIC_SIZE[0]}x{STATIC_SIZE[1]}", help="stored third-person frames, HxW px")
    c.add_argument("--max-steps", type=int, default=0, help="steps per episode (0: the env's time limit)")
    c.add_argument("--noise-xyz", type=float, default=0.0, metavar="M",
                   help="std of Gaussian noise on the executed xyz deltas, m per step (the clean expert action is "
                   "recorded: DART-style recovery data; 0: none)")
    c.add_argument("--noise-yaw", type=float, default=0.0, metavar="RAD",
                   help="std of Gaussian noise on the executed yaw delta, rad per step")
    c.add_argument("--expert", default=EXPERT, help="module:Class taking the task env (default: the scripted expert)")
    c.add_argument("--backend", choices=BACKENDS, default="simpler", help="double: SimplerEnvDouble (tests)")
    c.add_argument("--resume", action="store_true")


def run(args: Any) -> None:
    from ivm_ros_sim.eval.simpler_jobs import parse_variant
    from ivm_ros_sim.eval.simpler_workers import env_maker

    h, _, w = args.size.partition("x")
    tasks = tuple(t for t in args.tasks.split(",") if t)
    seeds = tuple(int(s) for s in args.seeds.split(",") if s)
    if args.episodes < 1 or not tasks or not seeds or args.max_steps < 0:
        raise ValueError("--episodes must be >= 1, --max-steps >= 0, and --tasks and --seeds non-empty")
    t0 = time.perf_counter()
    index = generate_simpler_demos(args.out, tasks, args.episodes, seeds, parse_variant(args.variant),
                                   (int(h), int(w)), args.max_steps, args.resume, env_maker(args.backend), args.expert,
                                   noise=Noise(args.noise_xyz, args.noise_yaw))
    frames = sum(e["steps"] for e in index["episodes"])
    mb = sum((args.out / e["file"]).stat().st_size for e in index["episodes"]) / 1e6
    print(f"wrote {len(index['episodes'])} episodes ({frames} frames, {mb:.1f} MB) to {args.out} in "
          f"{time.perf_counter() - t0:.0f} s")
    for task, (ok, n) in sorted(expert_rates(index).items()):
        print(f"expert {task}: {ok}/{n} successful")
