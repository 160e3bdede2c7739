"""The event vocabulary shared by the server's data contract, training and the device history.

One tuple, so an ``interactions.csv`` row, a training token and an event stored on the device
use the same names. ``rate`` comes from rating datasets (MovieLens); ``search`` and
``add-to-list`` from device apps.
"""

from __future__ import annotations

#: Every event kind, in a fixed order: training codes are ``EVENT_KINDS.index(kind) + 1``
#: (0 is padding), so appending is safe and reordering changes trained models.
EVENT_KINDS: tuple[str, ...] = ("play", "complete", "skip", "like", "dislike", "rate", "search", "add-to-list")
#: Kinds that say "more like this": training targets and the device's history window.
POSITIVE_KINDS: frozenset[str] = frozenset({"play", "complete", "like", "rate", "add-to-list"})
#: Kinds that say "not this": model inputs and unlikelihood targets, never positives; the device
#: leaves these items out and lowers items like them.
NEGATIVE_KINDS: frozenset[str] = frozenset({"skip", "dislike"})
#: Kinds that are neither (a search names an item without judging it).
NEUTRAL_KINDS: frozenset[str] = frozenset(EVENT_KINDS) - POSITIVE_KINDS - NEGATIVE_KINDS
#: The kind of an interaction that names none.
DEFAULT_KIND = "play"


def kind_code(kind: str) -> int:
    """The training code of ``kind``: its position in :data:`EVENT_KINDS` plus one (0 pads)."""
    return EVENT_KINDS.index(kind) + 1


#: Number of kind codes including padding: the size of a kind-embedding table.
N_KIND_CODES = len(EVENT_KINDS) + 1
