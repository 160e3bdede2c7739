"""``edgerec serve``: registered here; the local service lives in :mod:`edge.service`."""

from __future__ import annotations

import argparse


def register(sub: "argparse._SubParsersAction") -> None:
    """Add ``serve`` to ``sub`` (filled in with the local service)."""
