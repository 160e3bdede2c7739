"""The device API: one object that opens a bundle and a history, and answers "what next?"."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from edge.backends import BACKENDS, Model
from edge.bundle import Bundle
from edge.context import Context
from edge.contract.defaults import DEFAULT_K, MAX_K
from edge.errors import FeatureError, HistoryError, QueryError
from edge.features.media_path import check_media_path
from edge.history import Event, HistoryStore
from edge.history.store import Forgotten
from edge.ranking import HomeConfig, Int8Scorer, RankingConfig, Recommendation, Row, UserState, home_rows, rank
from edge.ranking.home import HomeIndex
from edge.ranking.filters import RowFilters, tag_vocabulary
from edge.user_state import UserStateCache

log = logging.getLogger("edge")

if TYPE_CHECKING:
    from edge.profiles import DeviceProfile, ResourceLimits
    from edge.viewer import ViewerGuess

#: Audio files a local item may come from; any other path is read as frames (image, video,
#: folder of images or an ``.npy`` strip).
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au"})
BLOCKED_KEY = "blocked_items"
#: Newest events the home screen reads for "Continue watching".
HOME_EVENTS = 500
#: The profile name that asks the device to guess who is watching (:meth:`Recommender.who_is_watching`).
AUTO = "auto"
#: A profile at least this likely counts as a plausible viewer: its age limit applies.
PLAUSIBLE_VIEWER = 0.15


def _check_media_limits(path: Path, audio: bool, limits: "ResourceLimits") -> None:
    """Refuse a media file (or folder of images) over the profile's byte limit, or an audio file
    or video soundtrack whose header declares more than its duration limit, before anything is
    decoded.

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
    from edge.features.soundtrack import is_video_file  # decoders load only when content arrives

    if audio or is_video_file(path):
        from edge.features.audio import probe_audio
        from edge.features.soundtrack import probe_soundtrack

        info = probe_audio(path) if audio else probe_soundtrack(path)
        if info is None:
            return  # a video without a soundtrack: frames are sampled by seeking, whatever its length
        duration_s = info.duration_s
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
        self._fusion: Model | None = None  # loaded on the first add_item
        self.ranking = ranking or RankingConfig()
        self.profile = profile
        #: Input limits for :meth:`add_item`; :meth:`open` sets the device profile's
        #: ``[limits]``, None reads media of any size and duration.
        self.limits: ResourceLimits | None = None
        #: When set, :meth:`add_item` extracts features in a child process killed after this
        #: many seconds (:mod:`edge.features.isolated`); the local service sets it.
        self.decode_timeout_s: float | None = None
        #: Seconds the last :meth:`recommend` spent in each stage.
        self.timings: dict[str, float] = {}
        self._states = UserStateCache()
        self._filters = RowFilters(bundle)
        self._home_index: HomeIndex | None = None
        self._scripts: frozenset[str] | None = None  # the catalogue's scripts, read on the first query
        self._tag_matcher = None  # edge.ranking.steering.TagMatcher, likewise
        self._viewers: tuple[object, Any] | None = None  # (change token, edge.viewer.ViewerModel)
        #: The bundle store this recommender serves from (set by :meth:`open`), for :meth:`apply_delta`.
        self.store: Path | None = None
        self._store_options: dict[str, Any] = {}
        self._home_events: dict[str, tuple[object, list[Event]]] = {}

    @classmethod
    def open(cls, bundle: str | Path, db: str | Path, backends: Sequence[str] = BACKENDS, threads: int = 1,
             ranking: RankingConfig | None = None, profile: str | None = None,
             device_profile: "DeviceProfile | None" = None) -> "Recommender":
        """Verify ``bundle`` and open (or create) the SQLite history ``db``.

        :param bundle: a bundle folder, or a bundle store root (see :mod:`edge.bundle.store`),
            meaning the store's active bundle.
        :param profile: the default profile for calls that name none.
        :param device_profile: a :class:`~edge.profiles.DeviceProfile` (default: the device's
            own, ``EDGEREC_DEVICE_PROFILE``); its threads, backend order, SQLite mode and
            history window replace ``backends``/``threads`` and the store's defaults, after the
            bundle is checked against it. Its ``[security]`` section decides which bundle
            signatures are accepted and whether one is required; a bundle store's recorded
            policy (:func:`edge.bundle.store.store_trust`) applies as well.
        :raises BundleError: the bundle fails verification (or its signature, when the
            profile names trusted keys or requires signatures).
        :raises ProfileError: the bundle conflicts with ``device_profile`` (naming the field).
        :raises HistoryError: the database cannot be opened.
        :raises BackendError: no backend can run the bundle's models.
        """
        from edge.bundle.store import POINTER, resolve_bundle, store_trust
        from edge.profiles import default_device_profile

        device_profile = device_profile if device_profile is not None else default_device_profile()
        trust = device_profile.bundle_options() if device_profile is not None else {}
        is_store = _is_file(Path(bundle) / POINTER)
        if is_store:  # a store: its recorded policy applies too
            trust = store_trust(bundle, **trust)
        b = Bundle.open(resolve_bundle(bundle), **trust)
        if device_profile is None:
            rec = cls(b, HistoryStore(db), backends, threads, ranking, profile)
        else:
            device_profile.check_bundle(b)
            rec = cls(b, HistoryStore(db, **device_profile.history_options()), device_profile.backends, device_profile.threads,
                      ranking, profile)
            rec.limits = device_profile.limits
        if is_store:
            rec.store = Path(bundle)
            rec._store_options = {"trust": trust, "device_profile": device_profile}
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
               value: float | None = None, device: str = "tv", client_id: str | None = None) -> int:
        """Store one event for a catalogue or local item; the profile is created on first use.

        ``client_id`` is the app's own id for the event: recording it again for the profile
        stores nothing and returns the first id, so a retry after an error is safe.

        :returns: the event id (once returned, it survives a crash).
        :raises HistoryError: unknown item, bad kind or timestamp.
        """
        profile = _named(self._profile(profile))
        tags: tuple[str, ...] = ()
        if item_id in self.bundle.index:
            tags = self.bundle.items.tags[self.bundle.index[item_id]]  # feeds the per-profile tag counts
        elif item_id not in self._local_ids(profile):
            raise HistoryError(f"item {item_id!r} is not in the installed bundle's catalogue nor among the local items")
        ts = time.time() if timestamp is None else timestamp
        ctx = Context.at(ts, device)
        self.history.add_profile(profile)
        before = self.history.change_token()
        event_id = self.history.record(profile, item_id, kind, ts, value=value, hour=ctx.hour, weekday=ctx.weekday, device=device,
                                       tags=tags, client_id=client_id)
        # The next request would otherwise re-read up to FEEDBACK_WINDOW events for one new one.
        self._states.recorded(self.history, self.bundle, profile, before, event_id, item_id, kind, ts)
        return event_id

    def block(self, profile: str | None, item_id: str, blocked: bool = True) -> list[str]:
        """Never recommend ``item_id`` to ``profile`` (or allow it again with ``blocked=False``).

        :returns: the profile's blocked item ids after the change.
        :raises HistoryError: unknown profile.
        """
        profile = self._profile(profile)
        items = set(self.blocked(profile))
        ids = sorted(items | {item_id} if blocked else items - {item_id})
        self.history.set_setting(BLOCKED_KEY, json.dumps(ids), profile=profile)
        return ids

    def blocked(self, profile: str | None) -> list[str]:
        """Item ids blocked for ``profile``.

        A damaged stored list (a torn write, a hand edit) is salvaged rather than failing every
        ``recommend``: every quoted id that can still be read stays blocked, a warning is logged
        and the next :meth:`block` writes the list back whole.
        """
        profile = self._profile(profile)
        raw = self.history.setting(BLOCKED_KEY, profile=profile)
        if not raw:
            return []
        try:
            ids = json.loads(raw)
            if isinstance(ids, list) and all(isinstance(i, str) for i in ids):
                return ids
        except (ValueError, RecursionError):
            pass
        salvaged = sorted({_json_string(m) for m in re.findall(r'"((?:[^"\\]|\\.)*)"', raw)} - {None})
        log.warning("blocked items of %r are damaged (%r...); keeping the %d ids still readable", profile, raw[:40], len(salvaged))
        return salvaged

    # -- local content ---------------------------------------------------------------------

    def _fusion_model(self) -> Model:
        if self._fusion is None:
            self._fusion = self.bundle.load_model("fusion", self.backends, self.threads)
        return self._fusion

    def add_item(self, source: str | Path | np.ndarray, title: str, tags: Iterable[str] = (), kind: str | None = None,
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
            path = check_media_path(source)
            origin = str(path.resolve())
            if self.limits is not None:
                _check_media_limits(path, path.suffix.lower() in AUDIO_SUFFIXES, self.limits)
            if path.suffix.lower() in AUDIO_SUFFIXES:
                audio = path
            else:
                frames = path
        kind = kind or ("audio" if audio is not None else "video")
        if self.decode_timeout_s is not None:
            from edge.features.isolated import run_with_time_limit

            vec = run_with_time_limit(item_vector, self.decode_timeout_s, title, tags, description, audio=audio, frames=frames,
                                      spec=self.bundle.feature_spec)
        else:
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

    def recommend(self, profile: str | None = None, k: int = DEFAULT_K, context: Context | None = None,
                  device: str = "tv", timestamp: float | None = None, query: str | None = None,
                  max_duration_s: float | None = None, kind: str | None = None,
                  where: dict[str, Sequence[float | None]] | None = None,
                  session_items: Sequence[str] = ()) -> list[Recommendation]:
        """Top-``k`` items (catalogue and local) for ``profile``, best first, each with a reason.

        Left out: what the profile just watched, finished, skipped, disliked or blocked; items
        above its age limit or outside their availability window; on a speaker, every non-audio
        item. Items like recent skips/dislikes are lowered; the list is diversified (MMR, a cap
        per tag) and holds an exploration slot (see :class:`~edge.ranking.RankingConfig`). A
        profile without positive history gets the bundle's popularity for the hour and device.

        :param context: the request context; by default ``Context.at(timestamp, device)``.
        :param device: ``tv`` or ``speaker`` (used when ``context`` is None).
        :param timestamp: Unix s of the request (used when ``context`` is None; now when None).
        :param query: words to steer by ("calm piano for dinner", a speech recogniser's text):
            embedded by the bundle's fusion student from text alone and blended with the
            profile's taste (:mod:`edge.ranking.steering`); the exploration slot is dropped.
        :param max_duration_s: only items at most this long (items of unknown length are left out).
        :param kind: only ``audio`` or only ``video`` items.
        :param where: only items whose measured content lies in ranges, e.g.
            ``{"tempo_bpm": [None, 100], "motion": [None, 0.05]}`` (names in
            :data:`edge.contract.content.CONTENT_COLUMNS`; unmeasured items are left out).
        :param session_items: with ``profile="auto"``: the items played so far in this session,
            oldest first, evidence of who is watching (:meth:`who_is_watching`).
        :raises HistoryError: an unknown profile (create it with :meth:`add_profile` or
            :meth:`record` first).
        :raises QueryError: an empty query, one written only in scripts the catalogue's titles
            and tags never use, or a malformed constraint; ``profile="auto"`` in a household
            where no profile has history.

        ``profile="auto"`` recommends for the likeliest viewer (:meth:`who_is_watching`) and
        says so in every reason; the lowest age limit among the plausible viewers (probability
        at least :data:`PLAUSIBLE_VIEWER`) applies, so a kid who may be watching is protected.
        """
        from edge.ranking.steering import Constraints

        limits = Constraints.checked(kind, max_duration_s, where)
        words = self._query_words(query) if query is not None else None
        context = context or Context.at(timestamp, device)
        t0 = time.perf_counter()
        profile, viewer, age_limit = self._viewer(self._profile(profile), context, session_items)
        user = self._user_state(profile, context)  # raises HistoryError for an unknown profile
        if viewer:
            user = replace(user, age_limit=age_limit)
        t1 = time.perf_counter()
        timings: dict[str, float] = {}
        config, personal = self.ranking, user.vector is not None
        if words is not None:
            from edge.ranking.steering import blend

            user = replace(user, vector=blend(user.vector, self._query_vector(query, words)))  # type: ignore[arg-type]
            # A request in words wants what it asked for: no exploration slot, and no cap on
            # how many items share the tag it names.
            config = replace(config, explore_slots=0, tag_cap=0)
            named = self._tags().named(words)
        else:
            named = []
        only = limits.mask(self.bundle.items) if limits else None
        recs = rank(self.bundle, self.scorer, user, context, k, config, timings=timings, filters=self._filters, only=only,
                    local_ok=(lambda it: limits.allows_local(it.kind)) if limits else None, boost=self._tags().boost(named) if named else None)
        if words is not None or limits:
            asked = _asked(words, limits, named)
            recs = [replace(r, reason=f"{asked}: {r.reason}" if personal else f"{asked}") for r in recs]
        if viewer:
            recs = [replace(r, reason=f"{viewer}; {r.reason}") for r in recs]
        self.timings = {"user_vector_s": t1 - t0, **timings, "total_s": time.perf_counter() - t0}
        return recs

    def _query_words(self, query: object) -> list[str]:
        """The query's words, refused when none is in a script the catalogue uses."""
        from edge.ranking.steering import catalogue_scripts, check_scripts, query_words

        words = query_words(query)
        if self._scripts is None:
            self._scripts = catalogue_scripts([*self.bundle.items.titles, *tag_vocabulary(self.bundle.items)])
        check_scripts(str(query), words, self._scripts)
        return words

    def _tags(self):
        """The catalogue's :class:`~edge.ranking.steering.TagMatcher`, built on the first query."""
        if self._tag_matcher is None:
            from edge.ranking.steering import TagMatcher

            self._tag_matcher = TagMatcher(tag_vocabulary(self.bundle.items), self._filters.tag_ids, len(self.bundle.items))
        return self._tag_matcher

    def _query_vector(self, query: str, words: Sequence[str]) -> np.ndarray:
        """The fusion student's vector of the query as a text-only item; its words also count as
        tags (:func:`edge.features.text.text_features` hashes a tag as a whole token, so a query
        "jazz" meets the items tagged jazz)."""
        from edge.features import text_item_vector

        vec = text_item_vector(query, words, spec=self.bundle.feature_spec)
        return self._fusion_model().run({"features": vec[None]})[0].reshape(-1)

    def home(self, profile: str | None = None, context: Context | None = None, device: str = "tv", timestamp: float | None = None,
             per_row: int = 10, session_items: Sequence[str] = ()) -> list[Row]:
        """The home screen for ``profile``: titled rows, each with a reason, no item in two rows
        (see :mod:`edge.ranking.home`): *Continue watching*, *Because you watched X* (one per
        recent anchor), *Popular now*, *New for you*, *Something different*. Rows without items
        are left out. The request's filters apply to every row, as in :meth:`recommend`.

        :param per_row: items per row (1..``MAX_K``).
        :param session_items: with ``profile="auto"``, as in :meth:`recommend`.
        :raises HistoryError: an unknown profile.
        :raises QueryError: ``per_row`` out of range; ``profile="auto"`` with no history to guess from.
        """
        if isinstance(per_row, bool) or not isinstance(per_row, int) or not 1 <= per_row <= MAX_K:
            raise QueryError(f"per_row must be a whole number from 1 to {MAX_K}, got {per_row!r}")
        context = context or Context.at(timestamp, device)
        t0 = time.perf_counter()
        profile, viewer, age_limit = self._viewer(self._profile(profile), context, session_items)
        user = self._user_state(profile, context)
        if viewer:
            user = replace(user, age_limit=age_limit)
        token = self.history.change_token()
        kept = self._home_events.get(profile)
        if kept is None or kept[0] != token:
            if len(self._home_events) >= 64:
                self._home_events.clear()
            kept = self._home_events[profile] = (token, self.history.recent(profile, HOME_EVENTS))
        if self._home_index is None:
            self._home_index = HomeIndex.of(self.bundle)
        timings: dict[str, float] = {}
        rows = home_rows(self.bundle, self.scorer, user, kept[1], context, HomeConfig(per_row=per_row), filters=self._filters,
                         index=self._home_index, timings=timings)
        if viewer:
            rows = [replace(r, reason=f"{viewer}; {r.reason}") for r in rows]
        self.timings = {**timings, "total_s": time.perf_counter() - t0}
        return rows

    def who_is_watching(self, context: Context | None = None, device: str = "tv", timestamp: float | None = None,
                        session_items: Sequence[str] = ()) -> list["ViewerGuess"]:
        """Which household profile is probably watching, from each profile's habits (hours,
        weekdays, device, what it plays: :mod:`edge.viewer`), the request's context and the
        items of the session so far: every profile with history, its probability, best first.

        :param session_items: item ids played in this session, oldest first (unknown ids are
            ignored).
        :raises QueryError: no profile has any event yet.
        """
        context = context or Context.at(timestamp, device)
        from edge.viewer import ViewerModel

        token = self.history.change_token()
        if self._viewers is None or self._viewers[0] != token:
            self._viewers = (token, ViewerModel.from_history(self.history, catalogue=self.bundle))
        return self._viewers[1].estimate(context, list(session_items))

    def _viewer(self, profile: str, context: Context, session_items: Sequence[str]) -> tuple[str, str, int | None]:
        """``profile``, or for ``"auto"`` the likeliest viewer, the words saying so and the
        lowest age limit among the plausible viewers."""
        if profile != AUTO:
            return profile, "", None
        guesses = self.who_is_watching(context, session_items=session_items)
        best = guesses[0]
        plausible = [g.profile for g in guesses if g.probability >= PLAUSIBLE_VIEWER] or [best.profile]
        limits = {p: self.history.age_limit(p) for p in plausible}
        strict = [a for a in limits.values() if a is not None]
        age_limit = min(strict) if strict else None
        words = f"probably {best.profile} ({best.probability:.0%})"
        kids = [p for p, a in limits.items() if a is not None and a == age_limit and p != best.profile]
        if kids:
            words += f"; {kids[0]}'s age limit {age_limit} applies ({next(g.probability for g in guesses if g.profile == kids[0]):.0%} likely watching)"
        return best.profile, words, age_limit

    def _user_state(self, profile: str, context: Context) -> UserState:
        """Everything :func:`edge.ranking.rank` needs to know about ``profile``, read from the
        history (kept between requests while the history is unchanged)."""
        return self._states.user_state(self.history, self.bundle, self.interest, profile, context, self.blocked)

    # -- the household ---------------------------------------------------------------------

    def add_profile(self, profile: str, age_limit: int | None = None) -> int | None:
        """Create ``profile`` (a person in the household) with an optional age limit in years.

        An existing profile keeps the limit it has.

        :returns: the profile's stored age limit.
        :raises HistoryError: a malformed id or age limit.
        """
        self.history.add_profile(_named(profile), age_limit=age_limit)
        return self.history.age_limit(profile)

    def profiles(self) -> list[str]:
        """Every profile in the history, the built-in guest included."""
        return self.history.profiles()

    def recent(self, profile: str | None = None, n: int = 20, kinds: Iterable[str] | None = None) -> list[Event]:
        """The last ``n`` events of ``profile``, newest first (``kinds``: only these).

        :raises HistoryError: an unknown profile or kind.
        """
        return self.history.recent(self._profile(profile), n, kinds=kinds)

    def forget(self, profile: str) -> Forgotten:
        """Remove everything stored about ``profile``: events, counts, local items it owns,
        settings and the profile itself, with the freed pages overwritten.

        :raises HistoryError: an unknown profile, or a write that failed.
        """
        return self.history.forget(profile)

    def export(self, profile: str, path: str | Path | None = None) -> dict[str, Any]:
        """Everything stored about ``profile`` as a JSON-ready dict (also written to ``path``).

        :raises HistoryError: an unknown profile, or a path that cannot be written.
        """
        return self.history.export(profile, path)

    def privacy(self, profile: str | None = None) -> dict[str, Any]:
        """The privacy receipt (:mod:`edge.privacy`): per profile what is stored (events by kind,
        oldest and newest, local items, settings, size on disk), the retention settings, when a
        profile was last exported and how many were forgotten, and what can leave the device.

        :param profile: one profile (default: every one).
        :raises HistoryError: an unknown profile.
        """
        from edge.privacy import privacy_receipt

        return privacy_receipt(self.history, profile)

    def apply_delta(self, path: str | Path) -> dict[str, Any]:
        """Apply a signed catalogue delta (``edgerec pipeline delta``: the day's new, removed and
        changed items) to the bundle store this recommender was opened on, and serve the new
        catalogue from the next request; histories are untouched.

        The store verifies the delta exactly as a full install (:meth:`BundleStore.apply_delta
        <edge.bundle.store.BundleStore.apply_delta>`) and keeps the previous bundle for rollback.

        :returns: ``{"bundle": id, "items": n, "previous": id}``.
        :raises BundleError: opened on a bundle folder rather than a store; or the delta is for
            another bundle, not newer than the installed one, changes models or the feature
            spec, is tampered with or unsigned where a signature is required (the active
            bundle, and what this recommender serves, are then unchanged).
        :raises ProfileError: the new bundle conflicts with the device profile.
        """
        from edge.bundle.store import BundleStore, bundle_id
        from edge.errors import BundleError

        if self.store is None:
            raise BundleError(f"{self.bundle.root}: this recommender was opened on a bundle folder, not a bundle store; a delta "
                              "patches a store's active bundle: install the bundle into a store (edgerec bundle install SOURCE "
                              "--store S) and open the store")
        trust, device = self._store_options["trust"], self._store_options["device_profile"]
        limits = {"limits": device.install_limits()} if device is not None else {}
        previous = bundle_id(self.bundle.root, self.bundle.manifest)
        entry = BundleStore(self.store, create=False, backends=self.backends, threads=self.threads, **trust, **limits).apply_delta(path)
        bundle = Bundle.open(entry.path, **trust)
        if device is not None:
            device.check_bundle(bundle)
        self._serve(bundle)
        return {"bundle": entry.id, "items": len(bundle.items), "previous": previous}

    def _serve(self, bundle: Bundle) -> None:
        """Serve ``bundle`` from now on: its scorer and models, and nothing kept from the old
        catalogue (row numbers, masks, words)."""
        self.interest = bundle.load_model("interest", self.backends, self.threads)
        self.scorer = Int8Scorer.for_bundle(bundle, self.threads)
        self.bundle, self._fusion = bundle, None
        self._states, self._filters = UserStateCache(), RowFilters(bundle)
        self._home_index, self._scripts, self._viewers, self._tag_matcher = None, None, None, None
        self._home_events.clear()

    def health(self) -> dict[str, Any]:
        """What is running: edgerec's version, the bundle (id, creation time, items, dimension),
        the interest model's backend and the history file (and where a damaged one was moved)."""
        from edge import __version__
        from edge.bundle.store import bundle_id

        b = self.bundle
        recovered = self.history.recovered_from
        return {"version": __version__,
                "bundle": {"id": bundle_id(b.root, b.manifest), "created_at": b.manifest.get("created_at"),
                           "items": len(b.items), "embedding_dim": b.embedding_dim},
                "backend": self.interest.backend,
                "history": {"path": str(self.history.path), "recovered_from": str(recovered) if recovered else None,
                            "salvaged": dict(self.history.salvaged)}}


def _named(profile: str) -> str:
    """``profile``, refused when it is the reserved ``"auto"`` (which asks who is watching)."""
    if profile == AUTO:
        raise HistoryError(f"{AUTO!r} is reserved: it asks the device to guess who is watching; record events under the "
                           "person's own profile (who_is_watching says who it probably is)")
    return profile


def _asked(words: list[str] | None, limits, named: Sequence[str] = ()) -> str:
    """What a steered request asked for, in words: “calm piano” (tags calm, piano), audio, up to 20 min."""
    parts = [f"for “{' '.join(words)}”" + (f" (tags {', '.join(named)})" if named else "")] if words else []
    if limits:
        parts.append(("only " if not words else "") + limits.describe())
    return ", ".join(parts)


def _json_string(body: str) -> str | None:
    try:
        return json.loads(f'"{body}"')
    except ValueError:
        return None


def _is_file(path: Path) -> bool:
    # Path.is_file raises PermissionError for a folder this user cannot enter; resolve_bundle
    # then reports the folder as unreadable.
    try:
        return path.is_file()
    except OSError:
        return False
