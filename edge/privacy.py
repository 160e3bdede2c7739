"""The privacy receipt: what the household's history holds, how long it is kept, when it was
last forgotten or exported, and what is known about data leaving the device.

:func:`privacy_receipt` builds a JSON-ready dict (for apps and the local service);
:func:`render_receipt` turns it into a few lines a person reads. Every figure is read from
the history file or from the store's own settings at the time of the call; the "network"
section says only what edgerec enforces by construction and which test checks it, and lists
what it cannot know.

Times in the dict are Unix seconds (UTC, or None); sizes are bytes.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edge.errors import HistoryError
from edge.history.events import EVENT_KINDS
from edge.history.store import RETENTION_SLACK, HistoryStore

RECEIPT_FORMAT = "edgerec-privacy-receipt/1"

#: Tests that check the "network" section's claims; ``tests/test_privacy.py`` checks they exist.
#: The device path run with every socket creation failing the test:
OFFLINE_TESTS = (
    "tests/test_recommender.py::test_install_record_add_item_recommend_all_offline",
    "tests/test_recommender.py::test_taste_exclusions_and_reasons_offline",
)
#: No module of ``edge`` outside ``edge/service`` imports a network module (a static check):
IMPORT_TESTS = ("tests/test_privacy.py::test_only_the_local_service_imports_a_network_module",)
#: The local service's listening addresses:
SERVICE_TESTS = (
    "tests/test_service.py::test_http_refuses_a_non_loopback_address",
    "tests/test_service.py::test_socket_is_0600_in_a_0700_folder_and_the_token_file_is_0600",
)


def privacy_receipt(history: HistoryStore, profile: str | None = None, now: float | None = None) -> dict[str, Any]:
    """What ``history`` stores, for one profile or all, as a JSON-ready dict.

    Keys: ``format``, ``generated_at``, ``database`` (path, bytes on disk of the file and its
    ``-wal``/``-shm``, schema version), ``retention`` (the caps this store applies),
    ``profiles`` (counts, oldest and newest event, local items, settings, approximate bytes
    (see :meth:`HistoryStore.privacy_usage`), last export, age limit), ``household`` (shared
    local items, how many profiles were forgotten and when last, never who) and ``network``.

    :param profile: only this profile (the household and network sections stay whole).
    :param now: Unix seconds the receipt is dated at (default now); the age cap counts from it.
    :raises HistoryError: an unknown profile, a bad ``now``, or a file that cannot be read.
    """
    if now is None:
        now = time.time()
    elif isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise HistoryError(f"now={now!r}; expected Unix seconds as a finite number, or None")
    usage = history.privacy_usage(profile)
    profiles = [_profile(p) for p in usage["profiles"]]
    max_age = history.max_age_days
    return {
        "format": RECEIPT_FORMAT,
        "generated_at": float(now),
        "database": {
            "path": str(history.path.absolute()),
            "bytes": _disk_bytes(history.path),
            "schema_version": usage["schema_version"],
            "journal_mode": usage["journal_mode"],
            "read_only": history.read_only,
        },
        "retention": {
            "max_events_per_profile": history.max_events_per_profile,
            # The count cap is enforced after each recorded batch once a profile is this
            # fraction over it (so a profile at its cap does not pay a delete per event).
            "count_slack": RETENTION_SLACK if history.max_events_per_profile is not None else None,
            "max_age_days": max_age,
            "deletes_events_before": None if max_age is None else float(now) - max_age * 86400,
            "applied": "after every recorded batch, and by enforce_retention()",
            # Read back from the connection, not assumed: deleted rows are zeroed in place.
            # A read-only store deletes nothing, and its connection's setting says nothing
            # about the writer's: unknown.
            "secure_delete": None if history.read_only else usage["secure_delete"],
            "forget": "deletes every row of the profile, then VACUUM and a WAL truncate",
        },
        "profiles": profiles,
        "household": {
            "shared_local_items": usage["shared_local_items"],
            "forgotten_profiles": usage["forgotten"]["count"],
            "last_forgotten_at": usage["forgotten"]["last_at"],
        },
        "network": {
            "device_path_opens_sockets": False,
            "device_path_checked_by": list(OFFLINE_TESTS),
            "device_path_how": "bundle install, record, add_item and recommend run with socket.socket and "
                               "socket.create_connection replaced by a function that fails the test",
            "network_modules_imported_only_by": ["edge/service"],
            "network_modules_checked_by": list(IMPORT_TESTS),
            # Not the device path, but in the same package: said so rather than left out.
            "host_side_tools": ["edgerec package (edge/package.py) runs pip on the packaging host, which downloads "
                                "wheels; it does not read the history"],
            "local_service_listens_on": ["a Unix socket (mode 0600, in a 0700 folder)", "optionally HTTP on a loopback address only"],
            "local_service_checked_by": list(SERVICE_TESTS),
            "history_leaves_the_file_only_by": ["export"],
            "exports": [
                {"profile": p["profile"], "at": p["last_exported_at"], "path": p["last_export_path"]}
                for p in profiles if p["last_exported_at"] is not None
            ],
            "exports_total": usage["exports"]["count"],
            "last_export_at": usage["exports"]["last_at"],
            "not_known": [
                "what an app does with recommendations or with an export it received",
                "copies of the history file made outside edgerec (backups, file sharing)",
                "third-party libraries (onnxruntime, numpy, ...) are covered by the device-path test, not by the import check",
                "export files written earlier: forget does not delete them",
                "exports from a read-only history, or from an edgerec before this receipt, are not recorded",
            ],
        },
    }


def _profile(p: dict[str, Any]) -> dict[str, Any]:
    by_kind = {k: int(p["events_by_kind"].get(k, 0)) for k in EVENT_KINDS}
    last = p["last_export"] or {}
    return {
        "profile": p["profile"],
        "is_guest": p["is_guest"],
        "events": sum(by_kind.values()),
        "events_by_kind": by_kind,
        "oldest_event": p["oldest_event"],
        "newest_event": p["newest_event"],
        "local_items": p["local_items"],
        "settings": p["settings"],
        "approx_bytes": p["approx_bytes"],
        "last_exported_at": last.get("at"),
        "last_export_path": last.get("path"),
        "age_limit": p["age_limit"],
    }


def _disk_bytes(path: Path) -> dict[str, int]:
    """Sizes of the database file and of its WAL and shared-memory files (0 when absent)."""
    sizes = {}
    for name, suffix in (("db", ""), ("wal", "-wal"), ("shm", "-shm")):
        try:
            sizes[name] = Path(f"{path}{suffix}").stat().st_size
        except OSError:
            sizes[name] = 0  # not there: no WAL since the last checkpoint, or another folder's rights
    sizes["total"] = sum(sizes.values())
    return sizes


def render_receipt(receipt: dict[str, Any]) -> str:
    """The receipt as plain text for a person: the file, the retention rules, a few lines per
    profile (sizes in KB, times in UTC ISO 8601), the household and the network statement.

    :raises HistoryError: a dict that is not a receipt of this format.
    """
    if not isinstance(receipt, dict) or receipt.get("format") != RECEIPT_FORMAT:
        raise HistoryError(f"not a privacy receipt (expected format {RECEIPT_FORMAT!r}); build one with privacy_receipt()")
    db, ret, house, net = receipt["database"], receipt["retention"], receipt["household"], receipt["network"]
    cap = ret["max_events_per_profile"]
    lines = [
        f"edgerec privacy receipt, {_when(receipt['generated_at'])}",
        f"History file: {db['path']} ({_kb(db['bytes']['total'])} on disk with its WAL; schema v{db['schema_version']})",
        "Kept: " + ("every event" if cap is None else f"the newest {cap} events per profile")
        + ("" if ret["max_age_days"] is None else f", none older than {ret['max_age_days']:g} days")
        + ("; deleted rows are zeroed in place" if ret["secure_delete"] else ""),
        "",
    ]
    for p in receipt["profiles"]:
        kinds = ", ".join(f"{k} {n}" for k, n in p["events_by_kind"].items() if n) or "none"
        age = "" if p["age_limit"] is None else f", age limit {p['age_limit']}"
        lines += [
            f"Profile {p['profile']}{' (guest)' if p['is_guest'] else ''}{age}",
            f"  {p['events']} events ({kinds})",
            f"  oldest {_when(p['oldest_event'])}, newest {_when(p['newest_event'])}",
            f"  {p['local_items']} local items, {p['settings']} settings, about {_kb(p['approx_bytes'])}",
            "  last exported: " + ("never" if p["last_exported_at"] is None else
                                   _when(p["last_exported_at"]) + (f" to {p['last_export_path']}" if p["last_export_path"] else " (returned to the app, no file)")),
        ]
    lines += [
        "",
        f"Household: {house['shared_local_items']} shared local items; {house['forgotten_profiles']} profile(s) forgotten"
        + ("" if house["last_forgotten_at"] is None else f", last {_when(house['last_forgotten_at'])}"),
        "Network: the device path (bundle install, record, add_item, recommend) opens no socket; only the local "
        "service imports a network module (checked by " + ", ".join(net["device_path_checked_by"] + net["network_modules_checked_by"]) + ").",
        "  The local service listens only on " + " and ".join(net["local_service_listens_on"]) + ".",
        f"  History leaves this file only by export: {net['exports_total']} export(s) recorded"
        + ("" if net["last_export_at"] is None else f", last {_when(net['last_export_at'])}") + ".",
        "  Not known to edgerec: " + "; ".join(net["not_known"]) + ".",
    ]
    return "\n".join(lines) + "\n"


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"
