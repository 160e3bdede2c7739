"""The teacher's text encoder: a Hugging Face transformer over title, tags and description.

A pretrained model (a hub name already in the local cache, or a local folder) is used when one
is configured; nothing is downloaded at run time. Without one, a WordPiece tokenizer is trained
on the catalogue's own text and a small BERT is trained from scratch with the recommender.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from export.data.contract import Item


def item_text(item: Item) -> str:
    """The text the teacher reads for one item."""
    parts = [item.title, " ".join(item.tags), item.description]
    return " . ".join(p for p in parts if p)


def _scratch_tokenizer(texts: Sequence[str], vocab_size: int):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    # NFKC + lowercase + accent stripping so any script tokenises consistently.
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.StripAccents()])
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


class TextEncoder(nn.Module):
    """Mean-pooled transformer states of each item's text, projected to ``out_dim``."""

    def __init__(self, texts: Sequence[str], out_dim: int, pretrained: str | Path | None = None,
                 hidden: int = 64, layers: int = 2, heads: int = 2, max_len: int = 48, vocab_size: int = 8000) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

        if pretrained:
            self.tokenizer = AutoTokenizer.from_pretrained(str(pretrained), local_files_only=True)
            self.encoder = AutoModel.from_pretrained(str(pretrained), local_files_only=True)
        else:
            self.tokenizer = _scratch_tokenizer(texts, vocab_size)
            config = BertConfig(vocab_size=len(self.tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                                num_attention_heads=heads, intermediate_size=2 * hidden, max_position_embeddings=max_len + 2,
                                hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
            self.encoder = BertModel(config, add_pooling_layer=False)
        self.pretrained = str(pretrained) if pretrained else None
        enc = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
        # Item texts are fixed, so they are tokenised once and kept as buffers.
        self.register_buffer("input_ids", enc["input_ids"], persistent=False)
        self.register_buffer("attention_mask", enc["attention_mask"], persistent=False)
        self.proj = nn.Linear(self.encoder.config.hidden_size, out_dim)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """Text vectors of catalogue ``rows``."""
        ids, att = self.input_ids[rows], self.attention_mask[rows]
        states = self.encoder(input_ids=ids, attention_mask=att).last_hidden_state
        w = att.unsqueeze(-1).to(states.dtype)
        pooled = (states * w).sum(1) / w.sum(1).clamp(min=1.0)
        return self.proj(pooled)

    def save(self, folder: Path) -> None:
        """Write the tokenizer and transformer in Hugging Face format (for optimum's exporter)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)


@torch.no_grad()
def encode_all(encoder: TextEncoder, batch: int = 512) -> np.ndarray:
    """Text vectors of the whole catalogue (eval mode)."""
    was = encoder.training
    encoder.eval()
    n = encoder.input_ids.shape[0]
    out = torch.cat([encoder(torch.arange(s, min(s + batch, n))) for s in range(0, n, batch)])
    encoder.train(was)
    return out.numpy()
