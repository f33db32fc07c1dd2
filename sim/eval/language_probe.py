"""``ivm-ros sim-language-probe``: how a policy's commands change with the instruction, open loop on expert frames.

For each task, the first ``--episodes`` successful episodes of a demos folder (``ivm-ros sim-data chains``) are
replayed frame by frame into an embedded policy checkpoint twice: once with the instruction the episode recorded
(a training paraphrase) and once with CALVIN's evaluation sentence (or ``--sentence TEXT``). Masked checkpoints get
each frame masked by the lite model for that same sentence, as the masking node would. Per (checkpoint, task,
sentence) it reports how well the first action of each predicted chunk agrees with the expert's action:

- ``cos``: mean cosine between the predicted and the expert's xyz motion (1: same direction on every frame);
- ``sign``: fraction of frames where the predicted motion has the expert's sign on the expert's largest motion axis
  (xyz or yaw);
- ``xyz``, ``yaw``: the mean predicted commands (CALVIN relative actions, [-1, 1]).

A sentence that leaves ``cos``/``sign`` well below the recorded paraphrase's means the policy does not understand
the evaluation language for that task (seen in session 20: rotate left and the slider). Prints a table and, last,
one JSON line with the rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: the two runs per task: the episode's recorded paraphrase, then CALVIN's evaluation sentence ("given" when
#: ``--sentence`` replaces it)
SENTENCES = ("recorded", "eval")


def episodes_by_task(demos: str | Path, tasks: Sequence[str], per_task: int) -> dict[str, list[dict[str, Any]]]:
    """The first ``per_task`` successful episodes of each task in ``demos``: dicts of rgb_static (T, H, W, 3) uint8,
    rgb_gripper (T, h, w, 3) uint8, robot_obs (T, 15) float32, actions (T, 7) float32, instruction (str).
    ValueError naming a task with no episode."""
    from ivm_ros.policies.embedded.data import demo_entries

    _, entries = demo_entries(demos)
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in tasks}
    for root, entry in entries:
        task = str(entry["task"])
        if task not in out or len(out[task]) >= per_task:
            continue
        with np.load(root / entry["file"], allow_pickle=False) as z:
            out[task].append({"rgb_static": z["rgb_static"], "rgb_gripper": z["rgb_gripper"],
                              "robot_obs": z["robot_obs"].astype(np.float32),
                              "actions": z["actions"].astype(np.float32), "instruction": str(entry["instruction"])})
    missing = [t for t, eps in out.items() if not eps]
    if missing:
        raise ValueError(f"no successful episode of {missing} in {demos}")
    return out


def agreement(predicted: np.ndarray, expert: np.ndarray) -> dict[str, Any]:
    """predicted, expert: (N, 7) first actions and the expert's. cos, sign (see the module docstring), mean xyz, yaw."""
    p, e = predicted[:, :3], expert[:, :3]
    cos = np.sum(p * e, axis=1) / (np.linalg.norm(p, axis=1) * np.linalg.norm(e, axis=1) + 1e-6)
    axes = [0, 1, 2, 5]
    main = np.take(axes, np.argmax(np.abs(expert[:, axes]), axis=1))
    rows = np.arange(len(expert))
    sign = np.sign(predicted[rows, main]) == np.sign(expert[rows, main])
    return {"cos": round(float(cos.mean()), 3), "sign": round(float(sign.mean()), 3),
            "xyz": [round(float(v), 3) for v in predicted[:, :3].mean(0)],
            "yaw": round(float(predicted[:, 5].mean()), 3)}


def probe_checkpoint(path: str, episodes: dict[str, list[dict[str, Any]]], sentence: str | None, lite: str
                     ) -> list[dict[str, Any]]:
    """Rows (one per task and sentence kind) for one embedded checkpoint; ``sentence`` replaces the evaluation
    sentence when given. ``lite``: the lite checkpoint that masks the frames of a masked policy."""
    from ivm_ros_sim.calvin.tasks import eval_sentences

    from ivm_ros.models.registry import load_predictor
    from ivm_ros.pipeline import MaskingPipeline
    from ivm_ros.policies.base import Observation
    from ivm_ros.policies.embedded.policy import EmbeddedConfig, EmbeddedModelPolicy

    policy = EmbeddedModelPolicy(EmbeddedConfig(checkpoint=path, warmup=False))
    if policy.arch.robot != "calvin":
        policy.close()
        raise ValueError(f"{path} drives the {policy.arch.robot} robot; the probe replays CALVIN demonstrations")
    masked = policy.info.get("masking", "none") != "none"
    lite = policy.info.get("lite") or lite  # the lite model it was trained on, when its file says
    pipeline = MaskingPipeline(load_predictor("lite", {"checkpoint": lite})) if masked else None
    rows = []
    for task, eps in episodes.items():
        for kind in (SENTENCES[0], "given" if sentence else SENTENCES[1]):
            predicted, expert = [], []
            for ep in eps:
                text = ep["instruction"] if kind == "recorded" else (sentence or eval_sentences()[task])
                policy.reset(text)
                for i in range(len(ep["actions"])):
                    image = ep["rgb_static"][i]
                    if pipeline is not None:
                        image = pipeline.run(image, "rgb8", text).masked
                    chunk = policy.act(Observation(image, ep["rgb_gripper"][i], ep["robot_obs"][i]))
                    predicted.append(chunk[0])
                expert.append(ep["actions"])
            rows.append({"checkpoint": path, "masking": policy.info.get("masking", "none"), "task": task,
                         "sentence": kind, "frames": len(predicted),
                         **agreement(np.array(predicted), np.concatenate(expert))})
    policy.close()
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'checkpoint':<44} {'task':<26} {'sentence':<9} {'cos':>6} {'sign':>6}  xyz / yaw"]
    for r in rows:
        name = Path(r["checkpoint"]).name[-44:]
        lines.append(f"{name:<44} {r['task']:<26} {r['sentence']:<9} {r['cos']:>6.3f} {r['sign']:>6.3f}  "
                     f"{r['xyz']} / {r['yaw']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ivm-ros sim-language-probe", description=__doc__.split("\n")[0])
    ap.add_argument("--demos", required=True, help="a `sim-data chains` folder (the expert's frames)")
    ap.add_argument("--checkpoint", required=True,
                    help="embedded policy .msgpack files (comma-separated), or shipped variants (calvin_masked, ...)")
    ap.add_argument("--tasks", required=True, help="comma-separated CALVIN tasks")
    ap.add_argument("--episodes", type=int, default=4, help="episodes per task")
    ap.add_argument("--sentence", default=None, help="use this sentence instead of CALVIN's evaluation sentence")
    ap.add_argument("--lite", default="lite_v2",
                    help="lite checkpoint masking a masked policy's frames when its file does not name one")
    args = ap.parse_args(argv)
    from ivm_ros_sim.calvin.tasks import check_task

    from ivm_ros.policies.embedded.checkpoint import SHIPPED

    tasks = [t for t in args.tasks.split(",") if t]
    try:
        for t in tasks:
            check_task(t)
        if args.episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
        paths = [str(SHIPPED[c]) if c in SHIPPED else c for c in args.checkpoint.split(",") if c]
        for p in paths:
            if not Path(p).is_file():
                raise ValueError(f"no checkpoint file {p} (and not a shipped variant: {sorted(SHIPPED)})")
        episodes = episodes_by_task(args.demos, tasks, args.episodes)
        rows = [r for p in paths for r in probe_checkpoint(p, episodes, args.sentence, args.lite)]
    except (ValueError, FileNotFoundError) as e:
        print(f"sim-language-probe: {e}", file=sys.stderr)
        return 2
    print(format_table(rows))
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
