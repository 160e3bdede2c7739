"""The teacher's text encoder: a Hugging Face transformer over title, tags and description.

A pretrained model (a hub name already in the local cache, or a local folder) is used when one
is configured; nothing is downloaded at run time. Without one, a WordPiece tokenizer is trained
on the catalogue's own text and a small BERT is trained from scratch with the recommender.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from export import distributed
from export.console import quiet_torchao
from export.data.contract import Item
from export.models.text_wordllama import WORDLLAMA, WordLlamaText, is_wordllama, wordllama_dim


def item_text(item: Item) -> str:
    """The text the teacher reads for one item."""
    parts = [item.title, " ".join(item.tags), item.description]
    return " . ".join(p for p in parts if p)


def _scratch_tokenizer(texts: Sequence[str], vocab_size: int):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    # NFKC + lowercase + accent stripping so any script tokenises consistently.
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.StripAccents()])
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    # The trainer is not reproducible across processes (ties in hash order): in a distributed
    # run every rank takes rank 0's vocabulary, so the embedding tables have one shape.
    tok = Tokenizer.from_str(distributed.from_main(tok.to_str()))
    return _fast_tokenizer(tok, {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"})


def _fast_tokenizer(tok, special_tokens: dict):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, **special_tokens)


class TextEncoder(nn.Module):
    """Mean-pooled transformer states of each item's text, projected to ``out_dim``.

    The item texts are tokenised once; their token ids are buffers of the module (saved with its
    weights), so a rebuilt encoder needs neither the texts nor the pretrained folder.
    """

    def __init__(self, texts: Sequence[str], out_dim: int, pretrained: str | Path | None = None,
                 hidden: int = 64, layers: int = 2, heads: int = 2, max_len: int = 48, vocab_size: int = 8000,
                 arch: dict | None = None) -> None:
        """:param arch: rebuild the module :meth:`architecture` described (from a checkpoint)
            instead; ``texts`` and the sizes are then ignored and the weights and token ids come
            with ``load_state_dict``."""
        super().__init__()
        with quiet_torchao():  # transformers' model classes import torchao
            from transformers import AutoConfig, AutoModel, AutoTokenizer, BertConfig, BertModel

        if arch is not None:
            from tokenizers import Tokenizer

            self.tokenizer = _fast_tokenizer(Tokenizer.from_str(arch["tokenizer"]), arch["special_tokens"])
            self.encoder = AutoModel.from_config(AutoConfig.for_model(**arch["encoder_config"]), **arch["model_kwargs"])
            pretrained, self._model_kwargs = arch["pretrained"], dict(arch["model_kwargs"])
            ids = torch.zeros(arch["n_texts"], arch["max_len"], dtype=torch.long)
            enc = {"input_ids": ids, "attention_mask": torch.zeros_like(ids)}
        else:
            if pretrained:
                self.tokenizer = AutoTokenizer.from_pretrained(str(pretrained), local_files_only=True)
                self.encoder = AutoModel.from_pretrained(str(pretrained), local_files_only=True)
                self._model_kwargs = {}
            else:
                self.tokenizer = _scratch_tokenizer(texts, vocab_size)
                config = BertConfig(vocab_size=len(self.tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                                    num_attention_heads=heads, intermediate_size=2 * hidden, max_position_embeddings=max_len + 2,
                                    hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
                self._model_kwargs = {"add_pooling_layer": False}
                self.encoder = BertModel(config, **self._model_kwargs)
            enc = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
        self.pretrained = str(pretrained) if pretrained else None
        self.register_buffer("input_ids", enc["input_ids"])
        self.register_buffer("attention_mask", enc["attention_mask"])
        self.proj = nn.Linear(self.encoder.config.hidden_size, out_dim)

    @property
    def n_texts(self) -> int:
        """How many catalogue texts the encoder holds."""
        return int(self.input_ids.shape[0])

    def architecture(self) -> dict:
        """What :class:`TextEncoder` needs to rebuild this module (``arch=``), as plain types:
        the tokenizer's JSON, the transformer's config, the output size and the text count."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(f"the tokenizer of {self.pretrained} has no fast (tokenizers) version to checkpoint")
        return {
            "tokenizer": backend.to_str(),
            "special_tokens": {k: v for k, v in self.tokenizer.special_tokens_map.items() if isinstance(v, str)},
            "encoder_config": self.encoder.config.to_dict(),
            "model_kwargs": dict(self._model_kwargs),
            "pretrained": self.pretrained,
            "out_dim": self.proj.out_features,
            "n_texts": int(self.input_ids.shape[0]),
            "max_len": int(self.input_ids.shape[1]),
        }

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


def new_text_encoder(texts: Sequence[str], out_dim: int, model: str | Path | None, hidden: int = 64, layers: int = 2,
                     max_len: int = 48) -> TextEncoder | WordLlamaText:
    """The teacher's text encoder for ``--text-model``: WordLlama's packaged vectors
    (``wordllama[:DIM]``), a pretrained Hugging Face model (a cached hub name or a folder), or,
    without one, a small BERT trained from scratch on the catalogue."""
    if is_wordllama(str(model) if model else None):
        return WordLlamaText(texts, out_dim, wordllama_dim(str(model)))
    return TextEncoder(texts, out_dim, model, hidden, layers, max_len=max_len)


def rebuild_text_encoder(arch: dict, out_dim: int) -> TextEncoder | WordLlamaText:
    """The text encoder an ``architecture()`` describes (weights to follow by ``load_state_dict``)."""
    if arch.get("kind") == WORDLLAMA:
        return WordLlamaText((), out_dim, arch=arch)
    return TextEncoder((), out_dim, arch=arch)
