"""``ivm-ros calvin-eval``: CALVIN's evaluation protocol (:mod:`ivm_ros_sim.eval.protocol`) on the official chains.

    ivm-ros calvin-eval --policy expert --chains 20                      # the harness check
    ivm-ros calvin-eval --policy embedded --masking on --model lite --chains 200 --workers 2 --out out/ev
    ivm-ros calvin-eval ... --address 10.0.0.1:6379 --workers 64          # fan out over a Ray cluster

Writes into ``--out``: ``settings.json``, ``chains.jsonl`` (one line per finished chain; ``--resume`` continues
from it), ``summary.json``, ``success.png`` (success at 1..5 in a row, per-task success) and ``gifs/`` (camera |
what the policy saw, for the first ``--gifs`` chains). Prints a table and, last, one JSON line with ``avg_len``,
``avg_len_stderr``, ``success_at``, ``per_task``, ``n_chains``, ``chains_per_s`` and the settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from ivm_ros_sim.calvin import distractors
from ivm_ros_sim.calvin.chains import N_CHAINS, Chain, load_chains
from ivm_ros_sim.calvin.env import DISTRACTION_CAMERAS
from ivm_ros_sim.calvin.scene import SCENES
from ivm_ros_sim.eval import runs
from ivm_ros_sim.eval.protocol import ChainResult, summarize
from ivm_ros_sim.eval.workers import EvalSettings, check_settings
from tqdm import tqdm

from ivm_ros.plugins import PluginLoadError


def _key_values(items: list[str], what: str) -> tuple[tuple[str, Any], ...]:
    return runs.key_values(items, what, "calvin-eval")


def settings_from(args: argparse.Namespace) -> EvalSettings:
    return EvalSettings(policy=args.policy, masking=args.masking == "on", model=args.model,
                        wrist_model=args.wrist_model,
                        policy_config=_key_values(args.policy_config, "--policy-config"),
                        model_config=_key_values(args.model_config, "--model-config"), scene=args.scene,
                        distraction=args.distraction, distraction_cameras=args.distraction_cameras, seed=args.seed,
                        max_steps=args.max_steps,
                        transport=args.transport, static_size=args.static_size, gripper_size=args.gripper_size)


def settings_json(settings: EvalSettings) -> dict[str, Any]:
    d = dataclasses.asdict(settings)
    d["policy_config"], d["model_config"] = dict(settings.policy_config), dict(settings.model_config)
    if settings.distraction_cameras == "both":  # the default: folders made before the option stay resumable
        d.pop("distraction_cameras")
    if not settings.wrist_model:  # likewise
        d.pop("wrist_model")
    if settings.policy == "expert":
        d.pop("masking")
    if settings.policy == "expert" or not settings.masking:
        d.pop("model")
        d.pop("model_config")
        d.pop("wrist_model", None)
    return d


def read_done(out: Path, settings: dict[str, Any], resume: bool) -> dict[int, ChainResult]:
    """Chains already in ``out/chains.jsonl`` (``--resume``); refuses an ``out`` made with other settings."""
    return {d["index"]: ChainResult(**d) for d in runs.finished_rows(out, "chains.jsonl", settings, resume,
                                                                       "calvin-eval")}


def plot(summary: dict[str, Any], title: str, path: Path) -> None:
    """Success at 1..5 in a row beside per-task success (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 4.5), gridspec_kw={"width_ratios": [1, 4]})
    a.bar(range(1, 6), summary["success_at"], color="tab:blue")
    a.set(xlabel="tasks completed in a row", ylabel="success rate", ylim=(0, 1),
          title=f"avg len {summary['avg_len']:.2f} ({summary['n_chains']} chains)")
    tasks = list(summary["per_task"])
    b.bar(range(len(tasks)), [summary["per_task"][t] for t in tasks], color="tab:green")
    b.set_xticks(range(len(tasks)), tasks, rotation=75, fontsize=7)
    b.set(ylim=(0, 1), ylabel="success rate", title="per task (over its attempts)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def table(summary: dict[str, Any]) -> str:
    rows = [f"chains {summary['n_chains']}   avg len {summary['avg_len']:.3f} +- {summary['avg_len_stderr']:.3f}",
            "in a row  " + "  ".join(f"{k}: {v:.3f}" for k, v in enumerate(summary["success_at"], 1))]
    attempts = summary["per_task_attempts"]
    rows += [f"  {t:<26} {r:6.3f}  ({attempts[t]} attempts)" for t, r in summary["per_task"].items()]
    return "\n".join(rows)


def _run(args: argparse.Namespace, settings: EvalSettings, out: Path, chains: list[Chain],
         done: dict[int, ChainResult]) -> float:
    """Runs the chains not yet done, appending each to chains.jsonl; returns chains/s of this run."""
    from ivm_ros_sim.eval.closed_loop import save_gif
    from ivm_ros_sim.eval.fanout import run_chains

    todo = [c for c in chains if c.index not in done]
    record = frozenset(c.index for c in chains[:args.gifs] if c.index not in done)
    bar = tqdm(total=len(chains), initial=len(chains) - len(todo), desc="chains", unit="chain", file=sys.stderr)
    t0 = time.perf_counter()
    with open(out / "chains.jsonl", "a") as f:
        for result, frames in run_chains(todo, settings, args.workers, args.address, record):
            done[result.index] = result
            f.write(json.dumps(result.to_json()) + "\n")
            f.flush()
            if frames:
                save_gif(out / "gifs" / f"chain{result.index:04d}_len{result.completed}.gif", frames[::3], [], fps=10)
            bar.update(1)
            bar.set_postfix(avg_len=f"{np.mean([r.completed for r in done.values()]):.2f}")
    bar.close()
    return len(todo) / max(time.perf_counter() - t0, 1e-9)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = settings_from(args)
    try:
        check_settings(settings)
        settings, note = settings.paired()
        if note:
            print(f"calvin-eval: {note}", file=sys.stderr)
        chains = load_chains(args.chains, args.start)
        if args.workers < 0:
            raise ValueError(f"--workers must be >= 0, got {args.workers}")
    except (ValueError, PluginLoadError) as exc:
        print(f"calvin-eval: {exc}", file=sys.stderr)
        return 2
    sj = settings_json(settings)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    done = read_done(out, sj, args.resume)
    (out / "settings.json").write_text(json.dumps(sj, indent=1))
    rate = _run(args, settings, out, chains, done)
    summary = summarize([done[c.index] for c in chains])
    summary.update(chains_per_s=rate, workers=args.workers, settings=sj)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    cond = "expert" if settings.policy == "expert" else (
        f"{settings.policy}, masking {'on (' + settings.model + ')' if settings.masking else 'off'}")
    plot(summary, f"CALVIN protocol, scene {settings.scene}, {cond}, distraction {settings.distraction}",
         out / "success.png")
    print(table(summary))
    print(f"wrote {out}/chains.jsonl, summary.json, success.png" + (", gifs/" if args.gifs else ""))
    print(json.dumps(summary))
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ivm-ros calvin-eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default="expert", help="expert (scripted, privileged), embedded, octo or module:Class")
    ap.add_argument("--policy-config", action="append", default=[], metavar="KEY=VALUE",
                    help="policy setting (repeatable); the embedded policy defaults to the 34-task variant of the "
                    "--masking condition (calvin_masked or calvin_raw) unless variant or checkpoint is given")
    ap.add_argument("--masking", choices=("on", "off"), default="on", help="mask the static camera for the goal")
    ap.add_argument("--model", default="lite", help="masking predictor: lite, groundtruth (the simulator's "
                    "ground-truth masks: the upper bound), ivm, simple, ... or module:Class")
    ap.add_argument("--model-config", action="append", default=[], metavar="KEY=VALUE", help="predictor setting")
    ap.add_argument("--wrist-model", choices=("", "groundtruth"), default="",
                    help="mask the gripper camera too: groundtruth (the simulator's masks; direct transport). "
                    "Default: unmasked, except that a policy which learnt on masked wrist views gets ground truth "
                    "with --model groundtruth")
    ap.add_argument("--scene", choices=SCENES, default="D", help="evaluation scene (CALVIN: D; in A, B, C the "
                    "official starts move with the table and shelf)")
    ap.add_argument("--distraction", choices=tuple(distractors.LEVELS), default="none")
    ap.add_argument("--distraction-cameras", choices=DISTRACTION_CAMERAS, default="both",
                    help="which cameras see the level: both (the world as it is); diagnostics (direct transport "
                    "only): static (the gripper camera sees the scene's own table texture and light), static-all "
                    "(nor the level's objects) or none (neither camera sees the level: only its objects' physics "
                    "remains)")
    ap.add_argument("--chains", type=int, default=N_CHAINS, help="the first N of the official 1000 chains")
    ap.add_argument("--start", type=int, default=0, help="index of the first chain")
    ap.add_argument("--max-steps", type=int, default=360, help="steps per subtask (CALVIN: 360)")
    ap.add_argument("--static-size", type=int, default=200, help="static camera px (CALVIN: 200)")
    ap.add_argument("--gripper-size", type=int, default=84, help="gripper camera px (CALVIN: 84)")
    ap.add_argument("--seed", type=int, default=0, help="distractors of chain i are drawn with seed + i")
    ap.add_argument("--workers", type=int, default=1,
                    help="Ray worker processes (0: run in this process, no Ray); with --address: actors on the cluster")
    ap.add_argument("--address", default=None, help="an existing Ray cluster (ray start --head ...: HOST:PORT)")
    ap.add_argument("--transport", choices=("direct", "ros"), default="direct",
                    help="direct: env -> masking -> policy in each worker process; ros: through sim_node -> "
                    "masking_node -> policy_node over real topics (one node set and ROS domain per worker)")
    ap.add_argument("--out", default="out/calvin_eval", help="output folder")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out (same settings)")
    ap.add_argument("--gifs", type=int, default=2, help="chains saved as GIF (camera | what the policy saw)")
    return ap


if __name__ == "__main__":
    sys.exit(main())
