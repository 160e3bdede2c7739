"""Device profiles: one TOML file per target hardware class, read into a frozen dataclass.

A profile says what the hardware is (with the sources of those facts), how the runtime should
use it (threads, backend order, precision, SQLite durability, history retention) and what it
must achieve (latency, memory and size budgets, checked by ``edgerec bench``), which bundles
it trusts (``[security]``) and how much untrusted input it reads (``[limits]``)::

    from edge.profiles import load_profile
    prof = load_profile("rpi4")                         # a shipped profile, or a path to a .toml
    rec = Recommender.open("bundle/", "history.db", device_profile=prof)

The shipped profiles live in ``edge/device_profiles/`` (package data, so a non-editable install
finds them); ``device_profiles/`` at the repository root holds links to them.

Feature settings (audio sample rate, excerpt windows, frame sampling) are not free choices on
the device: the bundle's FeatureSpec fixes them, because its models were trained on that
layout. A profile states what the device expects, and :meth:`DeviceProfile.check_bundle`
refuses a bundle that differs instead of silently diverging.

Every problem raises :class:`~edge.errors.ProfileError` naming the file and the field.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from edge.backends import BACKENDS
from edge.contract.defaults import (DEFAULT_MAX_MEDIA_BYTES, DEFAULT_MAX_MEDIA_SECONDS, DEFAULT_MAX_REQUEST_BYTES,
                                     DEFAULT_MAX_REQUESTS_PER_S, SQLITE_SYNCHRONOUS)
from edge.errors import ProfileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

#: Folder of the shipped profiles (package data).
PROFILE_DIR = Path(__file__).resolve().parent / "device_profiles"
PRECISIONS = ("int8", "fp32")
ARCHES = ("aarch64", "x86_64", "armv7l")
#: Budget keys: stage latencies (ms, compared with the p95 of ``edgerec bench``), cold start
#: (ms, process start to first recommendation), peak RSS and bundle size (MiB).
BUDGET_KEYS = (
    "audio_features_ms",
    "frame_features_ms",
    "fusion_student_ms",
    "interest_student_ms",
    "catalogue_scoring_ms",
    "recommend_ms",
    "cold_start_ms",
    "peak_rss_mb",
    "bundle_mb",
)
#: ``[limits]`` keys, each with its range: media bytes and seconds read per file, service request
#: bytes and sustained requests per second.
LIMIT_KEYS = ("max_media_bytes", "max_media_seconds", "max_request_bytes", "max_requests_per_s")
#: Profile feature fields and the FeatureSpec field each must equal.
FEATURE_FIELDS = ("sample_rate_hz", "excerpt_windows", "frame_interval_s", "max_frames")

# Known keys per section ("" is the top level); everything listed is required.
_SCHEMA: dict[str, tuple[str, ...]] = {
    "": ("name", "description", "source", "hardware", "runtime", "catalogue", "history", "features", "budgets",
         "security", "limits"),
    "source": ("urls", "notes"),
    "hardware": ("cpu", "arch", "cores", "memory_mb"),
    "runtime": ("threads", "memory_budget_mb", "backends", "precision"),
    "catalogue": ("max_items",),
    "history": ("max_events_per_profile", "sqlite_synchronous"),
    "features": FEATURE_FIELDS,
    "budgets": BUDGET_KEYS,
    "security": ("require_signature", "trusted_keys_dir"),
    "limits": LIMIT_KEYS,
}


@dataclass(frozen=True)
class SecuritySettings:
    """Which bundles the device accepts (``[security]``).

    ``require_signature``: refuse a bundle without a valid ``manifest.sig`` from a trusted key.
    ``trusted_keys_dir``: folder of ``*.pub`` keys (and ``revoked.txt``), see
    :class:`edge.bundle.signing.TrustedKeys`; ``None`` when the profile names none. A relative path in
    the TOML is resolved against the profile's folder.
    """

    require_signature: bool = False
    trusted_keys_dir: Path | None = None


@dataclass(frozen=True)
class ResourceLimits:
    """How much untrusted input the device reads (``[limits]``).

    ``max_media_bytes``: largest media file read (bytes). ``max_media_seconds``: longest
    declared media duration accepted (s). ``max_request_bytes``: longest local-service request
    (bytes). ``max_requests_per_s``: requests per second a service client may sustain.
    """

    max_media_bytes: int = DEFAULT_MAX_MEDIA_BYTES
    max_media_seconds: float = DEFAULT_MAX_MEDIA_SECONDS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_requests_per_s: float = DEFAULT_MAX_REQUESTS_PER_S


@dataclass(frozen=True)
class DeviceProfile:
    """A validated device profile (units in the names; see the shipped TOML files).

    ``backends``: inference backends to try, best first. ``precision``: the model precision
    the bundle must hold (``int8`` or ``fp32``). ``max_catalogue_items``: the largest catalogue
    the memory budget was sized for. ``max_events_per_profile``: the history window kept per
    profile (older events are trimmed). ``excerpt_windows``: ``(position, length_s)`` pairs or
    None for whole clips. ``budgets``: see :data:`BUDGET_KEYS`. ``security``: signature policy
    (:class:`SecuritySettings`). ``limits``: input limits (:class:`ResourceLimits`).
    """

    name: str
    description: str
    path: Path
    source_urls: tuple[str, ...]
    source_notes: str
    cpu: str
    arch: str
    cores: int
    memory_mb: int
    threads: int
    memory_budget_mb: int
    backends: tuple[str, ...]
    precision: str
    max_catalogue_items: int
    max_events_per_profile: int
    sqlite_synchronous: str
    sample_rate_hz: int
    excerpt_windows: tuple[tuple[float, float], ...] | None
    frame_interval_s: float
    max_frames: int
    budgets: Mapping[str, float] = field(default_factory=dict)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    limits: ResourceLimits = field(default_factory=ResourceLimits)

    def history_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`edge.history.HistoryStore`."""
        return {"synchronous": self.sqlite_synchronous, "max_events_per_profile": self.max_events_per_profile}

    def bundle_options(self) -> dict[str, Any]:
        """Keyword arguments for :meth:`edge.bundle.Bundle.open` and
        :class:`edge.bundle.store.BundleStore`: ``trusted_keys`` (read from
        ``security.trusted_keys_dir``, None when the profile names no folder) and
        ``require_signature``.

        :raises BundleError: the keys folder is missing, empty or holds an invalid key (see
            :meth:`edge.bundle.signing.TrustedKeys.from_dir`).
        """
        from edge.bundle.signing import TrustedKeys

        folder = self.security.trusted_keys_dir
        keys = TrustedKeys.from_dir(folder) if folder is not None else None
        return {"trusted_keys": keys, "require_signature": self.security.require_signature}

    def install_limits(self) -> Any:
        """:class:`edge.bundle.archive.InstallLimits` for this device: a whole bundle within
        ``budgets.bundle_mb`` (when the profile sets it), the manifest a fraction of that."""
        from edge.bundle.archive import InstallLimits

        mb = self.budgets.get("bundle_mb")
        return InstallLimits.for_bundle_mb(mb) if mb else InstallLimits()

    def check_bundle(self, bundle: Any) -> None:
        """Refuse a bundle this profile cannot run as stated.

        :param bundle: an opened :class:`edge.bundle.Bundle`.
        :raises ProfileError: the bundle's feature spec differs from the profile's ``[features]``
            (naming the field), its precision differs from ``runtime.precision``, or its
            catalogue exceeds ``catalogue.max_items``.
        """
        spec = bundle.feature_spec
        for name in FEATURE_FIELDS:
            mine, theirs = getattr(self, name), getattr(spec, name)
            if name == "excerpt_windows" and theirs is not None:
                theirs = tuple(tuple(float(x) for x in w) for w in theirs)
            if mine != theirs:
                raise ProfileError(
                    f"{self.path}: features.{name} = {_show(mine)}, but bundle {bundle.root} was built with {_show(theirs)}; "
                    "the bundle's feature spec is fixed by its models: use a bundle built with this setting or change the profile"
                )
        precision = bundle.manifest.get("precision")
        if precision is not None and precision != self.precision:
            raise ProfileError(f"{self.path}: runtime.precision = {self.precision!r}, but bundle {bundle.root} holds {precision!r} models")
        n = len(bundle.items)
        if n > self.max_catalogue_items:
            raise ProfileError(
                f"{self.path}: catalogue.max_items = {self.max_catalogue_items}, but bundle {bundle.root} has {n} items; "
                "ship a smaller catalogue to this device class or raise the cap (and the memory budget) after measuring"
            )


def _show(v: Any) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    return repr(v)


class _Reader:
    """Typed access to one parsed TOML document, with errors naming file and field."""

    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path, self.doc = path, doc

    def fail(self, key: str, expected: str, got: Any = ...) -> ProfileError:
        found = "" if got is ... else f", got {got!r}"
        return ProfileError(f"{self.path}: field '{key}': expected {expected}{found}")

    def get(self, key: str) -> Any:
        section, _, name = key.rpartition(".")
        table = self.doc.get(section, {}) if section else self.doc
        if name not in table:
            raise ProfileError(f"{self.path}: missing field '{key}'")
        return table[name]

    def string(self, key: str, choices: tuple[str, ...] | None = None) -> str:
        v = self.get(key)
        if not isinstance(v, str) or not v.strip():
            raise self.fail(key, "a non-empty string", v)
        if choices is not None and v not in choices:
            raise self.fail(key, f"one of {list(choices)}", v)
        return v

    def integer(self, key: str, lo: int, hi: int) -> int:
        v = self.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.fail(key, f"an integer in {lo}..{hi}", v)
        return v

    def boolean(self, key: str) -> bool:
        v = self.get(key)
        if not isinstance(v, bool):
            raise self.fail(key, "true or false", v)
        return v

    def number(self, key: str, lo: float, hi: float) -> float:
        v = self.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo < v <= hi:
            raise self.fail(key, f"a number in ({lo}, {hi}]", v)
        return float(v)


def parse_profile(path: str | Path, text: str) -> DeviceProfile:
    """Validate the TOML ``text`` of a profile (``path`` is used in messages).

    :raises ProfileError: invalid TOML, a missing or unknown section or key, a wrong type or a
        value out of range; the message names the file and the field.
    """
    path = Path(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc})") from None
    # Unknown keys are errors: a misspelt budget would otherwise be silently unchecked.
    for section, keys in _SCHEMA.items():
        table = doc if not section else doc.get(section)
        if section and not isinstance(table, dict):
            raise ProfileError(f"{path}: missing section [{section}]" if table is None else f"{path}: '{section}' must be a [table]")
        unknown = sorted(set(table) - set(keys))
        if unknown:
            where = f"[{section}]" if section else "the top level"
            raise ProfileError(f"{path}: unknown field(s) {unknown} in {where}; known: {list(keys)}")
    r = _Reader(path, doc)

    urls = r.get("source.urls")
    if not isinstance(urls, list) or not all(isinstance(u, str) and u.startswith(("https://", "http://")) for u in urls):
        raise r.fail("source.urls", "a list of http(s) URLs", urls)
    notes = r.string("source.notes")

    cores = r.integer("hardware.cores", 1, 256)
    memory_mb = r.integer("hardware.memory_mb", 64, 1 << 22)
    threads = r.integer("runtime.threads", 1, cores)
    budget_mb = r.integer("runtime.memory_budget_mb", 16, memory_mb)
    backends = r.get("runtime.backends")
    if (not isinstance(backends, list) or not backends or len(set(backends)) != len(backends)
            or not all(b in BACKENDS for b in backends)):
        raise r.fail("runtime.backends", f"a non-empty list of distinct backends from {list(BACKENDS)}", backends)

    windows = r.get("features.excerpt_windows")
    if windows == "whole":
        excerpt: tuple[tuple[float, float], ...] | None = None
    elif (isinstance(windows, list) and windows and all(
            isinstance(w, list) and len(w) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in w)
            and 0.0 <= w[0] <= 1.0 and 0.0 < w[1] <= 600.0 for w in windows)):
        excerpt = tuple((float(w[0]), float(w[1])) for w in windows)
    else:
        raise r.fail("features.excerpt_windows", '[[position 0..1, length_s 0..600], ...] or "whole"', windows)

    budgets = {}
    for key in BUDGET_KEYS:
        budgets[key] = r.number(f"budgets.{key}", 0.0, 1e7)
    if budgets["peak_rss_mb"] > budget_mb:
        raise r.fail("budgets.peak_rss_mb", f"at most runtime.memory_budget_mb = {budget_mb}", budgets["peak_rss_mb"])

    require_signature = r.boolean("security.require_signature")
    keys_dir = r.get("security.trusted_keys_dir")
    if not isinstance(keys_dir, str):
        raise r.fail("security.trusted_keys_dir", 'a folder path or "" for none', keys_dir)
    if require_signature and not keys_dir.strip():
        raise r.fail("security.trusted_keys_dir", "a folder of trusted keys when security.require_signature = true", keys_dir)
    security = SecuritySettings(
        require_signature=require_signature,
        trusted_keys_dir=(path.parent / keys_dir.strip()) if keys_dir.strip() else None,
    )
    limits = ResourceLimits(
        max_media_bytes=r.integer("limits.max_media_bytes", 1024, 1 << 40),
        max_media_seconds=r.number("limits.max_media_seconds", 0.0, 7 * 86400.0),
        max_request_bytes=r.integer("limits.max_request_bytes", 64, 64 << 20),
        max_requests_per_s=r.number("limits.max_requests_per_s", 0.0, 1e6),
    )

    return DeviceProfile(
        name=r.string("name"),
        description=r.string("description"),
        path=path,
        source_urls=tuple(urls),
        source_notes=notes,
        cpu=r.string("hardware.cpu"),
        arch=r.string("hardware.arch", ARCHES),
        cores=cores,
        memory_mb=memory_mb,
        threads=threads,
        memory_budget_mb=budget_mb,
        backends=tuple(backends),
        precision=r.string("runtime.precision", PRECISIONS),
        max_catalogue_items=r.integer("catalogue.max_items", 1, 100_000_000),
        max_events_per_profile=r.integer("history.max_events_per_profile", 1, 100_000_000),
        sqlite_synchronous=r.string("history.sqlite_synchronous", SQLITE_SYNCHRONOUS),
        sample_rate_hz=r.integer("features.sample_rate_hz", 8000, 192000),
        excerpt_windows=excerpt,
        frame_interval_s=r.number("features.frame_interval_s", 0.0, 3600.0),
        max_frames=r.integer("features.max_frames", 1, 10_000),
        budgets=MappingProxyType(budgets),
        security=security,
        limits=limits,
    )


def list_profiles() -> list[str]:
    """Names of the shipped profiles, sorted."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


#: The environment variable a device image sets to its profile (a shipped name or a .toml path),
#: so every entry point (facade, CLI, service) applies the same trust policy and limits when the
#: caller names none.
DEVICE_PROFILE_ENV = "EDGEREC_DEVICE_PROFILE"


def default_device_profile() -> DeviceProfile | None:
    """The profile :data:`DEVICE_PROFILE_ENV` names, or None when it is unset or empty.

    :raises ProfileError: it names an unknown profile or an invalid file.
    """
    name = os.environ.get(DEVICE_PROFILE_ENV, "").strip()
    return load_profile(name) if name else None


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """Read and validate a profile: a shipped name (``rpi4``) or a path to a ``.toml`` file.

    :raises ProfileError: unknown name, unreadable file, or an invalid profile (see
        :func:`parse_profile`).
    """
    s = str(name_or_path)
    if s.endswith(".toml") or "/" in s or "\\" in s:
        path = Path(s)
    else:
        path = PROFILE_DIR / f"{s}.toml"
        if not path.is_file():
            raise ProfileError(f"unknown device profile {s!r}; shipped: {', '.join(list_profiles())} (or pass a path to a .toml file)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read the profile ({exc})") from None
    prof = parse_profile(path, text)
    if path.parent == PROFILE_DIR and prof.name != path.stem:
        raise ProfileError(f"{path}: field 'name': expected {path.stem!r} (the file name), got {prof.name!r}")
    return prof
