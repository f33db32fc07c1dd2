"""IVM's conditioned mask decoder: SAM's two-way transformer driven by one learned mask token and the
language condition token, then two 2x transposed-conv upscalings and a hypernetwork MLP.

Parameter names match ``mask_decoder.*`` in the released ``IVM-V1.0.bin``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ivm_ros.models.ivm.common import LayerNorm2d
from ivm_ros.models.ivm.transformer import TwoWayTransformer


class ConditionedMaskDecoder(nn.Module):
    """(B, C, 64, 64) image embeddings + (B, 1, C) condition -> (B, 1, 256, 256) mask logits."""

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        activation: type[nn.Module] = nn.GELU,
        image_embedding_size: tuple[int, int] = (64, 64),
        learnable_token_num: int = 1,
    ) -> None:
        super().__init__()
        self.image_embedding_size = tuple(image_embedding_size)
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.pe_layer = PositionEmbeddingRandom(transformer_dim // 2)
        self.learnable_token_num = learnable_token_num
        self.mask_tokens = nn.Embedding(learnable_token_num, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.output_hypernetworks_mlps = MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)

    def forward(self, image_embeddings: torch.Tensor, condition_embeddings: torch.Tensor) -> torch.Tensor:
        """image_embeddings (B, C, h, w), condition_embeddings (B, 1, C) -> logits (B, 1, 4h, 4w)."""
        image_pe = self.pe_layer(self.image_embedding_size, image_embeddings.dtype).unsqueeze(0)
        output_tokens = self.mask_tokens.weight.unsqueeze(0).expand(condition_embeddings.size(0), -1, -1)
        tokens = torch.cat((output_tokens.to(condition_embeddings.dtype), condition_embeddings), dim=1)
        b, c, h, w = image_embeddings.shape
        hs, src = self.transformer(image_embeddings, image_pe, tokens)
        mask_tokens_out = hs[:, : self.learnable_token_num, :].mean(dim=1, keepdim=True)
        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        b, c, h, w = upscaled.shape
        masks = self.output_hypernetworks_mlps(mask_tokens_out) @ upscaled.reshape(b, c, h * w)
        return masks.reshape(b, 1, h, w)


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them; names ``layers.{i}``."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


class PositionEmbeddingRandom(nn.Module):
    """SAM's random-Fourier positional encoding; the (2, C/2) Gaussian matrix is a saved buffer."""

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        if scale is None or scale <= 0.0:
            scale = 1.0
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))

    def _pe_encoding(self, coords: torch.Tensor) -> torch.Tensor:
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix.to(coords.dtype)
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(C, h, w) encoding of the centres of an h x w grid in [0, 1]^2."""
        h, w = size
        grid = torch.ones((h, w), device=self.positional_encoding_gaussian_matrix.device, dtype=dtype)
        y_embed = (grid.cumsum(dim=0) - 0.5) / h
        x_embed = (grid.cumsum(dim=1) - 0.5) / w
        return self._pe_encoding(torch.stack([x_embed, y_embed], dim=-1)).permute(2, 0, 1)
