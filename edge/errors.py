"""The one exception hierarchy of edgerec.

Every error the library raises on bad input derives from :class:`EdgeError`, so an
application embedding edgerec can catch one class. Messages say what was wrong, where
(file, line, column or field), what was expected against what was found, and what to do.
The library never prints or exits; the CLI turns an ``EdgeError`` into one line on stderr
and a non-zero exit status.
"""

from __future__ import annotations

__all__ = [
    "EdgeError",
    "DataError",
    "FeatureError",
    "BackendError",
    "HistoryError",
    "BundleError",
    "ProfileError",
    "QueryError",
    "RequestError",
    "AuthError",
]


class EdgeError(Exception):
    """Base class of every error edgerec raises on bad input or a bad environment."""


class DataError(EdgeError):
    """Raised when ``interactions.csv``/``items.csv`` (or a MovieLens folder) break the data
    contract: a missing column, an unparsable timestamp, an unknown event kind, a duplicate
    item id, or a media path that is missing or escapes the media root. The message names
    the file, the line and the column."""


class FeatureError(EdgeError):
    """Raised when content features cannot be computed: a media file that is empty, truncated,
    not audio, silent, has an unsupported sample rate or channel count, or frames of the wrong
    dtype or shape. The message names the file and the reason."""


class BackendError(EdgeError):
    """Raised when no inference backend (onnxruntime, LiteRT) can load or run a model, or a
    model's inputs do not match what the caller provides."""


class HistoryError(EdgeError):
    """Raised by the SQLite history store: unknown profile, unknown event kind, implausible
    timestamps, malformed ids, or a database that cannot be opened or written."""


class BundleError(EdgeError):
    """Raised when a bundle is missing, malformed, fails its manifest checks (format version,
    feature-spec hash, sha256 or size of a file), or cannot be installed."""


class ProfileError(EdgeError):
    """Raised when a device profile (TOML) is missing, malformed, has unknown keys or values
    out of range. The message names the field."""


class QueryError(EdgeError):
    """Raised when a request cannot be answered as asked: an empty steering query or one
    with no readable word, a constraint on a descriptor the bundle does not measure or with an
    impossible range, an unknown item kind, a home screen row size out of range, no household
    profile to guess from. The message names the argument and what it accepts."""


class RequestError(EdgeError):
    """Raised by the local service (:mod:`edge.service`) on a malformed request: not JSON, not
    a JSON object, an unknown method, a missing, unexpected or wrongly typed parameter, a
    request over the size limit or one that did not arrive within the read timeout. The
    message names the field and what was expected; the connection stays usable unless the
    request was too long or too slow."""


class AuthError(EdgeError):
    """Raised by the local service when a request carries no token or a wrong one (the
    ``token`` field on the Unix socket, ``Authorization: Bearer`` over HTTP). The answer says
    nothing about any profile; read the token from the service's token file."""
