"""Tiny offline stand-ins for IVM's three weight sources (no hub access needed).

``build_tiny_sources(folder)`` writes, in the release's own formats and key names:
``sam_tiny.pth`` (torch pickle, SAM key layout incl. SAM heads that IVM ignores), ``llava-tiny/``
(transformers folder: config, safetensors, a word-level tokenizer built here), ``IVM-tiny.bin`` (torch pickle,
release key layout with the transformers<4.52 LLaVA path). Used by the tests and ``ivm-ros bench ivm --tiny``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ivm_ros.models.ivm.model import ARCHS, IVMModel

WORDS = (
    "USER",
    "ASSISTANT",
    ":",
    ".",
    ",",
    "'",
    "pick",
    "up",
    "put",
    "place",
    "move",
    "push",
    "pull",
    "open",
    "close",
    "the",
    "a",
    "an",
    "on",
    "in",
    "into",
    "to",
    "of",
    "and",
    "with",
    "red",
    "green",
    "blue",
    "yellow",
    "pink",
    "white",
    "black",
    "cup",
    "plate",
    "pan",
    "bowl",
    "block",
    "drawer",
    "door",
    "button",
    "switch",
    "light",
    "duck",
    "left",
    "right",
    "top",
    "bottom",
    "table",
    "object",
    "it",
)
SPECIALS = ("<unk>", "<s>", "</s>", "<pad>", "<image>")


def tiny_tokenizer():
    """A word-level fast tokenizer: BOS prepended, ``<image>`` special, unknown words -> ``<unk>``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + tuple(WORDS))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens=["<image>"],
    )


def tiny_llava(seed: int = 0):
    """A random LlavaForConditionalGeneration with the llava-1.5 structure at toy size, and its tokenizer."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    tokenizer = tiny_tokenizer()
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=28, patch_size=14
    )
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    return LlavaForConditionalGeneration(cfg).eval(), tokenizer


def tiny_model(seed: int = 0) -> IVMModel:
    """A random tiny IVMModel in fp32 on the CPU, LoRA B non-zero so the adapters matter."""
    llava, tokenizer = tiny_llava(seed)
    torch.manual_seed(seed + 1)
    model = IVMModel(ARCHS["tiny"], llava, tokenizer).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_" in name or name.startswith("image_encoder.") and ("rel_pos" in name or "pos_embed" in name):
                p.normal_(0.0, 0.2)
    return model


def release_state_dicts(model: IVMModel) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(SAM checkpoint dict, IVM-V1.0.bin dict) for ``model`` in the release's key layout."""
    sd = model.state_dict()
    sam = {k: v.clone() for k, v in sd.items() if k.startswith("image_encoder.")}
    # SAM's own heads and buffers, present in sam_vit_h_4b8939.pth and ignored by IVM.
    sam["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"] = torch.randn(2, 128)
    sam["mask_decoder.iou_token.weight"] = torch.randn(1, 256)
    sam["pixel_mean"] = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
    ivm: dict[str, torch.Tensor] = {}
    prefix = "prompt_encoder.model.base_model.model.model.language_model.layers."
    for k, v in sd.items():
        if k.startswith(prefix) and ".lora_" in k:
            ivm["prompt_encoder.model.base_model.model.language_model.model.layers." + k[len(prefix) :]] = v.clone()
        elif k.startswith(("mask_decoder.", "prompt_encoder.text_proj.")):
            ivm[k] = v.clone()
    return sam, ivm


def build_tiny_sources(folder: str | os.PathLike, seed: int = 0) -> dict[str, Path]:
    """Writes the three tiny sources into ``folder``; returns their paths (keys sam, llava, ivm)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = tiny_model(seed)
    sam, ivm = release_state_dicts(model)
    paths = {"sam": folder / "sam_tiny.pth", "llava": folder / "llava-tiny", "ivm": folder / "IVM-tiny.bin"}
    torch.save(sam, paths["sam"])
    torch.save(ivm, paths["ivm"])
    llava = model.prompt_encoder.model.get_base_model()
    # Save the base LLaVA without adapters (that is what the llava-1.5-7b-hf folder holds).
    with model.prompt_encoder.model.disable_adapter():
        base_sd = {k.replace(".base_layer.", "."): v for k, v in llava.state_dict().items() if ".lora_" not in k}
    llava_clean = type(llava)(llava.config)
    llava_clean.load_state_dict(base_sd)
    llava_clean.save_pretrained(paths["llava"])
    model.prompt_encoder.tokenizer.save_pretrained(paths["llava"])
    return paths
