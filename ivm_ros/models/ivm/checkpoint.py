"""Loading IVM-V1.0 from its three released sources, or from one converted safetensors file.

Sources (all local paths):
- ``sam_vit_h_4b8939.pth``: Meta's SAM ViT-H; only ``image_encoder.*`` is used (457 tensors for ViT-H), its
  ``prompt_encoder.*`` / ``mask_decoder.*`` are SAM's own heads and are deliberately ignored.
- ``llava-1.5-7b-hf/``: a transformers folder (config, tokenizer, safetensors), loaded by transformers.
- ``IVM-V1.0.bin``: the trained parts, keyed like the release's ``IVM`` module: the LoRA tensors
  ``prompt_encoder.model.base_model.model.language_model.model.layers.{i}.self_attn.{q,v}_proj.lora_{A,B}
  .default.weight`` (transformers < 4.52 layout; the >= 4.52 layout ``...model.language_model.layers...`` is
  accepted too), ``prompt_encoder.text_proj.fc{1,2}.*`` and ``mask_decoder.*``. Other keys under the model's
  prefixes (``image_encoder.``, ``prompt_encoder.``, ``mask_decoder.``) are refused: the release's
  ``load_state_dict(strict=False)`` would load a matching one over SAM's or LLaVA's weights, or silently drop a
  mistyped one. Keys outside them (e.g. a discriminator head, training state) are listed as ignored.

Nothing is ever unpickled with code: ``.pth`` / ``.bin`` go through ``torch.load(weights_only=True)``, which
refuses any pickle that references a callable outside torch's tensor allow-list.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import pickle
import re
import tempfile
from pathlib import Path

import torch
from torch import nn

from ivm_ros.models.ivm.memory import bitsandbytes_config, is_quantized, move_heads
from ivm_ros.models.ivm.model import ARCHS, IVMArch, IVMModel

#: The decoder's random Fourier matrix is a buffer, not a trained parameter; see LoadReport.notes.
PE_KEY = "mask_decoder.pe_layer.positional_encoding_gaussian_matrix"
#: Our module path of the LLaVA model inside the peft wrapper.
LLAVA_PREFIX = "prompt_encoder.model.base_model.model."
FORMAT = "ivm_ros.ivm/1"
#: Module prefixes of the model: an IVM-V1.0.bin key under one of them that no rule maps is refused.
MODEL_PREFIXES = ("image_encoder.", "prompt_encoder.", "mask_decoder.")

_LORA_RE = re.compile(
    r"^prompt_encoder\.model\.base_model\.model\."
    r"(?:language_model\.model\.|model\.language_model\.|language_model\.)"
    r"layers\.(\d+)\.self_attn\.(q_proj|v_proj)\.lora_(A|B)(?:\.default)?\.weight$"
)


class CheckpointError(RuntimeError):
    """A weight file that is missing, unsafe, or does not fit the model; the message names the file."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle that would run code when loaded; refused."""


@dataclasses.dataclass
class LoadReport:
    """What a load used, skipped and could not find. ``fatal`` lists the problems that stop a load."""

    loaded: dict[str, int] = dataclasses.field(default_factory=dict)  # source -> tensors copied
    ignored: dict[str, int] = dataclasses.field(default_factory=dict)  # source -> tensors deliberately unused
    ignored_keys: list[str] = dataclasses.field(default_factory=list)  # "source: key" of extras outside the model
    missing: list[str] = dataclasses.field(default_factory=list)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    shape_mismatch: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def fatal(self) -> list[str]:
        out = [f"missing: {k}" for k in self.missing]
        out += [f"unexpected: {k}" for k in self.unexpected]
        return out + [f"shape: {k}" for k in self.shape_mismatch]

    def raise_if_fatal(self) -> None:
        if self.fatal:
            head = "\n  ".join(self.fatal[:20])
            more = f"\n  ... and {len(self.fatal) - 20} more" if len(self.fatal) > 20 else ""
            raise CheckpointError(f"IVM weights do not fit the model ({len(self.fatal)} problems):\n  {head}{more}")

    def summary(self) -> str:
        parts = [
            f"loaded {sum(self.loaded.values())} tensors ({', '.join(f'{k}: {v}' for k, v in self.loaded.items())})"
        ]
        if self.ignored:
            parts.append("ignored " + ", ".join(f"{k}: {v}" for k, v in self.ignored.items()))
        if self.ignored_keys:
            more = f" and {len(self.ignored_keys) - 5} more" if len(self.ignored_keys) > 5 else ""
            parts.append("ignored keys: " + ", ".join(self.ignored_keys[:5]) + more)
        parts.append(
            f"missing {len(self.missing)}, unexpected {len(self.unexpected)}, shape {len(self.shape_mismatch)}"
        )
        return "; ".join(parts) + "".join(f"\n  note: {n}" for n in self.notes)


def require_file(path: str | os.PathLike, what: str, directory: bool = False) -> Path:
    """Returns ``Path(path)`` or raises FileNotFoundError naming the setting and the path."""
    p = Path(os.path.expanduser(str(path)))
    if not str(path):
        raise FileNotFoundError(f"IVM {what}: no path given")
    if directory and not p.is_dir():
        raise FileNotFoundError(f"IVM {what}: folder not found: {p}")
    if not directory and not p.is_file():
        raise FileNotFoundError(f"IVM {what}: file not found: {p}")
    return p


def safe_load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Reads tensors from ``.safetensors`` or a torch pickle (weights only); unwraps ``{"model": ...}``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (non-zip) files cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"{path}: refused to load, the pickle references code and only plain tensors are allowed "
            f"(torch.load weights_only=True): {str(exc).splitlines()[0]}"
        ) from exc
    for wrapper in ("model", "state_dict", "module"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a flat dict of tensors, got {type(obj).__name__}")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def map_sam_keys(sam_sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """SAM checkpoint -> ``image_encoder.*`` tensors (names unchanged) and the ignored keys."""
    mapped = {k: v for k, v in sam_sd.items() if k.startswith("image_encoder.")}
    return mapped, sorted(set(sam_sd) - set(mapped))


def map_release_keys(ivm_sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """IVM-V1.0.bin -> our state-dict names; returns the mapped tensors and the keys no rule matched."""
    mapped: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in ivm_sd.items():
        m = _LORA_RE.match(key)
        if m:
            layer, proj, ab = m.groups()
            mapped[f"{LLAVA_PREFIX}model.language_model.layers.{layer}.self_attn.{proj}.lora_{ab}.default.weight"] = (
                value
            )
        elif key.startswith(("mask_decoder.", "prompt_encoder.text_proj.")):
            mapped[key] = value
        else:
            unknown.append(key)
    return mapped, unknown


def trained_keys(model: IVMModel) -> list[str]:
    """Our names of everything IVM-V1.0.bin must provide: LoRA, text_proj, mask decoder (incl. its buffer)."""
    return [
        k for k in model.state_dict() if k.startswith(("mask_decoder.", "prompt_encoder.text_proj.")) or ".lora_" in k
    ]


def copy_into(
    model: nn.Module, tensors: dict[str, torch.Tensor], expected: list[str], source: str, report: LoadReport
) -> None:
    """Copies ``tensors`` into ``model`` (casting dtype, keeping device); records missing/unexpected/shape."""
    own = model.state_dict()
    for key in expected:
        if key not in tensors:
            if key == PE_KEY:
                report.notes.append(
                    f"{source} has no {PE_KEY} (a random buffer, not trained); using the seed-0 matrix, so masks "
                    "may differ from the release run"
                )
                with torch.no_grad():
                    own[key].copy_(torch.randn(own[key].shape, generator=torch.Generator().manual_seed(0)))
            else:
                report.missing.append(f"{source}: {key}")
    copied = 0
    with torch.no_grad():
        for key, value in tensors.items():
            if key not in expected:
                report.unexpected.append(f"{source}: {key}")
            elif tuple(own[key].shape) != tuple(value.shape):
                report.shape_mismatch.append(f"{source}: {key} {tuple(value.shape)} != {tuple(own[key].shape)}")
            else:
                own[key].copy_(value)
                copied += 1
    report.loaded[source] = report.loaded.get(source, 0) + copied


def _llava_kwargs(dtype: torch.dtype, device: torch.device, quantization: str) -> dict:
    """``from_pretrained`` arguments: dtype, placement on a CUDA device, bitsandbytes quantization."""
    kwargs: dict = {"dtype": dtype, "output_loading_info": True}
    if device.type == "cuda":
        kwargs["device_map"] = str(device)
    if quantization != "none":
        kwargs["quantization_config"] = bitsandbytes_config(quantization, dtype)
    return kwargs


def load_llava(
    folder: str | os.PathLike, dtype: torch.dtype, device: torch.device, report: LoadReport, quantization: str = "none"
):
    """Loads ``LlavaForConditionalGeneration`` and its tokenizer from a local folder (no hub access);
    ``quantization`` "8bit" / "4bit" through bitsandbytes (see :mod:`ivm_ros.models.ivm.memory`)."""
    from transformers import AutoTokenizer, LlavaForConditionalGeneration

    folder = require_file(folder, "llava_path (llava-1.5-7b-hf folder)", directory=True)
    require_file(folder / "config.json", "llava_path config.json")
    kwargs = _llava_kwargs(dtype, device, quantization) | {"local_files_only": True}
    llava, info = LlavaForConditionalGeneration.from_pretrained(str(folder), **kwargs)
    report.missing += [f"llava: {k}" for k in info.get("missing_keys", [])]
    report.unexpected += [f"llava: {k}" for k in info.get("unexpected_keys", [])]
    report.shape_mismatch += [f"llava: {k}" for k in info.get("mismatched_keys", [])]
    report.loaded["llava"] = sum(1 for _ in llava.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    return (llava if is_quantized(llava) else llava.to(device)).eval(), tokenizer


def _build(arch: IVMArch, llava, tokenizer, dtype: torch.dtype, device: torch.device) -> IVMModel:
    """IVMModel around a loaded LLaVA: SAM, decoder and text_proj in ``dtype`` on ``device``, LoRA in float32
    beside its layers; LLaVA stays where it was loaded."""
    with torch.device(device):
        model = IVMModel(arch, llava, tokenizer)
    for name in ("image_encoder", "mask_decoder"):
        getattr(model, name).to(dtype)
    model.prompt_encoder.text_proj.to(dtype)
    for n, p in model.prompt_encoder.model.named_parameters():
        if ".lora_" in n:
            p.data = p.data.to(torch.float32)
    move_heads(model, device)
    return model.eval().requires_grad_(False)


def load_release(
    sam_checkpoint: str | os.PathLike,
    llava_path: str | os.PathLike,
    ivm_checkpoint: str | os.PathLike,
    *,
    arch: IVMArch | str = "ivm-v1.0",
    dtype: torch.dtype = torch.float32,
    llava_dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    quantization: str = "none",
    llava_device: torch.device | str | None = None,
) -> tuple[IVMModel, LoadReport]:
    """Builds IVM from the three released sources; raises CheckpointError on any key problem that matters.

    ``dtype``: SAM, decoder, text_proj; ``llava_dtype`` (default ``dtype``): LLaVA; LoRA is float32.
    ``llava_device`` (default ``device``): where LLaVA is loaded (the CPU for a GPU too small to hold it).
    """
    arch = ARCHS[arch] if isinstance(arch, str) else arch
    device = torch.device(device)
    sam_path = require_file(sam_checkpoint, "sam_checkpoint (sam_vit_h_4b8939.pth)")
    ivm_path = require_file(ivm_checkpoint, "ivm_checkpoint (IVM-V1.0.bin)")
    report = LoadReport()
    llava_device = torch.device(llava_device) if llava_device is not None else device
    llava, tokenizer = load_llava(llava_path, llava_dtype or dtype, llava_device, report, quantization)
    model = _build(arch, llava, tokenizer, dtype, device)

    sam_sd, ignored = map_sam_keys(safe_load_state_dict(sam_path))
    report.ignored["sam"] = len(ignored)
    expected_sam = [k for k in model.state_dict() if k.startswith("image_encoder.")]
    copy_into(model, sam_sd, expected_sam, "sam", report)

    ivm_sd, unknown = map_release_keys(safe_load_state_dict(ivm_path))
    report.unexpected += [f"ivm: {k}" for k in unknown if k.startswith(MODEL_PREFIXES)]
    extras = [f"ivm: {k}" for k in unknown if not k.startswith(MODEL_PREFIXES)]
    if extras:
        report.ignored["ivm"], report.ignored_keys = len(extras), report.ignored_keys + extras
    copy_into(model, ivm_sd, trained_keys(model), "ivm", report)
    report.raise_if_fatal()
    return model, report


def save_converted(model: IVMModel, path: str | os.PathLike) -> None:
    """Writes the whole model (LoRA unmerged) + arch, LLaVA config and tokenizer files into one safetensors."""
    from safetensors.torch import save_file

    if model.prompt_encoder.lora_merged:
        raise ValueError("save before merge_lora(): the converted file keeps LoRA separate, as released")
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    llava = model.prompt_encoder.llava
    with tempfile.TemporaryDirectory() as tmp:
        model.prompt_encoder.tokenizer.save_pretrained(tmp)
        files = {p.name: base64.b64encode(p.read_bytes()).decode() for p in Path(tmp).iterdir() if p.is_file()}
    metadata = {
        "format": FORMAT,
        "arch": json.dumps(model.arch.to_dict()),
        "llava_config": llava.config.to_json_string(),
        "tokenizer_files": json.dumps(files),
    }
    save_file(tensors, str(path), metadata=metadata)


def load_converted(
    path: str | os.PathLike,
    *,
    dtype: torch.dtype = torch.float32,
    llava_dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    quantization: str = "none",
    llava_device: torch.device | str | None = None,
) -> tuple[IVMModel, LoadReport]:
    """Loads a file written by :func:`save_converted` (``ivm-ros ivm-convert``); arguments as
    :func:`load_release`."""
    from safetensors import safe_open
    from transformers import AutoTokenizer, LlavaConfig, LlavaForConditionalGeneration

    path = require_file(path, "converted checkpoint (.safetensors)")
    device = torch.device(device)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not an ivm_ros converted file (format {meta.get('format')!r})")
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    report = LoadReport()
    arch = IVMArch.from_dict(json.loads(meta["arch"]))
    llava_cfg = LlavaConfig.from_dict(json.loads(meta["llava_config"]))
    llava_sd = {
        k[len(LLAVA_PREFIX) :].replace(".base_layer.", "."): tensors.pop(k)
        for k in list(tensors)
        if k.startswith(LLAVA_PREFIX) and ".lora_" not in k
    }
    llava_device = torch.device(llava_device) if llava_device is not None else device
    kwargs = _llava_kwargs(llava_dtype or dtype, llava_device, quantization)
    llava, info = LlavaForConditionalGeneration.from_pretrained(None, config=llava_cfg, state_dict=llava_sd, **kwargs)
    report.missing += [f"llava: {k}" for k in info.get("missing_keys", [])]
    report.unexpected += [f"llava: {k}" for k in info.get("unexpected_keys", [])]
    report.loaded["llava"] = len(llava_sd)
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in json.loads(meta["tokenizer_files"]).items():
            (Path(tmp) / name).write_bytes(base64.b64decode(data))
        tokenizer = AutoTokenizer.from_pretrained(tmp, local_files_only=True)
    model = _build(arch, (llava if is_quantized(llava) else llava.to(llava_device)).eval(), tokenizer, dtype, device)
    own = [k for k in model.state_dict() if not (k.startswith(LLAVA_PREFIX) and ".lora_" not in k)]
    copy_into(model, tensors, own, "converted", report)
    report.raise_if_fatal()
    return model, report
