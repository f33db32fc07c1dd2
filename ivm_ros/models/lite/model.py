"""The lite IVM model: a small CNN image encoder trained from scratch, a frozen sentence embedding of the
instruction, and IVM's conditioned decoder (SAM's two-way transformer with a learned mask token plus
instruction tokens, transposed-conv upscaling and a hypernetwork MLP).

Like SAM 2's decoder, the upscaling path adds the encoder's stride-4 and stride-2 feature maps, so the
stride-2 logits keep the edges of 10-pixel blocks. Shapes for the default arch (S = 160):

    image (B, 3, S, S) -> encoder -> (B, D, S/8, S/8) + skips (B, D/4, S/4, S/4), (B, D/8, S/2, S/2)
    instruction (B, 384) -> MLP -> (B, T, D) condition tokens
    decoder: [mask token, T condition tokens] <-> image tokens -> logits (B, 1, S/2, S/2)
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ivm_ros.archs import ArchRecord
from ivm_ros.models.ivm.common import LayerNorm2d
from ivm_ros.models.ivm.decoder import MLP, PositionEmbeddingRandom
from ivm_ros.models.ivm.transformer import TwoWayTransformer
from ivm_ros.models.lite.text import EMBED_DIM

#: ImageNet statistics (0-255 scale), as SAM normalises.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


@dataclasses.dataclass(frozen=True)
class LiteArch(ArchRecord):
    """Sizes of the lite model; saved in the checkpoint's metadata."""

    image_size: int = 160  # input side in pixels (frames are resized straight to S x S, as IVM does)
    widths: tuple[int, int, int] = (16, 32, 64)  # encoder channels at stride 2, 4, 8
    blocks: tuple[int, int, int] = (0, 1, 2)  # residual blocks per stage
    dim: int = 128  # transformer width (= neck output)
    depth: int = 2
    heads: int = 4
    mlp_dim: int = 512
    condition_tokens: int = 4
    text_dim: int = EMBED_DIM


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv + BatchNorm, ReLU, residual. (B, C, H, W) -> same."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv(channels, channels)
        self.conv2 = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(self.conv1(x)))


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv + BatchNorm + ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class ImageEncoder(nn.Module):
    """(B, 3, S, S) normalised image -> embedding (B, dim, S/8, S/8) and skips at stride 4 and 2.

    A small ResNet (plain 3x3 convolutions: on CPU they train several times faster than depthwise ones).
    """

    def __init__(self, arch: LiteArch) -> None:
        super().__init__()
        w, n = arch.widths, arch.blocks
        self.stage1 = nn.Sequential(_conv(3, w[0], 2), *[BasicBlock(w[0]) for _ in range(n[0])])
        self.stage2 = nn.Sequential(_conv(w[0], w[1], 2), *[BasicBlock(w[1]) for _ in range(n[1])])
        self.stage3 = nn.Sequential(_conv(w[1], w[2], 2), *[BasicBlock(w[2]) for _ in range(n[2])])
        self.neck = nn.Sequential(nn.Conv2d(w[2], arch.dim, 1, bias=False), LayerNorm2d(arch.dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s2 = self.stage1(x)
        s4 = self.stage2(s2)
        s8 = self.stage3(s4)
        return self.neck(s8), s4, s2


class ConditionEncoder(nn.Module):
    """(B, text_dim) sentence embedding -> (B, T, dim) condition tokens (IVM's text_proj, T tokens)."""

    def __init__(self, arch: LiteArch) -> None:
        super().__init__()
        self.tokens = arch.condition_tokens
        self.dim = arch.dim
        self.proj = MLP(arch.text_dim, 2 * arch.dim, arch.condition_tokens * arch.dim, 2)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.proj(text).view(text.shape[0], self.tokens, self.dim)


class LiteMaskDecoder(nn.Module):
    """IVM's conditioned decoder with SAM 2-style high-resolution skips.

    embedding (B, C, h, w), skips (B, w1, 2h, 2w) and (B, w0, 4h, 4w), condition (B, T, C)
    -> logits (B, 1, 4h, 4w).
    """

    def __init__(self, arch: LiteArch) -> None:
        super().__init__()
        c = arch.dim
        self.grid = (arch.image_size // 8, arch.image_size // 8)
        self.transformer = TwoWayTransformer(depth=arch.depth, embedding_dim=c, num_heads=arch.heads,
                                             mlp_dim=arch.mlp_dim)
        self.pe_layer = PositionEmbeddingRandom(c // 2)
        self.mask_tokens = nn.Embedding(1, c)
        self.up1 = nn.ConvTranspose2d(c, c // 4, kernel_size=2, stride=2)
        self.norm1 = LayerNorm2d(c // 4)
        self.up2 = nn.ConvTranspose2d(c // 4, c // 8, kernel_size=2, stride=2)
        self.skip4 = nn.Conv2d(arch.widths[1], c // 4, 1)
        self.skip2 = nn.Conv2d(arch.widths[0], c // 8, 1)
        self.act = nn.GELU()
        self.hyper = MLP(c, c, c // 8, 3)

    def forward(self, embedding: torch.Tensor, s4: torch.Tensor, s2: torch.Tensor,
                condition: torch.Tensor) -> torch.Tensor:
        b, c, h, w = embedding.shape
        pe = self.pe_layer((h, w), embedding.dtype).unsqueeze(0)
        tokens = torch.cat((self.mask_tokens.weight.unsqueeze(0).expand(b, -1, -1), condition), dim=1)
        hs, src = self.transformer(embedding, pe, tokens)
        x = src.transpose(1, 2).reshape(b, c, h, w)
        x = self.act(self.norm1(self.up1(x) + self.skip4(s4)))
        x = self.act(self.up2(x) + self.skip2(s2))
        weights = self.hyper(hs[:, 0, :]).unsqueeze(1)  # (B, 1, C/8)
        return (weights @ x.flatten(2)).view(b, 1, x.shape[2], x.shape[3])


class LiteIVM(nn.Module):
    """Image (B, 3, S, S) float in [0, 255] + sentence embeddings (B, text_dim) -> logits (B, 1, S/2, S/2)."""

    def __init__(self, arch: LiteArch | None = None) -> None:
        super().__init__()
        self.arch = arch or LiteArch()
        if self.arch.image_size % 8:
            raise ValueError(f"lite image_size must be a multiple of 8, got {self.arch.image_size}")
        self.image_encoder = ImageEncoder(self.arch)
        self.condition_encoder = ConditionEncoder(self.arch)
        self.mask_decoder = LiteMaskDecoder(self.arch)
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        x = (images - self.pixel_mean) / self.pixel_std
        emb, s4, s2 = self.image_encoder(x)
        return self.mask_decoder(emb, s4, s2, self.condition_encoder(text))


class QualityDiscriminator(nn.Module):
    """DWSL's discriminator: P(label is high quality | image, mask, instruction).

    image (B, 3, S, S) float [0, 255], mask (B, 1, S, S) float {0, 1}, text (B, text_dim) -> logits (B,).
    The mask enters as a fourth input channel and as a pooling weight, so the head sees both the label's
    shape and what lies under it; the instruction is concatenated before the classifier.
    """

    def __init__(self, width: int = 16, text_dim: int = EMBED_DIM) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(_conv(4, w, 2), _conv(w, 2 * w, 2), BasicBlock(2 * w), _conv(2 * w, 4 * w, 2),
                                      BasicBlock(4 * w), _conv(4 * w, 4 * w, 2))
        self.text = nn.Linear(text_dim, 4 * w)
        self.head = MLP(12 * w + 1, 4 * w, 1, 2)
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor, masks: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        x = torch.cat(((images - self.pixel_mean) / self.pixel_std, masks * 2 - 1), dim=1)
        f = self.features(x)  # (B, 4w, S/16, S/16)
        m = nn.functional.interpolate(masks, size=f.shape[-2:], mode="area")
        area = m.flatten(1).sum(1, keepdim=True)
        inside = (f * m).flatten(2).sum(2) / area.clamp(min=1e-3)
        pooled = f.mean(dim=(2, 3))
        frac = masks.flatten(1).mean(1, keepdim=True)
        return self.head(torch.cat((inside, pooled, self.text(text), frac), dim=1)).squeeze(1)
