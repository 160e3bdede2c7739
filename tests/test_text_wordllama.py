"""The WordLlama text teacher: packaged vectors, offline, checkpointed with the teacher."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the text teacher is server side: pip install 'edgerec[export]'")
pytest.importorskip("wordllama", reason="pip install wordllama (the dev and wordllama extras)")

from edge.errors import DataError  # noqa: E402
from export.models.text_wordllama import WordLlamaText, is_wordllama, wordllama_dim, wordllama_vectors  # noqa: E402


def test_packaged_vectors_know_what_titles_mean(monkeypatch):
    """Related titles are nearer than unrelated ones, and nothing is fetched (no network, no cache)."""
    import socket

    def refuse(*a, **k):
        raise AssertionError("wordllama tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HOME", "/nonexistent")  # its default cache folder cannot be the source
    v = wordllama_vectors(["Star Wars . space adventure", "The Empire Strikes Back . space adventure sequel",
                           "Sense and Sensibility . period romance drama", ""], 256)
    assert v.shape == (4, 256) and v.dtype == np.float32 and np.isfinite(v).all()
    sims = v[:3] @ v[:3].T
    assert sims[0, 1] > sims[0, 2] and sims[0, 1] > sims[1, 2]
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-4)


def test_width_is_checked():
    assert is_wordllama("wordllama") and is_wordllama("wordllama:128") and not is_wordllama("bert-base") and not is_wordllama(None)
    assert wordllama_dim("wordllama") == 256 and wordllama_dim("wordllama:64") == 64
    for bad in ("wordllama:1000", "wordllama:x"):
        with pytest.raises(DataError, match="width"):
            wordllama_dim(bad)
    assert wordllama_vectors(["a", "b"], 64).shape == (2, 64)


def test_teacher_with_wordllama_text_round_trips_its_checkpoint(tiny_dataset, tmp_path):
    """A teacher trained with --text-model wordllama saves and reloads to the same item table."""
    from tests.conftest import tiny_build_config

    from export.checkpoints import load_teacher, save_teacher
    from export.data.split import leave_last_out
    from export.sequences import user_events
    from export.train import train_teacher

    cfg = tiny_build_config().teacher
    cfg.steps, cfg.text_model = 30, "wordllama:128"
    split = leave_last_out(tiny_dataset)
    feats = np.random.default_rng(0).normal(size=(len(tiny_dataset.items), 8)).astype(np.float32)
    model, log = train_teacher(user_events(split), tiny_dataset.items, feats, cfg, progress=False)
    assert isinstance(model.fusion.text, WordLlamaText) and log["text_model"] == "wordllama:128"
    table = model.item_table()
    again = load_teacher(save_teacher(model, tmp_path / "teacher.pt"))
    assert isinstance(again.fusion.text, WordLlamaText)
    assert torch.allclose(again.item_table(), table, atol=1e-6)
