"""Lite checkpoints: one ``.safetensors`` file, tensors + JSON metadata (format, arch, training facts).

safetensors holds raw tensors only, so loading can never run code. Loading is strict: a missing, unexpected
or mis-shaped tensor raises :class:`LiteCheckpointError` naming the file and the keys.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ivm_ros.models.lite.model import LiteArch, LiteIVM, QualityDiscriminator

FORMAT = "ivm_ros.lite/1"
DISCRIMINATOR_FORMAT = "ivm_ros.lite-discriminator/1"
#: Name of the checkpoint shipped with the package (trained by `ivm-ros sim-train-lite`, MODEL_CARD.md beside it).
SHIPPED_NAME = "lite_v2"
SHIPPED = Path(__file__).resolve().parent / "weights" / f"{SHIPPED_NAME}.safetensors"
#: Every checkpoint the package ships, by the name ``model_config.checkpoint`` accepts: ``lite_v2`` (the default,
#: CALVIN scene D; MODEL_CARD.md), ``lite_simpler_v1`` (SimplerEnv's WidowX Bridge frames, fine-tuned from lite_v2;
#: MODEL_CARD_simpler.md), ``lite_v3`` (CALVIN scenes A-D with the hard cases of ``--mix v3``, fine-tuned from
#: lite_v2; MODEL_CARD_v3.md) and ``lite_v2_abc`` (lite_v2's recipe on scenes A, B, C only, ``--mix v2-abc``: the
#: ABC->D split's masks, scene D never seen; MODEL_CARD_v2_abc.md).
NAMED = {SHIPPED_NAME: SHIPPED, "lite_simpler_v1": SHIPPED.parent / "lite_simpler_v1.safetensors",
         "lite_v3": SHIPPED.parent / "lite_v3.safetensors", "lite_v2_abc": SHIPPED.parent / "lite_v2_abc.safetensors"}
#: The model card of each name in :data:`NAMED`, a file in the weights folder.
CARDS = {SHIPPED_NAME: "MODEL_CARD.md", "lite_simpler_v1": "MODEL_CARD_simpler.md", "lite_v3": "MODEL_CARD_v3.md",
         "lite_v2_abc": "MODEL_CARD_v2_abc.md"}
#: The CALVIN scenes whose frames each name in :data:`NAMED` learnt on, its start's included (lite_simpler_v1 and
#: lite_v3 were fine-tuned from lite_v2): what a split that holds a scene out (ABC->D) checks its masks against.
SCENES = {SHIPPED_NAME: ("D",), "lite_simpler_v1": ("D",), "lite_v3": ("A", "B", "C", "D"),
          "lite_v2_abc": ("A", "B", "C")}


class LiteCheckpointError(RuntimeError):
    """A lite weight file that is missing, of another format, or does not fit the model."""


def resolve(checkpoint: str) -> Path:
    """``checkpoint`` as a file: empty -> the default (lite_v2), a name of :data:`NAMED` -> its file, else a path;
    LiteCheckpointError naming the shipped names when it is neither."""
    if not checkpoint:
        return SHIPPED
    path = NAMED.get(checkpoint, Path(checkpoint))
    if not path.is_file():
        raise LiteCheckpointError(f"lite checkpoint {checkpoint!r} is neither a shipped name ({', '.join(NAMED)}) "
                                  "nor an existing file")
    return path


def save(path: str | Path, model: nn.Module, fmt: str, info: dict[str, Any] | None = None,
         arch: LiteArch | None = None) -> Path:
    """Writes ``model``'s state dict (float32, contiguous) with metadata {format, arch, info} as JSON strings."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    meta = {"format": fmt, "info": json.dumps(info or {}, sort_keys=True)}
    if arch is not None:
        meta["arch"] = json.dumps(arch.to_dict())
    save_file(tensors, str(path), metadata=meta)
    return path


def read(path: str | Path, fmt: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata (``arch`` / ``info`` parsed) of a file, checking its format string."""
    path = Path(path)
    if not path.is_file():
        raise LiteCheckpointError(f"lite checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for a truncated / foreign file
        raise LiteCheckpointError(f"{path} is not a readable safetensors file: {exc}") from exc
    if meta.get("format") != fmt:
        raise LiteCheckpointError(f"{path} has format {meta.get('format')!r}, expected {fmt!r}")
    parsed: dict[str, Any] = {"format": fmt, "info": json.loads(meta.get("info", "{}"))}
    if "arch" in meta:
        parsed["arch"] = json.loads(meta["arch"])
    return tensors, parsed


def load_into(model: nn.Module, tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Copies ``tensors`` into ``model`` after checking keys and shapes; raises naming every problem."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    shapes = sorted(f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(tensors) if tensors[k].shape != own[k].shape)
    problems = [f"missing {k}" for k in missing] + [f"unexpected {k}" for k in unexpected] + shapes
    if problems:
        head = "; ".join(problems[:8]) + (f"; ... {len(problems) - 8} more" if len(problems) > 8 else "")
        raise LiteCheckpointError(f"{path} does not fit the model ({len(problems)} problems): {head}")
    model.load_state_dict(tensors, strict=True)


def load_lite(path: str | Path = SHIPPED, device: torch.device | str = "cpu") -> tuple[LiteIVM, dict[str, Any]]:
    """A :class:`LiteIVM` in eval mode on ``device`` and the file's metadata."""
    tensors, meta = read(path, FORMAT)
    if "arch" not in meta:
        raise LiteCheckpointError(f"{path} has no arch metadata")
    try:
        arch = LiteArch.from_dict(meta["arch"])
    except (TypeError, ValueError) as exc:
        raise LiteCheckpointError(f"{path}: bad arch metadata: {exc}") from exc
    model = LiteIVM(arch)
    load_into(model, tensors, path)
    return model.to(device).eval(), meta


def load_discriminator(path: str | Path, device: torch.device | str = "cpu") -> QualityDiscriminator:
    """The DWSL discriminator saved by training, in eval mode."""
    tensors, _ = read(path, DISCRIMINATOR_FORMAT)
    model = QualityDiscriminator()
    load_into(model, tensors, path)
    return model.to(device).eval()


def tensor_digest(path: str | Path, fmt: str = FORMAT) -> str:
    """SHA-256 (hex) over every tensor's name, dtype, shape and bytes, in name order.

    Two trainings that produced the same weights have the same digest even though the files differ (the
    metadata records wall-clock training time), so this is what "regenerates the shipped checkpoint" is checked by.
    """
    tensors, _ = read(path, fmt)
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
