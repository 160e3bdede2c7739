"""Command group registration (filled in by its issue)."""

from __future__ import annotations

import argparse


def register(sub: "argparse._SubParsersAction") -> None:
    """Add this module's commands to ``sub``."""
