"""The server on PyTorch's own distributed engine: a 2-process CPU build (gloo,
DistributedDataParallel, torchelastic on loopback) of the tiny catalogue gives a bundle that
verifies and ranks, trained by both ranks on their own shards of users."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.conftest import tiny_build_config

torch = pytest.importorskip("torch", reason="the distributed build needs the server side: pip install 'edgerec[export]'")


@pytest.mark.slow
def test_a_two_process_build_writes_a_bundle_that_ranks(tiny_dataset, tmp_path):
    from edge.context import Context
    from edge.recommender import Recommender
    from export.pipeline import build_distributed

    cfg = tiny_build_config(cold_fraction=0.0, export_teacher=False, workers=2)
    res = build_distributed(2, tiny_dataset, tmp_path / "bundle", tmp_path / "work", cfg)
    report = json.loads((tmp_path / "work" / "report.json").read_text())
    log = report["teacher"]["log"]
    assert log["processes"] == 2 and log["steps"] == cfg.teacher.steps
    assert log["loss_last"] < log["loss_first"]  # the group learnt, not just ran
    assert res.bundle == tmp_path / "bundle" and (tmp_path / "bundle.tar").is_file()
    rec = Recommender.open(res.bundle, tmp_path / "h.db")
    items = [it.item_id for it in rec.bundle.items]
    for n, item in enumerate(items[:6]):
        rec.record("alice", item, "complete", timestamp=1_750_000_000 + 60 * n)
    recs = rec.recommend("alice", k=5, context=Context.at(1_750_000_600))
    assert len(recs) == 5 and not {r.item_id for r in recs} & set(items[:6])
    assert all(np.isfinite(r.score) for r in recs)
    rec.close()


def test_each_rank_draws_from_its_own_shard():
    from export.distributed import Group

    rows = np.arange(10)
    shards = [Group(r, 3).shard(rows) for r in range(3)]
    assert sorted(np.concatenate(shards).tolist()) == rows.tolist()
    assert not set(shards[0]) & set(shards[1])
    assert Group(0, 4).per_rank(32) == 8 and Group(0, 64).per_rank(32) == 1
    assert Group().shard(rows) is rows


_FAILING_RANK = '''
import sys
sys.path.insert(0, {root!r})
import torch.distributed as dist
from export import distributed


def rank_main():
    group = distributed.init_from_env()
    with distributed.membership(group):
        if group.rank == 1:
            raise ValueError("rank 1 could not read its shard")
        dist.barrier()  # rank 0 waits here for a rank that will never come


if __name__ == "__main__":
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    try:
        distributed.launch(2, rank_main)
    except ChildFailedError as exc:
        print("FAILED:", exc)
        sys.exit(3)
'''


def test_a_failing_rank_ends_the_run_with_its_error_not_a_hang(tmp_path):
    """A rank that raises while another waits in a collective: the launcher stops the run and
    reports the error (the rank leaves the group without the barrier a clean exit waits on)."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "failing_rank.py"
    script.write_text(_FAILING_RANK.format(root=str(Path(__file__).resolve().parents[1])))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert out.returncode == 3, out.stderr[-2000:]
    # The launcher may report rank 0 (its peer vanished) first; rank 1 says why itself.
    assert "edgerec: rank 1 of 2 failed: ValueError: rank 1 could not read its shard" in out.stderr


_TOKENIZER_RANKS = '''
import sys
sys.path.insert(0, {root!r})
from export import distributed
from export.models.text_encoder import _scratch_tokenizer


def rank_main():
    group = distributed.init_from_env()
    with distributed.membership(group):
        # Different texts per rank: without rank 0's vocabulary everywhere they could not agree.
        words = ["alpha beta gamma", "delta epsilon"] if group.rank == 0 else ["zeta eta theta iota", "kappa"]
        tok = _scratch_tokenizer(words * 20, 200)
        return sorted(tok.get_vocab().items())


if __name__ == "__main__":
    out = distributed.launch(2, rank_main)
    print("SAME" if out[0] == out[1] else "DIFFERENT", len(out[0]))
'''


def test_every_rank_trains_with_rank_0s_tokenizer(tmp_path):
    """The WordPiece trainer is not reproducible across processes; a vocabulary of another size
    on one rank made DDP refuse the embedding table ("params[0] ... appears not to match")."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "tokenizer_ranks.py"
    script.write_text(_TOKENIZER_RANKS.format(root=str(Path(__file__).resolve().parents[1])))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == "SAME", out.stdout
