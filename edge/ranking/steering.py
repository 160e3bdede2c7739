"""Steering a request by words and by measured content.

A query ("calm piano for dinner", what a speaker's recogniser heard) becomes a text-only item
vector (:func:`edge.features.text_item_vector`) that the bundle's fusion student maps into item
space; it is blended with the profile's user vector, so the answer is the profile's taste
bent towards the words. :class:`Constraints` keep only items of a kind, up to a duration, or
within ranges of what the content measured (:mod:`edge.contract.content`: tempo, loudness,
beat clarity, brightness, motion...). An unknown value (an item never measured, a duration
not given) fails the constraint on it: a "short" request never returns an item of unknown
length.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from edge.contract.content import CONTENT_COLUMNS
from edge.contract.vectors import unit_rows
from edge.errors import QueryError
from edge.features.text import MAX_TEXT_CHARS, text_words

__all__ = ["Constraints", "QUERY_WEIGHT", "TAG_MATCH_BOOST", "blend", "query_words", "catalogue_scripts", "check_scripts",
           "TagMatcher"]

#: Share of the query in the blended vector when the profile has a user vector.
QUERY_WEIGHT = 0.6
#: Added to an item's score for each tag of it the query names: above any difference of inner
#: products of unit vectors (at most 2), so items carrying a named tag come first, in the
#: learned order, and items carrying more of the named tags before those carrying fewer.
TAG_MATCH_BOOST = 2.0
#: Longest query read (a recogniser's transcript of a sentence, not a document).
MAX_QUERY_CHARS = 500
#: Characters of a word compared with the catalogue's words (a cheap stem: "pianos" ~ "piano").
STEM_CHARS = 5


def query_words(query: object) -> list[str]:
    """The query's words, normalised as the text features normalise them.

    :raises QueryError: not a string, longer than :data:`MAX_QUERY_CHARS`, or no word in it.
    """
    if not isinstance(query, str):
        raise QueryError(f"query must be text, got {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"query is {len(query)} characters; at most {MAX_QUERY_CHARS} are read (send the recognised sentence, not a document)")
    words = text_words(query)
    if not words:
        raise QueryError(f"query {query[:60]!r} holds no word to search for (empty, or only punctuation and spaces)")
    return words


def _stem(word: str) -> str:
    return word[:STEM_CHARS]


def script_of(word: str) -> str:
    """The Unicode script family of a word's first letter (its character name's first word:
    LATIN, CYRILLIC, CJK, HIRAGANA...), ``DIGIT`` for numbers."""
    for ch in word:
        if ch.isdigit():
            return "DIGIT"
        name = unicodedata.name(ch, "")
        if name:
            return name.split(" ", 1)[0]
    return "OTHER"


def catalogue_scripts(texts: Iterable[str]) -> frozenset[str]:
    """The scripts (:func:`script_of`) the words of ``texts`` (a catalogue's titles and tags)
    are written in; built once per catalogue."""
    firsts = {w[0] for text in texts for w in text_words(str(text)[:MAX_TEXT_CHARS])}
    return frozenset(script_of(c) for c in firsts)


def check_scripts(query: str, words: Sequence[str], scripts: frozenset[str]) -> None:
    """Refuse a query none of whose words is in a script of ``scripts`` (digits aside): nothing
    in the catalogue could match it.

    :raises QueryError: naming the query's scripts and the catalogue's.
    """
    asked = {script_of(w) for w in words} - {"DIGIT"}
    if asked and not asked & scripts:
        raise QueryError(f"query {query[:60]!r} is written in {', '.join(sorted(asked))} script; this catalogue's titles "
                         f"and tags use {', '.join(sorted(scripts - {'DIGIT'})) or 'no letters'}: ask in those words, "
                         "or recommend without a query")


class TagMatcher:
    """Which catalogue tags a query names, and the rows carrying them (an inverted index over
    the tag id matrix, built once per catalogue).

    A tag is named when every word of it is among the query's words, compared by their first
    :data:`STEM_CHARS` characters ("jazz" names ``jazz``; "some hip hop" names ``hip hop``;
    "pianos" names ``piano``). Anything looser (synonyms, other languages) is the learned
    path's job.
    """

    def __init__(self, vocabulary: Sequence[str], tag_ids: np.ndarray, n_rows: int) -> None:
        self.vocabulary = list(vocabulary)
        self._index = {t: i for i, t in enumerate(self.vocabulary)}
        self._words = [tuple(_stem(w) for w in text_words(t)) for t in self.vocabulary]
        ids = np.asarray(tag_ids[:n_rows], np.int64)
        flat = ids.ravel()
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), ids.shape[1])
        keep = flat >= 0
        order = np.argsort(flat[keep], kind="stable")
        self._codes, self._rows, self.n_rows = flat[keep][order], rows[keep][order], n_rows

    def named(self, words: Sequence[str]) -> list[str]:
        """The tags ``words`` name, in vocabulary order."""
        stems = {_stem(w) for w in words}
        return [t for t, ws in zip(self.vocabulary, self._words) if ws and set(ws) <= stems]

    def boost(self, tags: Sequence[str]) -> np.ndarray | None:
        """float32 ``(n,)``: :data:`TAG_MATCH_BOOST` per named tag a row carries (None: no tag named)."""
        if not tags:
            return None
        out = np.zeros(self.n_rows, np.float32)
        for t in tags:
            code = self._index[t]
            lo, hi = np.searchsorted(self._codes, [code, code + 1])
            out[self._rows[lo:hi]] += TAG_MATCH_BOOST
        return out


def blend(user: np.ndarray | None, query: np.ndarray, weight: float = QUERY_WEIGHT) -> np.ndarray:
    """``weight`` of the unit query vector plus the rest of the unit user vector (the query
    alone without one), as float32."""
    q = unit_rows(np.asarray(query, np.float32)[None])[0]
    if user is None:
        return q
    u = unit_rows(np.asarray(user, np.float32)[None])[0]
    return ((1.0 - weight) * u + weight * q).astype(np.float32)


def _number(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise QueryError(f"{name} must be a finite number or null, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Constraints:
    """What a steered request keeps: ``kind`` (``audio``/``video``), ``max_duration_s`` and
    ``where`` (descriptor name -> ``(low, high)``, either end None for open; names from
    :data:`~edge.contract.content.CONTENT_COLUMNS`)."""

    kind: str | None = None
    max_duration_s: float | None = None
    where: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)

    @classmethod
    def checked(cls, kind: object = None, max_duration_s: object = None, where: object = None) -> "Constraints":
        """Validate a request's constraints.

        :raises QueryError: an unknown kind or descriptor, a negative duration, a range that
            is not two numbers (or nulls) or whose low end is above its high end.
        """
        if kind is not None and kind not in ("audio", "video"):
            raise QueryError(f"kind must be 'audio', 'video' or null, got {kind!r}")
        dur = _number("max_duration_s", max_duration_s)
        if dur is not None and dur <= 0:
            raise QueryError(f"max_duration_s must be > 0 seconds, got {dur:g}")
        ranges: dict[str, tuple[float | None, float | None]] = {}
        if where is not None and not isinstance(where, Mapping):
            raise QueryError("where must map descriptor names to [low, high] ranges")
        for name, rng in (where or {}).items():
            if name not in CONTENT_COLUMNS:
                raise QueryError(f"unknown descriptor {str(name)[:40]!r} in where; expected some of {list(CONTENT_COLUMNS)}")
            if not isinstance(rng, (list, tuple)) or len(rng) != 2:
                raise QueryError(f"where[{name!r}] must be [low, high] (either may be null), got {rng!r}")
            lo, hi = _number(f"where[{name!r}] low", rng[0]), _number(f"where[{name!r}] high", rng[1])
            if lo is not None and hi is not None and lo > hi:
                raise QueryError(f"where[{name!r}]: low {lo:g} is above high {hi:g}")
            ranges[name] = (lo, hi)
        return cls(kind, dur, ranges)

    def __bool__(self) -> bool:
        return self.kind is not None or self.max_duration_s is not None or bool(self.where)

    def mask(self, items) -> np.ndarray:
        """bool ``(n,)``: the catalogue rows that meet every constraint."""
        n = len(items.item_ids)
        ok = np.ones(n, bool)
        if self.kind is not None:
            ok &= np.asarray(items.is_audio) == (self.kind == "audio")
        if self.max_duration_s is not None:
            with np.errstate(invalid="ignore"):
                ok &= np.asarray(items.durations) <= self.max_duration_s  # NaN (unknown) compares False
        content = getattr(items, "content", None)
        for name, (lo, hi) in self.where.items():
            if content is None:
                return np.zeros(n, bool)
            col = np.asarray(content[:, CONTENT_COLUMNS.index(name)], np.float32)
            with np.errstate(invalid="ignore"):
                if lo is not None:
                    ok &= col >= lo
                if hi is not None:
                    ok &= col <= hi
        return ok

    def allows_local(self, kind: str | None) -> bool:
        """Whether a local item (known: its kind; never measured here) can meet them."""
        if self.max_duration_s is not None or self.where:
            return False
        return self.kind is None or (kind or "video") == self.kind

    def describe(self) -> str:
        """The constraints in words, for reasons."""
        parts = [] if self.kind is None else [self.kind]
        if self.max_duration_s is not None:
            parts.append(f"up to {self.max_duration_s / 60:g} min")
        for name, (lo, hi) in self.where.items():
            parts.append(f"{name} {'≥ %g' % lo if lo is not None else ''}{' and ' if lo is not None and hi is not None else ''}{'≤ %g' % hi if hi is not None else ''}".strip())
        return ", ".join(parts)
