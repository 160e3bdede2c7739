"""The device API: one object that opens a bundle and a history, and answers "what next?"."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from edge.backends import BACKENDS
from edge.bundle import Bundle
from edge.context import Context
from edge.errors import HistoryError
from edge.history import NEGATIVE_KINDS, POSITIVE_KINDS, HistoryStore
from edge.ranking import Recommendation, explain, history_window, score_int8, top_k


class Recommender:
    """Offline recommendations from a verified bundle and the on-device history.

    >>> rec = Recommender.open("bundle/", "history.db")
    >>> rec.record("alice", "v00012", "complete")
    >>> rec.recommend("alice", k=10)
    """

    def __init__(self, bundle: Bundle, history: HistoryStore, backends: Sequence[str] = BACKENDS, threads: int = 1) -> None:
        self.bundle = bundle
        self.history = history
        self.interest = bundle.load_model("interest", backends, threads)
        #: Seconds the last :meth:`recommend` spent in each stage.
        self.timings: dict[str, float] = {}

    @classmethod
    def open(cls, bundle: str | Path, db: str | Path, backends: Sequence[str] = BACKENDS, threads: int = 1) -> "Recommender":
        """Verify ``bundle`` and open (or create) the SQLite history ``db``.

        :param bundle: a bundle folder, or a bundle store root (see :mod:`edge.install`),
            meaning the store's active bundle.
        :raises BundleError: the bundle fails verification.
        :raises HistoryError: the database cannot be opened.
        :raises BackendError: no backend can run the bundle's models.
        """
        from edge.install import resolve_bundle

        return cls(Bundle.open(resolve_bundle(bundle)), HistoryStore(db), backends, threads)

    def close(self) -> None:
        """Close the history database."""
        self.history.close()

    def record(self, profile: str, item_id: str, kind: str = "play", timestamp: float | None = None, value: float | None = None, device: str = "tv") -> None:
        """Store one event; the profile is created on first use.

        :raises HistoryError: unknown item, bad kind or timestamp.
        """
        if item_id not in self.bundle.index:
            raise HistoryError(f"item {item_id!r} is not in the installed bundle's catalogue")
        ts = time.time() if timestamp is None else timestamp
        ctx = Context.at(ts, device)
        self.history.add_profile(profile)
        tags = self.bundle.items[self.bundle.index[item_id]].tags  # feeds the per-profile tag counts
        self.history.record(profile, item_id, kind, ts, value=value, hour=ctx.hour, weekday=ctx.weekday, device=device, tags=tags)

    def user_vector(self, profile: str, context: Context) -> tuple[np.ndarray | None, list[int]]:
        """The interest model's vector for ``profile`` now, and the catalogue rows of its
        positive history (oldest first). ``None`` when the profile has no usable history."""
        events = self.history.recent(profile, self.bundle.history_len * 2)
        rows = [self.bundle.index[e.item_id] for e in reversed(events) if e.kind in POSITIVE_KINDS and e.item_id in self.bundle.index]
        if not rows:
            return None, []
        idx, mask = history_window(np.array(rows), self.bundle.history_len)
        hist = np.zeros((len(idx), self.bundle.embedding_dim), np.float32)
        real = idx >= 0
        hist[real] = self.bundle.item_embeddings(idx[real])
        out = self.interest.run({"history": hist[None], "mask": mask[None], "context": context.vector()[None]})
        return out[0], rows

    def recommend(self, profile: str, k: int = 10, context: Context | None = None) -> list[Recommendation]:
        """Top-``k`` catalogue items for ``profile``, best first, each with a reason.

        Left out: items in the profile's recent history and items it ever completed, skipped
        or disliked; on a speaker, every non-audio item. A profile without positive history
        gets the bundle's popularity priors for the context's hour (cold start).
        """
        context = context or Context.at()
        t0 = time.perf_counter()
        known = profile in set(self.history.profiles())
        user, rows = self.user_vector(profile, context) if known else (None, [])
        t1 = time.perf_counter()
        done = []
        if known:
            for e in self.history.recent(profile, 10_000, kinds=[*NEGATIVE_KINDS, "complete"]):
                if e.item_id in self.bundle.index:
                    done.append(self.bundle.index[e.item_id])
        exclude = np.array(sorted(set(done) | set(rows)), dtype=np.int64)
        if context.device == "speaker":
            exclude = np.union1d(exclude, self.bundle.video_rows)
        if user is None:
            scores = self._prior_scores(context)
        else:
            scores = score_int8(self.bundle.embeddings_int8, self.bundle.scales, user)
        best = top_k(scores, k, exclude)
        t2 = time.perf_counter()
        if rows:
            recent = rows[-self.bundle.history_len :]
            reasons = explain(
                best,
                self.bundle.item_embeddings(best),
                self.bundle.item_embeddings(np.array(recent)),
                [self.bundle.items[r].title for r in recent],
                [self.bundle.items[r].kind for r in recent],
            )
        else:
            reasons = ["popular at this hour" for _ in best]
        t3 = time.perf_counter()
        self.timings = {"user_vector_s": t1 - t0, "scoring_s": t2 - t1, "explain_s": t3 - t2, "total_s": t3 - t0}
        return [
            Recommendation(self.bundle.items[i].item_id, self.bundle.items[i].title, self.bundle.items[i].kind, float(scores[i]), reason)
            for i, reason in zip(best, reasons)
        ]

    def _prior_scores(self, context: Context) -> np.ndarray:
        priors = self.bundle.priors
        scores = np.full(len(self.bundle.items), -np.inf, dtype=np.float32)
        ranked = priors.get("by_hour", {}).get(str(context.hour)) or priors.get("global", [])
        for rank, (row, weight) in enumerate(ranked):
            scores[int(row)] = float(weight)
        return scores
