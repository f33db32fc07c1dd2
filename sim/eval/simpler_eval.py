"""``ivm-ros simpler-eval``: SimplerEnv tasks x episodes x masking on/off x scene variants, closed loop.

    ivm-ros simpler-eval --policy expert --episodes 24                                   # the harness check
    ivm-ros simpler-eval --policy octo --masking both --model lite --episodes 24 --workers 2 --out out/simpler
    ivm-ros simpler-eval ... --variant visual_matching --variant NAME='{"make_kwarg": ...}'   # more scenes
    ivm-ros simpler-eval ... --address 10.0.0.1:6379 --workers 64                        # a Ray cluster

Each episode resets the task to its object placement ``episode`` (SimplerEnv's Bridge tasks have 24) with seed
``--seed + episode`` and runs until the env's time limit (Bridge 60 steps, eggplant 120) or ``--max-steps``;
success is the env's success at the last step, as SimplerEnv's own evaluation counts it. Masking on: the
third-person camera goes through the masking_node's pipeline with ``--model`` (``groundtruth``: SimplerEnv's
segmentation of the objects the instruction names) before the policy sees it; off: the raw camera.

Writes into ``--out``: ``settings.json``, ``episodes.jsonl`` (one line per finished episode; ``--resume``
continues from it), ``summary.json``, ``success.png`` (success per task, masking on vs off, per variant) and
``gifs/`` (camera | what the policy saw, every 2nd step at 2x speed, for the first ``--gifs`` episodes of each
task and condition). Prints a table and, last, one JSON line with ``success``, ``per_task``, ``per_masking``,
``conditions``, ``n_episodes``, ``steps_per_s`` and the settings. SimplerEnv is installed apart (sim/README.md);
``--backend double`` runs on SimplerEnvDouble, the test stand-in without physics.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from ivm_ros_sim.eval import runs
from ivm_ros_sim.eval.simpler_jobs import (
    BACKENDS,
    TRANSPORTS,
    WIDOWX_TASKS,
    EpisodeResult,
    Job,
    SimplerSettings,
    make_jobs,
    parse_variant,
    summarize,
)
from tqdm import tqdm

from ivm_ros.plugins import PluginLoadError

PROG = "simpler-eval"


def settings_from(args: argparse.Namespace) -> SimplerSettings:
    return SimplerSettings(policy=args.policy, model=args.model, seed=args.seed, max_steps=args.max_steps,
                           policy_config=runs.key_values(args.policy_config, "--policy-config", PROG),
                           model_config=runs.key_values(args.model_config, "--model-config", PROG),
                           transport=args.transport, backend=args.backend)


def jobs_from(args: argparse.Namespace, settings: SimplerSettings) -> list[Job]:
    """The run's jobs; ValueError for a bad option (say which)."""
    tasks = [t for t in args.tasks.split(",") if t]
    if args.episodes < 1 or args.start < 0 or args.workers < 0 or args.gifs < 0:
        raise ValueError("--episodes must be >= 1 and --start, --workers, --gifs >= 0")
    variants = dict(parse_variant(v) for v in (args.variant or ["visual_matching"]))
    maskings = [False] if settings.privileged else {"on": [True], "off": [False], "both": [True, False]}[args.masking]
    from ivm_ros_sim.eval.simpler_workers import check_settings

    check_settings(settings, tasks, True in maskings)
    return make_jobs(tasks, range(args.start, args.start + args.episodes), maskings, variants)


def read_done(out: Path, settings: dict[str, Any], resume: bool, jobs: list[Job]) -> dict[str, EpisodeResult]:
    """Episodes already in ``out/episodes.jsonl`` (``--resume``); refuses an ``out`` made with other settings or
    one whose variant of a name had other make kwargs."""
    done = {d["key"]: EpisodeResult(**d) for d in runs.finished_rows(out, "episodes.jsonl", settings, resume, PROG)}
    for job in jobs:
        if job.key in done and done[job.key].variant_kwargs != job.variant_kwargs:
            raise SystemExit(f"{PROG}: {out} ran variant {job.variant} as {done[job.key].variant_kwargs}, now "
                             f"{job.variant_kwargs}; choose another --out or another variant name")
    return done


def _run(args: argparse.Namespace, settings: SimplerSettings, out: Path, jobs: list[Job],
         done: dict[str, EpisodeResult]) -> float:
    """Runs the jobs not yet done, appending each to episodes.jsonl; returns episodes/s of this run."""
    from ivm_ros_sim.eval.closed_loop import save_gif
    from ivm_ros_sim.eval.fanout import run_jobs
    from ivm_ros_sim.eval.simpler_workers import make_simpler_worker

    todo = [j for j in jobs if j.key not in done]
    record = frozenset(j.key for j in todo if j.episode < args.start + args.gifs)
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="episodes", unit="ep", file=sys.stderr)
    t0 = time.perf_counter()
    with open(out / "episodes.jsonl", "a") as f:
        for result, frames in run_jobs(todo, settings, make_simpler_worker, args.workers, args.address, record,
                                       key=lambda j: j.key):
            done[result.key] = result
            f.write(json.dumps(result.to_json()) + "\n")
            f.flush()
            if frames:
                name = f"{result.key}_{'success' if result.success else 'failure'}.gif"
                save_gif(out / "gifs" / name, [_small(x) for x in frames[::2]], [], fps=5)
            bar.update(1)
            bar.set_postfix(success=f"{np.mean([r.success for r in done.values()]):.2f}")
    bar.close()
    return len(todo) / max(time.perf_counter() - t0, 1e-9)


def _small(image: np.ndarray, height: int = 240) -> np.ndarray:
    """Every k-th pixel so the image is at most ``height`` px high (GIFs of 640x480 cameras stay small)."""
    k = max(1, -(-image.shape[0] // height))
    return image[::k, ::k]


def table(summary: dict[str, Any]) -> str:
    rows = [f"{'task':<32}{'variant':<18}{'masking':<9}{'success':>8}{'stderr':>8}{'n':>5}{'ever':>7}"]
    rows += [f"{c['task']:<32}{c['variant']:<18}{c['masking']:<9}{c['success']:>8.3f}{c['stderr']:>8.3f}{c['n']:>5}"
             f"{c['ever_success']:>7.2f}" for c in summary["conditions"]]
    rows.append(f"{'all':<59}{summary['success']:>8.3f}{summary['success_stderr']:>8.3f}{summary['n_episodes']:>5}")
    return "\n".join(rows)


def plot(summary: dict[str, Any], title: str, path: Path) -> None:
    """Success per task, masking on vs off (bars with standard errors), one panel per variant (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = summary["conditions"]
    variants = list(dict.fromkeys(c["variant"] for c in conds))
    tasks = list(dict.fromkeys(c["task"] for c in conds))
    size = ((1.4 * len(tasks) + 1.5) * len(variants) + 1, 4.2)
    fig, axes = plt.subplots(1, len(variants), figsize=size, squeeze=False, sharey=True)
    maskings = [m for m in ("on", "off") if any(c["masking"] == m for c in conds)]
    width = 0.8 / len(maskings)
    for ax, variant in zip(axes[0], variants):
        for k, masking in enumerate(maskings):
            rows = {c["task"]: c for c in conds if c["variant"] == variant and c["masking"] == masking}
            x = np.arange(len(tasks)) + (k - (len(maskings) - 1) / 2) * width
            ax.bar(x, [rows[t]["success"] if t in rows else np.nan for t in tasks], width,
                   yerr=[rows[t]["stderr"] if t in rows else 0 for t in tasks], capsize=3,
                   label=f"masking {masking}", color="tab:blue" if masking == "on" else "tab:gray")
        ax.set_xticks(range(len(tasks)), [t.removeprefix("widowx_") for t in tasks], rotation=25, ha="right")
        ax.set(ylim=(0, 1.05), title=variant)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("success rate (at the last step)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = settings_from(args)
    try:
        jobs = jobs_from(args, settings)
    except (ValueError, PluginLoadError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    sj = settings.to_json()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    done = read_done(out, sj, args.resume, jobs)
    (out / "settings.json").write_text(json.dumps(sj, indent=1))
    rate = _run(args, settings, out, jobs, done)
    results = [done[j.key] for j in jobs]
    summary = summarize(results)
    seconds = sum(r.seconds for r in results)
    summary.update(episodes_per_s=rate, steps_per_s=summary["steps"] / max(seconds, 1e-9), workers=args.workers,
                   settings=sj)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    who = settings.policy if settings.privileged else f"{settings.policy}, masking model {settings.model}"
    plot(summary, f"SimplerEnv ({settings.backend}), {summary['n_episodes']} episodes\n{who}", out / "success.png")
    print(table(summary))
    print(f"wrote {out}/episodes.jsonl, summary.json, success.png" + (", gifs/" if args.gifs else ""))
    print(json.dumps(summary))
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"ivm-ros {PROG}", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(WIDOWX_TASKS), help="comma list of SimplerEnv task names")
    ap.add_argument("--episodes", type=int, default=24, help="episodes (object placements) per task and condition")
    ap.add_argument("--start", type=int, default=0, help="first episode id")
    ap.add_argument("--seed", type=int, default=0, help="episode e resets with seed + e")
    ap.add_argument("--policy", default="expert", help="expert (scripted, privileged), embedded, octo or module:Class")
    ap.add_argument("--policy-config", action="append", default=[], metavar="KEY=VALUE",
                    help="policy setting (repeatable); '{masked}' in a value becomes masked/raw per condition")
    ap.add_argument("--masking", choices=("on", "off", "both"), default="both",
                    help="mask the third-person camera for the instruction (the expert ignores it)")
    ap.add_argument("--model", default="lite", help="masking predictor: lite, groundtruth (SimplerEnv's segmentation "
                    "of the named objects: the upper bound), ivm, ... or module:Class")
    ap.add_argument("--model-config", action="append", default=[], metavar="KEY=VALUE", help="predictor setting")
    ap.add_argument("--variant", action="append", default=None, metavar="NAME[=JSON]",
                    help="scene variant (repeatable; default visual_matching, the prepackaged config): a known name "
                    "or NAME={make kwargs as JSON}")
    ap.add_argument("--max-steps", type=int, default=0, help="steps per episode (0: the env's time limit)")
    ap.add_argument("--workers", type=int, default=0,
                    help="Ray worker processes (0: run in this process, no Ray); with --address: actors on the cluster")
    ap.add_argument("--address", default=None, help="an existing Ray cluster (ray start --head ...: HOST:PORT)")
    ap.add_argument("--transport", choices=TRANSPORTS, default="direct",
                    help="direct: env -> masking -> policy in each worker process; ros: through simpler_node -> "
                    "masking_node -> policy_node over real topics (one node set and ROS domain per worker)")
    ap.add_argument("--backend", choices=BACKENDS, default="simpler",
                    help="simpler: SimplerEnv (installed apart); double: SimplerEnvDouble, a stand-in without physics")
    ap.add_argument("--out", default="out/simpler_eval", help="output folder")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out (same settings)")
    ap.add_argument("--gifs", type=int, default=1, help="episodes per task and condition saved as GIF")
    return ap


if __name__ == "__main__":
    sys.exit(main())
