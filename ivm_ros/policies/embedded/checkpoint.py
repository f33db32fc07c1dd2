"""Embedded-policy files: one msgpack document (flax.serialization, no pickle) holding the format string, the
arch and training facts as JSON, the proprio normalisation and the parameters."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from ivm_ros.policies.embedded.model import EmbeddedPolicyNet, PolicyArch

FORMAT = "ivm_ros.embedded-policy/1"
WEIGHTS = Path(__file__).resolve().parent / "weights"
#: Shipped policies: name -> file. ``masked``/``raw``: 6 tasks, clean scenes (weights/MODEL_CARD.md);
#: ``calvin_masked``/``calvin_raw``: all 34 CALVIN tasks along chains in scene D (weights/MODEL_CARD_calvin.md);
#: ``calvin_abc_masked``/``calvin_abc_raw``: the same tasks along chains in scenes A, B, C only, for CALVIN's ABC->D
#: split (scene D never seen, by the policies nor by the lite model lite_v2_abc that masked the masked one's
#: frames; weights/MODEL_CARD_calvin_abc.md);
#: ``widowx_masked``/``widowx_raw``: SimplerEnv's four WidowX tasks, the masked one on the simulator's
#: ground-truth masks (run with ``simpler-eval --model groundtruth``; weights/MODEL_CARD_widowx.md).
SHIPPED = {"masked": WEIGHTS / "policy_masked_v1.msgpack", "raw": WEIGHTS / "policy_raw_v1.msgpack",
           "calvin_masked": WEIGHTS / "policy_calvin_masked_v8.msgpack",
           "calvin_raw": WEIGHTS / "policy_calvin_raw_v8.msgpack",
           "calvin_abc_masked": WEIGHTS / "policy_calvin_abc_masked_v3.msgpack",
           "calvin_abc_raw": WEIGHTS / "policy_calvin_abc_raw_v3.msgpack",
           "widowx_masked": WEIGHTS / "policy_widowx_masked_gt_v1.msgpack",
           "widowx_raw": WEIGHTS / "policy_widowx_raw_v1.msgpack"}


class PolicyCheckpointError(RuntimeError):
    """A policy file that is missing, of another format, or does not fit its arch."""


def save(path: str | Path, params: Any, arch: PolicyArch, norm: dict[str, np.ndarray], info: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "arch": json.dumps(arch.to_dict()), "info": json.dumps(info, sort_keys=True),
           "norm": {k: np.asarray(v, np.float32) for k, v in norm.items()},
           "params": serialization.to_state_dict(jax.device_get(params))}
    path.write_bytes(serialization.msgpack_serialize(doc))
    return path


def _read(path: Path) -> dict[str, Any]:
    """The file's msgpack document, after checking that it is a policy file of :data:`FORMAT`."""
    if not path.is_file():
        raise PolicyCheckpointError(f"policy file {path} does not exist")
    try:
        doc = serialization.msgpack_restore(path.read_bytes())
    except Exception as exc:  # msgpack raises several types for foreign bytes
        raise PolicyCheckpointError(f"{path} is not a msgpack policy file: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise PolicyCheckpointError(f"{path} has format {got!r}, expected {FORMAT!r}")
    return doc


def read_info(path: str | Path) -> dict[str, Any]:
    """The file's info (training facts: masking, lite, steps, ...) without building the model or its parameters."""
    path = Path(path)
    try:
        return json.loads(_read(path).get("info", "{}"))
    except (TypeError, ValueError) as exc:
        raise PolicyCheckpointError(f"{path}: bad metadata: {exc}") from exc


def load(path: str | Path) -> tuple[EmbeddedPolicyNet, Any, dict[str, np.ndarray], dict[str, Any]]:
    """(model, params, norm, info); checks the format and every parameter's shape against the arch."""
    path = Path(path)
    doc = _read(path)
    try:
        arch = PolicyArch.from_dict(json.loads(doc["arch"]))
        info = json.loads(doc.get("info", "{}"))
        norm = {k: np.asarray(v, np.float32) for k, v in doc["norm"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyCheckpointError(f"{path}: bad metadata: {exc}") from exc
    model = EmbeddedPolicyNet(arch)
    template = param_shapes(arch)
    want = {"/".join(map(str, k)): v.shape for k, v in _flat(serialization.to_state_dict(template))}
    got = {"/".join(map(str, k)): np.shape(v) for k, v in _flat(doc["params"])}
    problems = [f"missing {k}" for k in sorted(set(want) - set(got))]
    problems += [f"unexpected {k}" for k in sorted(set(got) - set(want))]
    problems += [f"{k}: file {got[k]} vs arch {want[k]}" for k in sorted(set(want) & set(got)) if got[k] != want[k]]
    if problems:
        head = "; ".join(problems[:6])
        raise PolicyCheckpointError(f"{path} does not fit its arch ({len(problems)} problems): {head}")
    params = serialization.from_state_dict(template, doc["params"])
    return model, params, norm, info


def lite_of(policy_config: Mapping[str, Any]) -> str | None:
    """The lite checkpoint whose masks the embedded policy of ``policy_config`` (its ``checkpoint`` file, else its
    shipped ``variant``) learnt on: its info's ``lite``. None when the file records none (the shipped policies
    learnt on the default lite_v2) or the policy did not learn on lite masks."""
    path = _policy_file(policy_config)
    if not path:
        return None
    info = read_info(path)
    return str(info["lite"]) if info.get("masking") == "lite" and info.get("lite") else None


def wrist_masking_of(policy_config: Mapping[str, Any]) -> str:
    """What masks the gripper camera of the embedded policy of ``policy_config`` learnt on: its info's
    ``wrist_masking`` (``groundtruth``), or "" (the raw wrist view, as every shipped policy)."""
    path = _policy_file(policy_config)
    return str(read_info(path).get("wrist_masking", "")) if path else ""


def _policy_file(policy_config: Mapping[str, Any]) -> Any:
    """The file of the embedded policy of ``policy_config``: its ``checkpoint``, else its shipped ``variant``'s (None
    for an unknown variant)."""
    return policy_config.get("checkpoint") or SHIPPED.get(str(policy_config.get("variant", "masked")))


def pair_lite(policy_config: Mapping[str, Any], model_config: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """(lite model config, note): the lite masking config for an embedded masked policy, given the checkpoint the
    policy learnt on (:func:`lite_of`) when ``model_config`` names none; a note says so, or warns when
    ``model_config`` names another checkpoint than the policy's (its masks then differ from the training's)."""
    want, cfg = lite_of(policy_config), dict(model_config)
    if want is None:
        return cfg, ""
    given = cfg.get("checkpoint")
    if not given:
        return {**cfg, "checkpoint": want}, f"lite masking with {want}: the checkpoint the policy learnt on"
    if str(given) != want:
        return cfg, f"warning: the policy learnt on {want}'s masks, masking with {given} (its masks may differ)"
    return cfg, ""


@functools.lru_cache(maxsize=4)
def param_shapes(arch: PolicyArch) -> Any:
    """The parameter tree of ``arch`` as shapes and dtypes (``jax.eval_shape`` of ``init``), traced once per arch
    for the process rather than at every load (each trace leaves entries in JAX's tracing caches)."""
    model = EmbeddedPolicyNet(arch)
    return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), *example_inputs(arch)))


def without_wrist(params: Any, arch: PolicyArch) -> tuple[Any, PolicyArch]:
    """(params, arch) of the network ``params``/``arch`` with its wrist camera taken out (``gripper_size`` 0): the
    gripper encoder goes, and ``fc1`` loses the kernel rows that read its features (fc1's input is the static
    features (3 x widths[-1]), the gripper's (3 x gripper_widths[-1]), proprio (64) and instruction (hidden), in that
    order); every other parameter is kept. The result computes what the old network computes when the gripper
    features add nothing: a start for fine-tuning a policy without the wrist camera. ValueError for an arch with
    none."""
    if arch.gripper_size == 0:
        raise ValueError("without_wrist: this arch has no wrist camera to take out")
    new_arch = dataclasses.replace(arch, gripper_size=0, gripper_widths=())
    p = dict(params["params"])
    del p["gripper_encoder"]
    start, n = 3 * arch.widths[-1], 3 * arch.gripper_widths[-1]
    kernel = np.asarray(p["fc1"]["kernel"])
    p["fc1"] = {**p["fc1"], "kernel": np.concatenate([kernel[:start], kernel[start + n:]], axis=0)}
    out = {**params, "params": p}
    want = jax.tree_util.tree_map(lambda a: a.shape, param_shapes(new_arch))
    if jax.tree_util.tree_map(np.shape, out) != want:
        raise ValueError(f"without_wrist: the parameters do not fit {new_arch}")
    return out, new_arch


def example_inputs(arch: PolicyArch, batch: int = 1) -> tuple[np.ndarray, ...]:
    """Zero inputs of the right shapes and dtypes: static, gripper, proprio, text."""
    s, g, w = arch.static_size, arch.gripper_size, arch.window
    return (np.zeros((batch, w, s, s, 3), np.uint8), np.zeros((batch, w, g, g, 3), np.uint8),
            np.zeros((batch, arch.proprio_dim), np.float32), np.zeros((batch, arch.text_dim), np.float32))


def _flat(tree: Any, prefix: tuple = ()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flat(v, (*prefix, k))
    else:
        yield prefix, tree


def save_untrained(path: str | Path, arch: PolicyArch, info: dict[str, Any], seed: int = 0) -> Path:
    """Writes an ``arch`` policy with initial (random, ``seed``) weights, unit proprio normalisation and ``info``:
    for measuring an arch's size and speed before training it (``ivm-ros bench policy --arch``), and for tests about
    what surrounds a policy file. Returns the path."""
    params = EmbeddedPolicyNet(arch).init(jax.random.PRNGKey(seed), *example_inputs(arch))
    norm = {"proprio_mean": np.zeros(arch.proprio_dim, np.float32),
            "proprio_std": np.ones(arch.proprio_dim, np.float32)}
    return save(path, params, arch, norm, info)


def parameter_count(params: Any) -> int:
    """Number of scalars in a parameter tree."""
    return int(sum(np.size(v) for _, v in _flat(serialization.to_state_dict(params))))
