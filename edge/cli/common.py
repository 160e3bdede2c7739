"""Options every command module shares, so one flag has one name and one meaning everywhere.

``--profile`` is always a household profile (a person); the hardware is ``--device-profile``.
Commands that open a :class:`~edge.recommender.Recommender` take ``--bundle``, ``--db`` and
``--device-profile`` through :func:`recommender_args` and open it with :func:`open_recommender`.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.profiles import DeviceProfile
    from edge.recommender import Recommender

#: Options a command may have beyond its facade method's parameters: where the Recommender
#: comes from, and how the answer is printed or confirmed.
COMMON_DESTS = frozenset({"bundle", "db", "device_profile", "json", "yes"})

DEVICE_PROFILE_HELP = "device profile: a shipped name (rpi4, tv-a55, speaker-a53, x86-dev) or a .toml path"


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0 (a negative one is a usage error, not a traceback)."""
    return _int_at_least(text, 0)


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    return _int_at_least(text, 1)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {low} or more, got {value}")
    return value


def device_profile_arg(p: argparse.ArgumentParser, required: bool = False, help: str | None = None) -> None:
    """``--device-profile NAME_OR_TOML``: the hardware a command runs as."""
    p.add_argument("--device-profile", metavar="NAME_OR_TOML", required=required, default=None,
                   help=help or DEVICE_PROFILE_HELP + "; its threads, backends, history and [security] settings apply")


def load_device_profile(name: str | None) -> "DeviceProfile | None":
    """The device profile named by ``--device-profile``; without one, the device's own
    (``EDGEREC_DEVICE_PROFILE``, :func:`edge.profiles.default_device_profile`), else None.

    :raises ProfileError: an unknown name or an invalid file.
    """
    from edge.profiles import default_device_profile, load_profile

    return load_profile(name) if name is not None else default_device_profile()


def recommender_args(p: argparse.ArgumentParser) -> None:
    """``--bundle``, ``--db`` and ``--device-profile``: what :func:`open_recommender` needs."""
    p.add_argument("--bundle", required=True, help="bundle folder, or a bundle store (its active bundle)")
    p.add_argument("--db", required=True, help="SQLite history file (created when missing; a damaged one is moved aside)")
    device_profile_arg(p)


def open_recommender(args: argparse.Namespace) -> "Recommender":
    """``Recommender.open(args.bundle, args.db, device_profile=...)``; use it in a ``with``.

    :raises BundleError, HistoryError, ProfileError, BackendError: as :meth:`Recommender.open`.
    """
    from edge.recommender import Recommender

    return Recommender.open(args.bundle, args.db, device_profile=load_device_profile(args.device_profile))


def json_arg(p: argparse.ArgumentParser) -> None:
    """``--json``: print the answer as JSON instead of text."""
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def print_json(doc: Any) -> None:
    print(json.dumps(doc, ensure_ascii=False, indent=1))
