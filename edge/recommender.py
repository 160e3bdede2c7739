"""The device API: one object that opens a bundle and a history, and answers "what next?"."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from edge.backends import BACKENDS, Model
from edge.bundle import Bundle
from edge.context import Context
from edge.contract.inputs import interest_feed
from edge.errors import FeatureError, HistoryError
from edge.history import NEGATIVE_KINDS, POSITIVE_KINDS, HistoryStore
from edge.ranking import (
    Int8Scorer,
    RankingConfig,
    Recommendation,
    explain,
    mmr,
    negative_penalty,
    top_k,
)

if TYPE_CHECKING:
    from edge.profiles import DeviceProfile, ResourceLimits

#: Audio files a local item may come from; any other path is read as frames (image, video,
#: folder of images or an ``.npy`` strip).
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au"})
BLOCKED_KEY = "blocked_items"
#: Events read to find what a profile finished, disliked or skipped.
FEEDBACK_WINDOW = 10_000


def _check_media_limits(path: Path, audio: bool, limits: "ResourceLimits") -> None:
    """Refuse a media file (or folder of images) over the profile's byte limit, or an audio file
    whose header declares more than its duration limit, before anything is decoded.

    The duration is checked here rather than by lowering the bundle's ``FeatureSpec.max_read_s``:
    that field is part of the spec hash, and features must be computed as the bundle's were.

    :raises FeatureError: naming the file, the limit and the value found.
    """
    try:
        size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    except OSError as exc:
        raise FeatureError(f"{path}: cannot read its size ({exc})") from None
    if size > limits.max_media_bytes:
        raise FeatureError(f"{path}: {size} bytes; the device profile allows {limits.max_media_bytes} (limits.max_media_bytes)")
    if audio:
        from edge.features import probe_audio

        duration_s = probe_audio(path).duration_s
        if duration_s > limits.max_media_seconds:
            raise FeatureError(
                f"{path}: declares {duration_s:.1f} s of audio; the device profile allows {limits.max_media_seconds:g} s (limits.max_media_seconds)"
            )


class Recommender:
    """Offline recommendations from a verified bundle and the on-device history.

    >>> rec = Recommender.open("bundle/", "history.db")
    >>> rec.record("alice", "v00012", "complete")
    >>> rec.recommend("alice", k=10)
    """

    def __init__(self, bundle: Bundle, history: HistoryStore, backends: Sequence[str] = BACKENDS, threads: int = 1,
                 ranking: RankingConfig | None = None, profile: str | None = None) -> None:
        self.bundle = bundle
        self.history = history
        self.backends, self.threads = tuple(backends), threads
        self.interest = bundle.load_model("interest", backends, threads)
        self.scorer = Int8Scorer.for_bundle(bundle, threads)
        self._fusion: Model | None = None  # loaded on the first add_local_item
        self.ranking = ranking or RankingConfig()
        self.profile = profile
        #: Input limits for :meth:`add_local_item`; :meth:`open` sets the device profile's
        #: ``[limits]``, None reads media of any size and duration.
        self.limits: ResourceLimits | None = None
        #: Seconds the last :meth:`recommend` spent in each stage.
        self.timings: dict[str, float] = {}

    @classmethod
    def open(cls, bundle: str | Path, db: str | Path, backends: Sequence[str] = BACKENDS, threads: int = 1,
             ranking: RankingConfig | None = None, profile: str | None = None,
             device_profile: "DeviceProfile | None" = None) -> "Recommender":
        """Verify ``bundle`` and open (or create) the SQLite history ``db``.

        :param bundle: a bundle folder, or a bundle store root (see :mod:`edge.install`),
            meaning the store's active bundle.
        :param profile: the default profile for calls that name none.
        :param device_profile: a :class:`~edge.profiles.DeviceProfile`; its threads, backend
            order, SQLite mode and history window replace ``backends``/``threads`` and the
            store's defaults, after the bundle is checked against it. Its ``[security]``
            section decides which bundle signatures are accepted and whether one is required.
        :raises BundleError: the bundle fails verification (or its signature, when the
            profile names trusted keys or requires signatures).
        :raises ProfileError: the bundle conflicts with ``device_profile`` (naming the field).
        :raises HistoryError: the database cannot be opened.
        :raises BackendError: no backend can run the bundle's models.
        """
        from edge.install import resolve_bundle

        trust = device_profile.bundle_options() if device_profile is not None else {}
        b = Bundle.open(resolve_bundle(bundle), **trust)
        if device_profile is None:
            return cls(b, HistoryStore(db), backends, threads, ranking, profile)
        device_profile.check_bundle(b)
        rec = cls(b, HistoryStore(db, **device_profile.history_options()), device_profile.backends, device_profile.threads,
                  ranking, profile)
        rec.limits = device_profile.limits
        return rec

    def close(self) -> None:
        """Close the history database."""
        self.history.close()

    def __enter__(self) -> "Recommender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _profile(self, profile: str | None) -> str:
        p = profile or self.profile
        if not p:
            raise HistoryError("no profile given and no default profile: pass profile= (or open with profile=...)")
        return p

    # -- events ----------------------------------------------------------------------------

    def record(self, profile: str | None, item_id: str, kind: str = "play", timestamp: float | None = None,
               value: float | None = None, device: str = "tv") -> int:
        """Store one event for a catalogue or local item; the profile is created on first use.

        :returns: the event id (once returned, it survives a crash).
        :raises HistoryError: unknown item, bad kind or timestamp.
        """
        profile = self._profile(profile)
        tags: tuple[str, ...] = ()
        if item_id in self.bundle.index:
            tags = self.bundle.items.tags[self.bundle.index[item_id]]  # feeds the per-profile tag counts
        elif item_id not in self._local_ids(profile):
            raise HistoryError(f"item {item_id!r} is not in the installed bundle's catalogue nor among the local items")
        ts = time.time() if timestamp is None else timestamp
        ctx = Context.at(ts, device)
        self.history.add_profile(profile)
        return self.history.record(profile, item_id, kind, ts, value=value, hour=ctx.hour, weekday=ctx.weekday, device=device, tags=tags)

    def block(self, profile: str | None, item_id: str, blocked: bool = True) -> None:
        """Never recommend ``item_id`` to ``profile`` (or allow it again with ``blocked=False``).

        :raises HistoryError: unknown profile.
        """
        profile = self._profile(profile)
        items = set(self.blocked(profile))
        items = items | {item_id} if blocked else items - {item_id}
        self.history.set_setting(BLOCKED_KEY, json.dumps(sorted(items)), profile=profile)

    def blocked(self, profile: str | None) -> list[str]:
        """Item ids blocked for ``profile``."""
        raw = self.history.setting(BLOCKED_KEY, profile=self._profile(profile))
        return json.loads(raw) if raw else []

    # -- local content ---------------------------------------------------------------------

    def _fusion_model(self) -> Model:
        if self._fusion is None:
            self._fusion = self.bundle.load_model("fusion", self.backends, self.threads)
        return self._fusion

    def add_local_item(self, source: str | Path | np.ndarray, title: str, tags: Iterable[str] = (), kind: str | None = None,
                       description: str = "", profile: str | None = None, item_id: str | None = None) -> str:
        """Describe content the device found itself and make it recommendable at once.

        Runs :mod:`edge.features` and the bundle's fusion student on the device, then stores the
        embedding in the history database.

        :param source: an audio file, a video/image file or folder of images, an ``.npy`` frame
            strip, or uint8 RGB frames ``(N, H, W, 3)``.
        :param kind: ``audio`` or ``video``; by default audio for audio files, else video.
        :param profile: the owner (removed by ``forget``); None shares it with the household.
        :param item_id: default: ``local:`` plus a hash of the title and source.
        :returns: the item id.
        :raises FeatureError: the media cannot be decoded (the message names the file), or,
            with a device profile, is larger than ``limits.max_media_bytes`` or (audio) declares
            more than ``limits.max_media_seconds``; both are checked before anything is decoded.
        :raises HistoryError: a bad id, title or unknown profile.
        """
        from edge.features import item_vector  # decoders and scipy load only when content arrives

        tags = tuple(tags)
        audio = frames = None
        if isinstance(source, np.ndarray):
            if self.limits is not None and source.nbytes > self.limits.max_media_bytes:
                raise FeatureError(f"frames of {source.nbytes} bytes; the device profile allows {self.limits.max_media_bytes} (limits.max_media_bytes)")
            frames, origin = source, hashlib.sha256(np.ascontiguousarray(source).tobytes()[:1 << 20]).hexdigest()
        else:
            path = Path(source)
            if not path.exists():
                raise FeatureError(f"{path}: no such file or folder")
            origin = str(path.resolve())
            if self.limits is not None:
                _check_media_limits(path, path.suffix.lower() in AUDIO_SUFFIXES, self.limits)
            if path.suffix.lower() in AUDIO_SUFFIXES:
                audio = path
            else:
                frames = path
        kind = kind or ("audio" if audio is not None else "video")
        vec = item_vector(title, tags, description, audio=audio, frames=frames, spec=self.bundle.feature_spec)
        emb = self._fusion_model().run({"features": vec[None].astype(np.float32)})[0]
        item_id = item_id or "local:" + hashlib.sha256(f"{title}\x1f{origin}".encode()).hexdigest()[:16]
        if item_id in self.bundle.index:
            raise HistoryError(f"local item id {item_id!r} is a catalogue id; choose another")
        if profile is not None:
            self.history.add_profile(profile)
        self.history.add_local_item(item_id, emb, profile=profile, kind=kind, title=title)
        return item_id

    def _local_ids(self, profile: str | None) -> set[str]:
        try:
            return {it.item_id for it in self.history.local_items(profile)}
        except HistoryError:
            return set()

    # -- ranking ---------------------------------------------------------------------------

    def user_vector(self, profile: str, context: Context, local: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray | None, list[str], np.ndarray]:
        """The interest model's vector for ``profile`` now, with the ids of its positive history
        (oldest first) and their vectors. ``None`` when the profile has no usable history."""
        local = local or {}
        events = self.history.recent(profile, self.bundle.history_len * 2)
        ids = [e.item_id for e in reversed(events) if e.kind in POSITIVE_KINDS and (e.item_id in self.bundle.index or e.item_id in local)]
        ids = ids[-self.bundle.history_len :]
        if not ids:
            return None, [], np.zeros((0, self.bundle.embedding_dim), np.float32)
        vecs = self._vectors(ids, local)
        out = self.interest.run(interest_feed(vecs, [np.arange(len(ids))], context.vector()[None], self.bundle.history_len))
        return out[0], ids, vecs

    def _vectors(self, ids: Sequence[str], local: dict[str, np.ndarray]) -> np.ndarray:
        out = np.zeros((len(ids), self.bundle.embedding_dim), np.float32)
        cat = [(j, self.bundle.index[i]) for j, i in enumerate(ids) if i in self.bundle.index]
        if cat:
            js, rows = zip(*cat)
            out[list(js)] = self.bundle.item_embeddings(np.array(rows))
        for j, i in enumerate(ids):
            if i in local:
                out[j] = local[i]
        return out

    def _allowed(self, profile: str, context: Context) -> np.ndarray:
        """Catalogue rows the filters let through (age, availability, device kind)."""
        b = self.bundle
        ok = np.ones(len(b.items), bool)
        limit = self.history.age_limit(profile)
        if limit is not None:
            ok &= b.age_ratings <= limit
        now = context.timestamp if context.timestamp is not None else time.time()
        ok &= (b.available_from <= now) & (now < b.available_until)
        if context.device == "speaker":
            ok[b.video_rows] = False
        return ok

    def recommend(self, profile: str | None = None, k: int = 10, context: Context | None = None) -> list[Recommendation]:
        """Top-``k`` items (catalogue and local) for ``profile``, best first, each with a reason.

        Left out: what the profile just watched, finished, skipped, disliked or blocked; items
        above its age limit or outside their availability window; on a speaker, every non-audio
        item. Items like recent skips/dislikes are lowered; the list is diversified (MMR, a cap
        per tag) and holds an exploration slot (see :class:`~edge.ranking.RankingConfig`). A
        profile without positive history gets the bundle's popularity for the hour and device.

        :raises HistoryError: an unknown profile (create it with ``history.add_profile`` or
            ``record`` first).
        """
        profile = self._profile(profile)
        context = context or Context.at()
        cfg, b = self.ranking, self.bundle
        t0 = time.perf_counter()
        allowed = self._allowed(profile, context)  # raises HistoryError for an unknown profile
        # Local items embedded by another bundle (another dimension) wait for re-embedding.
        local_items = [it for it in self.history.local_items(profile) if it.dim == b.embedding_dim]
        everything = {it.item_id: it.embedding for it in local_items}
        if context.device == "speaker":
            local_items = [it for it in local_items if it.kind == "audio"]
        local = {it.item_id: it.embedding for it in local_items}
        user, hist_ids, hist_vecs = self.user_vector(profile, context, everything)
        t1 = time.perf_counter()

        feedback = self.history.recent(profile, FEEDBACK_WINDOW, kinds=[*NEGATIVE_KINDS, "complete"])
        gone = {e.item_id for e in feedback} | set(hist_ids) | set(self.blocked(profile))
        negative_ids = list(dict.fromkeys(e.item_id for e in feedback if e.kind in NEGATIVE_KINDS))[: b.history_len]
        exclude = np.array(sorted({b.index[i] for i in gone if i in b.index}), dtype=np.int64)
        exclude = np.union1d(exclude, np.flatnonzero(~allowed))
        local_ids = [i for i in local if i not in gone]
        local_vecs = np.stack([local[i] for i in local_ids]) if local_ids else np.zeros((0, b.embedding_dim), np.float32)

        if user is None:
            scores, local_scores = self._prior_scores(context), np.full(len(local_ids), -np.inf, np.float32)
        else:
            scores = self.scorer.scores(user)
            local_scores = local_vecs @ user
        pool = top_k(scores, cfg.candidates, exclude)
        # Candidates: catalogue rows then local items, one index space for the re-ranker.
        ids = b.items.item_ids
        cand_ids = [ids[r] for r in pool] + local_ids
        cand_scores = np.concatenate([scores[pool], local_scores]).astype(np.float32)
        keep = np.isfinite(cand_scores)
        cand_ids = [c for c, ok in zip(cand_ids, keep) if ok]
        cand_scores = cand_scores[keep]
        cand_vecs = self._vectors(cand_ids, local)
        if user is not None and negative_ids:
            cand_scores = cand_scores - negative_penalty(cand_vecs, self._vectors(negative_ids, everything), cfg.negative_weight)
        t2 = time.perf_counter()

        order = np.argsort(-cand_scores, kind="stable")
        explore = min(cfg.explore_slots, max(k - 1, 0)) if user is not None else 0
        head = order[: max(cfg.candidates, k)]
        tags = [b.items.tags[b.index[c]] if c in b.index else () for c in cand_ids]
        picked = head[mmr(cand_scores[head], cand_vecs[head], k - explore, cfg.mmr_lambda, [tags[i] for i in head], cfg.tag_cap)]
        chosen = list(picked)
        reasons: dict[int, str] = {}
        if explore:
            rest = [i for i in order[k - explore : cfg.explore_depth] if i not in set(chosen)]
            # Deterministic per profile and hour: the list is stable while the user browses.
            seed = int.from_bytes(hashlib.sha256(f"{profile}\x1f{context.weekday}\x1f{context.hour}".encode()).digest()[:8], "little")
            rng = np.random.default_rng(seed)
            for j in rng.permutation(len(rest))[:explore]:
                chosen.append(rest[j])
                reasons[rest[j]] = "something different"
        if user is None:
            for i in chosen:
                reasons[i] = "popular at this hour"
        else:
            todo = [i for i in chosen if i not in reasons]
            every = self.history.local_items(profile) if any(h not in b.index for h in hist_ids) else []
            titles = [self._title(h, every) for h in hist_ids]
            kinds = [self._kind(h, every) for h in hist_ids]
            for i, text in zip(todo, explain(np.array(todo), cand_vecs[todo], hist_vecs, titles, kinds)):
                reasons[i] = text
        t3 = time.perf_counter()
        self.timings = {"user_vector_s": t1 - t0, "scoring_s": t2 - t1, "rerank_s": t3 - t2, "total_s": t3 - t0}
        return [Recommendation(cand_ids[i], self._title(cand_ids[i], local_items), self._kind(cand_ids[i], local_items),
                               float(cand_scores[i]), reasons[i]) for i in chosen]

    def _title(self, item_id: str, local_items: Sequence) -> str:
        if item_id in self.bundle.index:
            return self.bundle.items.titles[self.bundle.index[item_id]]
        return next((it.title or item_id for it in local_items if it.item_id == item_id), item_id)

    def _kind(self, item_id: str, local_items: Sequence) -> str:
        if item_id in self.bundle.index:
            return "audio" if self.bundle.items.is_audio[self.bundle.index[item_id]] else "video"
        return next((it.kind or "video" for it in local_items if it.item_id == item_id), "video")

    def _prior_scores(self, context: Context) -> np.ndarray:
        """Cold start: the bundle's popularity for this device kind and hour."""
        priors = self.bundle.priors
        scores = np.full(len(self.bundle.items), -np.inf, dtype=np.float32)
        ranked = (priors.get("by_device_hour", {}).get(context.device, {}).get(str(context.hour))
                  or priors.get("by_hour", {}).get(str(context.hour)) or priors.get("global", []))
        for row, weight in ranked:
            scores[int(row)] = float(weight)
        return scores
