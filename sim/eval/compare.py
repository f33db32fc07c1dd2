"""``ivm-ros calvin-compare RUN...``: CALVIN-protocol runs side by side, paired on the chains they share.

Each RUN is a ``calvin-eval --out`` folder (finished or interrupted: outcomes are read from ``chains.jsonl``).
Every run is scored on the chain indices all runs hold, so the rows compare like with like; the first run is the
reference: each other row shows its avg len relative to it and the paired difference (mean of per-chain
differences in completed subtasks, with its standard error). Prints a Markdown table (with ``--per-task`` a second
one: each task's successes / attempts per run on the same chains; a task is attempted only when the subtasks before
it in the chain succeeded, so rates are conditional on getting there), saves a bar plot (``--plot``), and prints one
JSON object last.

With ``--arm NAME=RUN,RUN,...`` (repeatable) runs are grouped into arms, e.g. the trainings of one recipe with
different seeds: a second table gives each arm's mean avg len over its runs, the run-to-run standard deviation, and
each arm's difference from the first arm with a standard error that counts runs, not chains (training noise is shared
by all chains of a run, so a chain-level error would understate it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from ivm_ros_sim.eval.runs import stderr


class RunError(ValueError):
    """A folder that is not a calvin-eval run."""


def load_run(folder: Path) -> tuple[dict[str, Any], dict[int, int], dict[int, tuple[str, ...]]]:
    """(settings, {chain index: completed subtasks 0..5}, {chain index: its 5 subtasks}) of a calvin-eval output
    folder."""
    settings, jsonl = folder / "settings.json", folder / "chains.jsonl"
    if not settings.is_file() or not jsonl.is_file():
        raise RunError(f"{folder} is not a calvin-eval run (no settings.json and chains.jsonl)")
    done, tasks = {}, {}
    for n, line in enumerate(jsonl.read_text().splitlines(), 1):
        if line.strip():
            try:
                d = json.loads(line)
                done[int(d["index"])] = int(d["completed"])
                tasks[int(d["index"])] = tuple(str(t) for t in d["subtasks"])
            except (ValueError, KeyError, TypeError) as e:
                raise RunError(f"{jsonl}:{n}: not a chain result ({e})") from None
    return json.loads(settings.read_text()), done, tasks


def label(settings: dict[str, Any]) -> str:
    """Short condition name: ``embedded, masking lite, large`` / ``expert, none``; a policy file named in its
    config adds its stem: ``embedded policy_calvin_masked_v7, masking lite, none``; ``distraction_cameras`` other than
    both: ``appearance (static camera only)``."""
    checkpoint = str((settings.get("policy_config") or {}).get("checkpoint", ""))
    parts = [" ".join([settings.get("policy", "?"), *([Path(checkpoint).stem] if checkpoint else [])])]
    if settings.get("policy") != "expert":
        parts.append(f"masking {settings.get('model', 'lite')}" if settings.get("masking") else "masking off")
        if settings.get("wrist_model"):
            parts[-1] += f" + wrist {settings['wrist_model']}"
    parts.append(settings.get("distraction", "none"))
    if settings.get("distraction_cameras", "both") != "both":
        only = {"static": "static camera only", "static-all": "gripper camera sees none of it",
                "none": "no camera sees it"}
        parts[-1] += f" ({only.get(settings['distraction_cameras'], settings['distraction_cameras'])})"
    if settings.get("scene", "D") != "D":
        parts.append(f"scene {settings['scene']}")
    return ", ".join(parts)


def common_chains(runs: list[tuple[str, dict[int, int]]]) -> list[int]:
    """The chain indices every run holds, in order."""
    return sorted(set.intersection(*(set(done) for _, done in runs)))


def compare(runs: list[tuple[str, dict[int, int]]]) -> dict[str, Any]:
    """Rows for ``runs`` [(name, {chain: completed})] on their common chains; the first is the reference."""
    common = common_chains(runs)
    if not common:
        raise RunError("the runs share no chain index")
    ref = np.array([runs[0][1][i] for i in common], np.float64)
    n = len(common)
    rows = []
    for name, done in runs:
        lens = np.array([done[i] for i in common], np.float64)
        diff = lens - ref
        rows.append({
            "run": name, "avg_len": float(lens.mean()),
            "avg_len_stderr": stderr(lens),
            "success_at": [float((lens >= k).mean()) for k in range(1, 6)],
            "relative": float(lens.mean() / ref.mean()) if ref.mean() > 0 else float("nan"),
            "paired_diff": float(diff.mean()),
            "paired_diff_stderr": stderr(diff),
        })
    return {"chains": n, "first_chain": common[0], "last_chain": common[-1], "rows": rows}


def arms(groups: list[tuple[str, list[float]]]) -> list[dict[str, Any]]:
    """Rows for arms [(name, [avg len of each of its runs on the common chains])]; the first arm is the reference.
    ``avg_len_std``: sample std over the arm's runs; ``avg_len_stderr`` = std / sqrt(runs); ``diff_stderr`` =
    sqrt(stderr_arm^2 + stderr_ref^2) (None for the reference itself), with its Welch-Satterthwaite degrees of freedom
    ``diff_dof`` (with 2-3 runs per arm the error rests on very few). Values that need two runs are None for an arm of
    one."""
    def se(v: np.ndarray) -> float | None:
        return stderr(v) if v.size > 1 else None

    ref = np.asarray(groups[0][1], np.float64)
    rows = []
    for k, (name, values) in enumerate(groups):
        v = np.asarray(values, np.float64)
        both = (se(v), se(ref)) if k else (None, None)
        rows.append({
            "arm": name, "runs": int(v.size), "avg_len_mean": float(v.mean()),
            "avg_len_std": float(v.std(ddof=1)) if v.size > 1 else None, "avg_len_stderr": se(v),
            "diff": float(v.mean() - ref.mean()),
            "diff_stderr": float(np.hypot(*both)) if None not in both else None,
            "diff_dof": welch_dof(both[0], v.size, both[1], ref.size) if None not in both else None,
        })
    return rows


def welch_dof(se_a: float, n_a: int, se_b: float, n_b: int) -> float | None:
    """Welch-Satterthwaite degrees of freedom of a difference of two means with standard errors ``se_a``, ``se_b``
    from ``n_a``, ``n_b`` values (None when both errors are 0)."""
    den = se_a ** 4 / (n_a - 1) + se_b ** 4 / (n_b - 1)
    return float((se_a ** 2 + se_b ** 2) ** 2 / den) if den > 0 else None


def arms_markdown(rows: list[dict[str, Any]]) -> str:
    def pm(value: float, err: float | None, dof: float | None) -> str:
        if err is None:
            return f"{value:+.2f} (one run: no error)"
        return f"{value:+.2f} +- {err:.2f}" + (f" ({dof:.1f} dof)" if dof is not None else "")

    lines = ["| arm | runs | mean avg len | run-to-run std | vs first arm |", "|---|---|---|---|---|"]
    for k, r in enumerate(rows):
        std = f"{r['avg_len_std']:.2f}" if r["avg_len_std"] is not None else "-"
        lines.append(f"| {r['arm']} | {r['runs']} | {r['avg_len_mean']:.2f} | {std} | "
                     f"{pm(r['diff'], r['diff_stderr'], r['diff_dof']) if k else 'reference'} |")
    return "\n".join(lines)


def parse_arms(specs: list[str]) -> list[tuple[str, list[Path]]]:
    """``NAME=RUN,RUN`` strings -> [(NAME, [folders])]."""
    out = []
    for spec in specs:
        name, sep, runs = spec.partition("=")
        folders = [Path(r) for r in runs.split(",") if r]
        if not sep or not name or not folders:
            raise RunError(f"--arm {spec!r}: expected NAME=RUN[,RUN...]")
        out.append((name, folders))
    return out


def per_task(runs: list[tuple[str, dict[int, int]]], tasks: dict[int, tuple[str, ...]], chains: list[int]
             ) -> dict[str, list[list[int]]]:
    """{task: [[successes, attempts] per run]} over ``chains``: a chain attempts its subtasks up to the first failure
    (``completed + 1`` of them, at most 5) and succeeds at the first ``completed``."""
    out: dict[str, list[list[int]]] = {}
    for k, (_, done) in enumerate(runs):
        for i in chains:
            for j, task in enumerate(tasks[i][:min(done[i] + 1, len(tasks[i]))]):
                cell = out.setdefault(task, [[0, 0] for _ in runs])[k]
                cell[0] += int(j < done[i])
                cell[1] += 1
    return dict(sorted(out.items()))


def per_task_markdown(names: list[str], table: dict[str, list[list[int]]]) -> str:
    lines = ["| task | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for task, cells in table.items():
        lines.append(f"| {task} | " + " | ".join(f"{w}/{a}" if a else "-" for w, a in cells) + " |")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    lines = [f"{result['chains']} common chains ({result['first_chain']}..{result['last_chain']}); "
             f"reference: {result['rows'][0]['run']}", "",
             "| run | avg len | 1/5 ... 5/5 in a row | vs reference | paired difference |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        rates = " / ".join(f"{v:.2f}" for v in r["success_at"])
        lines.append(f"| {r['run']} | {r['avg_len']:.2f} +- {r['avg_len_stderr']:.2f} | {rates} | "
                     f"{100 * r['relative']:.0f} % | {r['paired_diff']:+.2f} +- {r['paired_diff_stderr']:.2f} |")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path, title: str) -> None:
    """Horizontal bars of avg len with standard errors (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.4))
    y = np.arange(len(rows))[::-1]
    ax.barh(y, [r["avg_len"] for r in rows], xerr=[r["avg_len_stderr"] for r in rows], color="#4c72b0", capsize=3)
    ax.set_yticks(y, [r["run"] for r in rows])
    ax.set_xlabel(f"avg len (0-5), {result['chains']} common chains")
    ax.set_xlim(0, max(1.0, max(r["avg_len"] + r["avg_len_stderr"] for r in rows) * 1.15))
    for yi, r in zip(y, rows):
        ax.text(r["avg_len"] + r["avg_len_stderr"] + 0.02, yi, f"{r['avg_len']:.2f}", va="center")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ivm-ros calvin-compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", type=Path, help="calvin-eval output folders; the first is the reference")
    ap.add_argument("--arm", action="append", default=[], metavar="NAME=RUN,RUN",
                    help="runs of one arm (e.g. one recipe's seeds), repeatable; scored with the other runs and "
                    "summarised per arm; the first arm is the arms' reference")
    ap.add_argument("--names", default="", help="comma-separated row names (default: from each run's settings)")
    ap.add_argument("--plot", type=Path, default=None, help="save a bar plot here (PNG)")
    ap.add_argument("--title", default="CALVIN protocol")
    ap.add_argument("--per-task", action="store_true", help="also a table of successes / attempts per task")
    args = ap.parse_args(argv)
    names = [s for s in args.names.split(",") if s] if args.names else []
    if names and len(names) != len(args.runs):
        print(f"calvin-compare: {len(names)} names for {len(args.runs)} runs", file=sys.stderr)
        return 2
    try:
        groups = parse_arms(args.arm)
        folders = list(args.runs) + [f for _, fs in groups for f in fs]
        if not folders:
            raise RunError("no runs: name calvin-eval output folders or --arm NAME=RUN,RUN")
        loaded = [load_run(folder) for folder in folders]
        names += [label(s) for s, _, _ in loaded[len(names):len(args.runs)]]
        names += [f"{arm}: {f.name}" for arm, fs in groups for f in fs]
        runs = [(name, done) for name, (_, done, _) in zip(names, loaded)]
        result = compare(runs)
    except RunError as e:
        print(f"calvin-compare: {e}", file=sys.stderr)
        return 2
    print(markdown(result))
    if groups:
        avg = iter(r["avg_len"] for r in result["rows"][len(args.runs):])
        result["arms"] = arms([(arm, [next(avg) for _ in fs]) for arm, fs in groups])
        print()
        print(arms_markdown(result["arms"]))
    if args.per_task:
        result["per_task"] = per_task(runs, loaded[0][2], common_chains(runs))
        print()
        print(per_task_markdown([name for name, _ in runs], result["per_task"]))
    if args.plot:
        plot(result, args.plot, args.title)
        print(f"wrote {args.plot}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
