"""Signed freshness: a bundle's version and expiry, both inside the signed manifest.

``bundle_version`` is a whole number that grows with every bundle the publisher releases (the
exporter writes the build's Unix time unless told otherwise); ``expires_at`` (ISO 8601, UTC) is
when the publisher stops vouching for it. A store refuses to install a bundle older than the
newest it has installed (a replayed old bundle, TUF's rollback attack) unless the operator
allows a downgrade, and refuses an expired one (TUF's freeze attack: a device kept on stale
content). An installed bundle that expires later keeps serving, offline devices must go on
recommending, and ``health`` says it is stale. Bundles written before these fields existed read
as version 0 and never expire.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Mapping

from edge.errors import BundleError

__all__ = ["DEFAULT_VALID_DAYS", "bundle_version", "expires_at", "is_expired", "check_not_expired", "check_not_older"]

#: How long a bundle is vouched for when the exporter is not told otherwise.
DEFAULT_VALID_DAYS = 365.0
#: Before this the device clock was never set (2000-01-01): expiry cannot be judged.
_CLOCK_SET = 946_684_800


def bundle_version(manifest: Mapping[str, Any]) -> int:
    """The manifest's ``bundle_version`` (0 for bundles written before it existed)."""
    v = manifest.get("bundle_version", 0)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise BundleError(f"manifest field 'bundle_version' is {v!r}; expected a whole number >= 0")
    return v


def expires_at(manifest: Mapping[str, Any]) -> datetime | None:
    """The manifest's ``expires_at`` as an aware UTC datetime, None when absent."""
    raw = manifest.get("expires_at")
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(str(raw)) if isinstance(raw, str) else None
    except ValueError:
        when = None
    if when is None:
        raise BundleError(f"manifest field 'expires_at' is {str(raw)[:40]!r}; expected an ISO 8601 date such as 2027-12-01T00:00:00+00:00")
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def is_expired(manifest: Mapping[str, Any], now: float | None = None) -> bool:
    """Whether the bundle's expiry has passed by the device clock (False while the clock is unset)."""
    now = time.time() if now is None else now
    when = expires_at(manifest)
    return when is not None and now >= _CLOCK_SET and now > when.timestamp()


def check_not_expired(manifest: Mapping[str, Any], where: str, now: float | None = None) -> None:
    """:raises BundleError: the bundle expired, naming the date."""
    if is_expired(manifest, now):
        raise BundleError(f"{where}: expired on {expires_at(manifest).isoformat()} (device clock {datetime.fromtimestamp(time.time() if now is None else now, timezone.utc).isoformat(timespec='seconds')}); "
                          "ask the publisher for a current bundle")


def check_not_older(new: Mapping[str, Any], newest_installed: int, where: str, allow_downgrade: bool = False) -> None:
    """:raises BundleError: ``new`` is older than the newest version this store installed,
    naming both (unless ``allow_downgrade``)."""
    v = bundle_version(new)
    if v < newest_installed and not allow_downgrade:
        raise BundleError(f"{where}: bundle version {v} is older than version {newest_installed} installed before; "
                          "a replayed old bundle is refused (pass --allow-downgrade to install it on purpose)")
