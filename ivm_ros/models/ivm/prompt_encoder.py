"""IVM's prompt encoder: LLaVA-1.5 (transformers) with LoRA (peft) on the language model's q_proj/v_proj.

The last layer's hidden state at the second-to-last prompt position goes through ``text_proj``
(timm-style ``Mlp``: fc1 4096 -> 2048, GELU, fc2 2048 -> 256) to one condition token. Parameter names under
``prompt_encoder.*`` follow the release (``model.base_model.model...lora_A.default.weight``, ``text_proj.fc1``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: The release's prompt for the policy role (model/llava_encoder.py ``llavaTextPreprocess``).
PROMPT_TEMPLATE = "USER: <image>\n{instruction} \n ASSISTANT:"
IMAGE_TOKEN = "<image>"
#: CLIPImageProcessor normalisation used by llava-1.5 (OpenAI CLIP mean/std, RGB, for pixels in [0, 1]).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: peft target: every q_proj / v_proj Linear inside the language model (the release selects the same set).
LORA_TARGET_REGEX = r".*language_model.*\.(q_proj|v_proj)"
#: left: position -2 is the same token in every row of a mixed-length batch (ivm_ros' default); right: pad
#: after the text; tokenizer: the tokenizer's own configured side, as the release (its shorter rows then read
#: position -2 from padding when that side is right).
PADDING_SIDES = ("left", "right", "tokenizer")


class Mlp(nn.Module):
    """timm's ``Mlp`` layout (fc1 -> GELU -> fc2); (..., in) -> (..., out)."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LLaVAPromptEncoder(nn.Module):
    """Instruction + image -> (B, 1, out_dim) condition token.

    Args:
        llava: a ``LlavaForConditionalGeneration`` (weights already loaded).
        tokenizer: its tokenizer (not modified: the padding side is chosen per batch, see ``padding_side``).

    Attributes:
        padding_side: one of PADDING_SIDES, applied to every batch (default left).
        input_device: where LLaVA's inputs go (its own device, or the GPU that an offloaded LLaVA executes on);
            None: the device of the pixel values given to :meth:`forward`.
    """

    def __init__(
        self,
        llava: nn.Module,
        tokenizer,
        out_dim: int = 256,
        proj_hidden: int = 2048,
        lora_r: int = 8,
        lora_alpha: int = 16,
        lora_dropout: float = 0.05,
    ) -> None:
        super().__init__()
        from peft import LoraConfig, get_peft_model

        cfg = llava.config
        lora_config = LoraConfig(
            r=lora_r,
            lora_alpha=lora_alpha,
            target_modules=LORA_TARGET_REGEX,
            lora_dropout=lora_dropout,
            bias="none",
            task_type="CAUSAL_LM",
        )
        self.model = get_peft_model(llava, lora_config)
        self.text_proj = Mlp(cfg.text_config.hidden_size, proj_hidden, out_dim)
        self.tokenizer = tokenizer
        self.padding_side = "left"
        self.input_device: torch.device | None = None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.unk_token
        vision = cfg.vision_config
        self.clip_size = int(vision.image_size)
        patches = (vision.image_size // vision.patch_size) ** 2
        self.num_image_tokens = patches + (1 if cfg.vision_feature_select_strategy == "full" else 0)
        self.lora_merged = False
        self._token_cache: tuple[tuple, tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def llava(self) -> nn.Module:
        """The LlavaForConditionalGeneration inside (LoRA layers injected unless merged)."""
        return self.model if self.lora_merged else self.model.get_base_model()

    def prompts(self, instructions: Sequence[str]) -> list[str]:
        """The release's prompt text per instruction, with ``<image>`` expanded to one token per patch."""
        expanded = IMAGE_TOKEN * self.num_image_tokens
        return [PROMPT_TEMPLATE.format(instruction=t).replace(IMAGE_TOKEN, expanded) for t in instructions]

    @property
    def batch_padding_side(self) -> str:
        """The side a batch is padded on: ``padding_side``, or the tokenizer's own for "tokenizer"."""
        if self.padding_side not in PADDING_SIDES:
            raise ValueError(f"padding_side must be one of {PADDING_SIDES}, got {self.padding_side!r}")
        return self.tokenizer.padding_side if self.padding_side == "tokenizer" else self.padding_side

    def tokenize(self, instructions: Sequence[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) int64 input ids and attention mask, padded on :attr:`batch_padding_side`, on ``device``.

        The last result is cached: a robot repeats one instruction for many frames, so this skips the
        tokenizer and the host-to-device copy on all but the first.
        """
        side = self.batch_padding_side
        key = (tuple(instructions), str(device), side)
        if self._token_cache is not None and self._token_cache[0] == key:
            return self._token_cache[1]
        enc = self.tokenizer(self.prompts(instructions), return_tensors="pt", padding=True, padding_side=side)
        out = (enc["input_ids"].to(device), enc["attention_mask"].to(device))
        self._token_cache = (key, out)
        return out

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """pixel_values (B, 3, S, S) CLIP-normalised; ids/mask (B, L) -> (B, 1, out_dim) in text_proj's dtype,
        on text_proj's device (LLaVA may run elsewhere, see ``input_device``).

        ``LlavaModel`` returns the language model's final-norm output, i.e. ``hidden_states[-1]`` of the release.
        """
        llava = self.llava
        device = self.input_device or pixel_values.device
        out = llava.model(
            input_ids=input_ids.to(device),
            pixel_values=pixel_values.to(device, llava.dtype),
            attention_mask=attention_mask.to(device),
            use_cache=False,
        )
        hidden = out.last_hidden_state[:, -2:-1]
        weight = self.text_proj.fc1.weight
        return self.text_proj(hidden.to(weight.device, weight.dtype))

    @torch.no_grad()
    def merge_lora(self) -> None:
        """Folds the LoRA deltas into q_proj/v_proj (W += alpha/r * B @ A) for inference speed."""
        if not self.lora_merged:
            self.model = self.model.merge_and_unload()
            self.lora_merged = True
