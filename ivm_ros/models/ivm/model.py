"""The whole IVM model: frames + instructions -> per-pixel probabilities at the input resolution.

Pre-processing follows the release on the device: the frame is resized straight to img_size x img_size
(bicubic, antialiased, two passes rounded to uint8 levels like PIL's ``Image.resize``: within one grey
level), normalised with ImageNet mean/std for SAM, and that square image is resized again to CLIP's size (336)
and CLIP-normalised for LLaVA.
Post-processing: logits (B, 1, 256, 256) -> bilinear to img_size -> bilinear to (H, W) -> sigmoid, in float32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ivm_ros.archs import ArchRecord
from ivm_ros.models.ivm.decoder import ConditionedMaskDecoder
from ivm_ros.models.ivm.image_encoder import ImageEncoderViT
from ivm_ros.models.ivm.prompt_encoder import CLIP_MEAN, CLIP_STD, LLaVAPromptEncoder
from ivm_ros.models.ivm.transformer import TwoWayTransformer

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class IVMArch(ArchRecord):
    """Sizes of the non-LLaVA parts. Defaults are IVM-V1.0 (SAM ViT-H image encoder)."""

    img_size: int = 1024
    patch_size: int = 16
    vit_embed_dim: int = 1280
    vit_depth: int = 32
    vit_num_heads: int = 16
    vit_window_size: int = 14
    vit_global_attn_indexes: tuple[int, ...] = (7, 15, 23, 31)
    prompt_embed_dim: int = 256  # neck output channels = decoder width = condition token width
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    text_proj_hidden: int = 2048
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05


ARCHS: dict[str, IVMArch] = {
    "ivm-v1.0": IVMArch(),
    # CPU-sized stand-in with the same structure, for tests and `ivm-ros bench ivm --tiny`.
    "tiny": IVMArch(
        img_size=64,
        vit_embed_dim=32,
        vit_depth=2,
        vit_num_heads=2,
        vit_window_size=2,
        vit_global_attn_indexes=(1,),
        prompt_embed_dim=32,
        decoder_mlp_dim=64,
        decoder_num_heads=2,
        text_proj_hidden=48,
    ),
}


class IVMModel(nn.Module):
    """image_encoder (SAM ViT) + prompt_encoder (LLaVA + LoRA + text_proj) + mask_decoder.

    Submodules may hold different dtypes (the release runs SAM and the decoder in fp32, LLaVA in fp16);
    :meth:`forward` casts between them.
    """

    def __init__(self, arch: IVMArch, llava: nn.Module, tokenizer) -> None:
        super().__init__()
        self.arch = arch
        self.image_encoder = ImageEncoderViT(
            img_size=arch.img_size,
            patch_size=arch.patch_size,
            embed_dim=arch.vit_embed_dim,
            depth=arch.vit_depth,
            num_heads=arch.vit_num_heads,
            out_chans=arch.prompt_embed_dim,
            window_size=arch.vit_window_size,
            global_attn_indexes=arch.vit_global_attn_indexes,
        )
        self.prompt_encoder = LLaVAPromptEncoder(
            llava,
            tokenizer,
            out_dim=arch.prompt_embed_dim,
            proj_hidden=arch.text_proj_hidden,
            lora_r=arch.lora_r,
            lora_alpha=arch.lora_alpha,
            lora_dropout=arch.lora_dropout,
        )
        grid = arch.img_size // arch.patch_size
        self.mask_decoder = ConditionedMaskDecoder(
            transformer_dim=arch.prompt_embed_dim,
            transformer=TwoWayTransformer(
                depth=arch.decoder_depth,
                embedding_dim=arch.prompt_embed_dim,
                mlp_dim=arch.decoder_mlp_dim,
                num_heads=arch.decoder_num_heads,
            ),
            image_embedding_size=(grid, grid),
            learnable_token_num=1,
        )
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("clip_mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("clip_std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, H, W, 3) uint8 RGB -> SAM input (B, 3, S, S) and CLIP input (B, 3, C, C), float32, normalised."""
        x = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        s = self.arch.img_size
        square = _resize_like_pil(x, (s, s))
        sam_in = (square / 255.0 - self.pixel_mean) / self.pixel_std
        c = self.prompt_encoder.clip_size
        clip = _resize_like_pil(square, (c, c))
        clip_in = (clip / 255.0 - self.clip_mean) / self.clip_std
        return sam_in, clip_in

    def forward(
        self, sam_in: torch.Tensor, clip_in: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Normalised inputs from :meth:`preprocess` + tokens -> mask logits (B, 1, 4*S/16, 4*S/16)."""
        enc_dtype = self.image_encoder.patch_embed.proj.weight.dtype
        image_embeddings = self.image_encoder(sam_in.to(enc_dtype))
        condition = self.prompt_encoder(clip_in, input_ids, attention_mask)
        dec_dtype = self.mask_decoder.mask_tokens.weight.dtype
        return self.mask_decoder(image_embeddings.to(dec_dtype), condition.to(dec_dtype))

    def postprocess(self, logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(B, 1, h, w) logits -> (B, H, W) float32 probabilities, via img_size as in the release."""
        s = self.arch.img_size
        up = F.interpolate(logits.float(), (s, s), mode="bilinear", align_corners=False)
        up = F.interpolate(up, size, mode="bilinear", align_corners=False)
        return torch.sigmoid(up[:, 0])

    @torch.inference_mode()
    def predict_proba(self, images: torch.Tensor, instructions: Sequence[str]) -> torch.Tensor:
        """(B, H, W, 3) uint8 RGB + B instructions -> (B, H, W) float32 probabilities on the model's device."""
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be (B, H, W, 3) uint8, got {tuple(images.shape)}")
        if len(instructions) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(instructions)} instructions")
        sam_in, clip_in = self.preprocess(images)
        ids, mask = self.prompt_encoder.tokenize(instructions, self.device)
        logits = self(sam_in, clip_in, ids, mask)
        return self.postprocess(logits, (images.shape[1], images.shape[2]))


def _resize_like_pil(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) float grey levels -> (B, C, *size), as PIL's ``Image.resize(BICUBIC)`` on uint8 images.

    PIL's a=-0.5 kernel (``antialias=True``) in PIL's two passes, horizontal then vertical, each clamped and
    rounded to uint8 levels: within one grey level of PIL (one pass without the rounding between them was up
    to 5 levels off on a 640x480 photo and 25 on noise, at 1024x1024).
    """
    h, w = size
    if x.shape[-1] != w:
        x = F.interpolate(x, (x.shape[-2], w), mode="bicubic", antialias=True, align_corners=False)
        x = x.clamp_(0.0, 255.0).round_()
    if x.shape[-2] != h:
        x = F.interpolate(x, (h, w), mode="bicubic", antialias=True, align_corners=False)
        x = x.clamp_(0.0, 255.0).round_()
    return x
