"""The request schema and the JSON envelopes, shared by both transports.

Every method is named after the :class:`~edge.recommender.Recommender` method it calls, with
the same parameter names (:data:`METHODS`); :func:`check_params` validates a params object
against it, :func:`result_json` turns the facade's answer into the documented result, and
:func:`answer_ok` / :func:`answer_error` build the envelopes.

Error types: the class name of any :class:`~edge.errors.EdgeError` (``HistoryError``...),
``RequestError`` and ``AuthError`` (classes in :mod:`edge.errors`), and three the service
answers itself: ``RateLimited``, ``Busy`` and ``InternalError``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

from edge.context import DEVICE_KINDS
from edge.contract.defaults import DEFAULT_K, MAX_K
from edge.errors import RequestError

__all__ = ["METHODS", "MAX_K", "MAX_RECENT", "Param", "check_params", "result_json", "answer_ok", "answer_error"]

#: Most events one ``recent`` may ask for.
MAX_RECENT = 10_000

#: Error types the service answers itself (no exception class behind them).
RATE_LIMITED, BUSY, INTERNAL_ERROR = "RateLimited", "Busy", "InternalError"

# An answer: the error type (None for success) and the JSON envelope as bytes, no newline.
Answer = tuple["str | None", bytes]

REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One parameter: its name (the facade's argument name), JSON kind, default and, for an
    integer, its inclusive range."""

    name: str
    kind: str  # str | int | number | bool | str_list | device | path | ranges
    default: Any = REQUIRED
    nullable: bool = False
    lo: int | None = None
    hi: int | None = None


_WANT = {"str": "a string", "int": "an integer", "number": "a finite number", "bool": "true or false",
         "str_list": "an array of strings", "device": f"one of {list(DEVICE_KINDS)}", "path": "an absolute file path (string)",
         "ranges": "an object of descriptor name -> [low, high]"}

#: Every method and its parameters, in the order docs/service.md lists them. Each calls the
#: facade method of the same name with these keyword arguments.
METHODS: dict[str, tuple[Param, ...]] = {
    "recommend": (Param("profile", "str"), Param("k", "int", DEFAULT_K, lo=1, hi=MAX_K), Param("device", "device", "tv"),
                  Param("timestamp", "number", None, True), Param("query", "str", None, True),
                  Param("max_duration_s", "number", None, True), Param("kind", "str", None, True),
                  Param("where", "ranges", None, True), Param("session_items", "str_list", ())),
    "home": (Param("profile", "str"), Param("device", "device", "tv"), Param("timestamp", "number", None, True),
             Param("per_row", "int", 10, lo=1, hi=MAX_K), Param("session_items", "str_list", ())),
    "who_is_watching": (Param("device", "device", "tv"), Param("timestamp", "number", None, True),
                        Param("session_items", "str_list", ())),
    "privacy": (Param("profile", "str", None, True),),
    "record": (Param("profile", "str"), Param("item_id", "str"), Param("kind", "str", "play"),
               Param("timestamp", "number", None, True), Param("value", "number", None, True), Param("device", "device", "tv"),
               Param("client_id", "str", None, True)),
    "add_item": (Param("source", "path"), Param("title", "str"), Param("tags", "str_list", ()),
                 Param("kind", "str", None, True), Param("description", "str", ""), Param("profile", "str", None, True),
                 Param("item_id", "str", None, True)),
    "add_profile": (Param("profile", "str"), Param("age_limit", "int", None, True)),
    "profiles": (),
    "recent": (Param("profile", "str"), Param("n", "int", 20, lo=0, hi=MAX_RECENT), Param("kinds", "str_list", None, True)),
    "block": (Param("profile", "str"), Param("item_id", "str"), Param("blocked", "bool", True)),
    "blocked": (Param("profile", "str"),),
    "forget": (Param("profile", "str"),),
    "export": (Param("profile", "str"),),
    "apply_delta": (Param("path", "path"),),
    "health": (),
}

#: How a facade answer that is a bare value becomes a result object: under this key, or built
#: from the checked params and the value. Methods not listed answer the facade's value as JSON
#: (records and lists of records as objects and arrays of objects).
RESULTS: dict[str, str | Callable[[dict[str, Any], Any], dict[str, Any]]] = {
    "record": "event_id",
    "add_item": "item_id",
    # An existing profile keeps its limit: the facade answers what is stored, not what was asked.
    "add_profile": lambda params, age_limit: {"profile": params["profile"], "age_limit": age_limit},
    "profiles": "profiles",
    "block": "blocked_items",
    "blocked": "blocked_items",
}


def json_type(value: object) -> str:
    """How a JSON value is named in messages (never its content, which may be long or private)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _check_value(method: str, p: Param, value: object) -> object:
    if value is None and p.nullable:
        return None
    kind = p.kind
    if kind in ("str", "device", "path"):
        ok = isinstance(value, str)
        if ok and kind == "device":
            ok = value in DEVICE_KINDS
        if ok and kind == "path":
            ok = os.path.isabs(value)  # type: ignore[arg-type]  # the service's working folder means nothing to a client
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "ranges":  # the names and numbers are checked by the facade (QueryError)
        ok = isinstance(value, dict) and all(isinstance(v, list) for v in value.values())
    else:  # str_list
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if not ok:
        shown = f"{value!r}" if isinstance(value, str) and len(value) <= 80 else json_type(value)
        raise RequestError(f"{method}: parameter {p.name!r} must be {_WANT[kind]}{' or null' if p.nullable else ''}, got {shown}")
    if p.lo is not None and p.hi is not None and not p.lo <= value <= p.hi:  # type: ignore[operator]
        raise RequestError(f"{method}: parameter {p.name!r} must be from {p.lo} to {p.hi}, got {value}")
    return value


def check_params(method: object, params: object) -> tuple[str, dict[str, Any]]:
    """Validate a method name and its params object; fill in defaults.

    :returns: the method and its keyword arguments.
    :raises RequestError: an unknown method, a missing, unexpected or wrongly typed parameter.
    """
    if not isinstance(method, str) or method not in METHODS:
        shown = repr(method) if isinstance(method, str) and len(method) <= 80 else json_type(method)
        raise RequestError(f"unknown method {shown}; expected one of {sorted(METHODS)}")
    if not isinstance(params, dict):
        raise RequestError(f"{method}: params must be a JSON object, got {json_type(params)}")
    spec = METHODS[method]
    names = [p.name for p in spec]
    extra = sorted(set(params) - set(names))
    if extra:
        raise RequestError(f"{method}: unexpected parameter {extra[0][:80]!r}; expected some of {names}")
    out: dict[str, Any] = {}
    for p in spec:
        if p.name in params:
            out[p.name] = _check_value(method, p, params[p.name])
        elif p.default is REQUIRED:
            raise RequestError(f"{method}: missing parameter {p.name!r} ({_WANT[p.kind]})")
        else:
            out[p.name] = list(p.default) if isinstance(p.default, tuple) else p.default
    return method, out


def to_json(value: Any) -> Any:
    """A facade answer as JSON-ready data: dataclasses as objects, tuples as arrays."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def result_json(method: str, params: dict[str, Any], value: Any) -> Any:
    """The ``result`` of ``method`` from what the facade answered (see :data:`RESULTS`)."""
    shape = RESULTS.get(method)
    value = to_json(value)
    if shape is None:
        return value
    if isinstance(shape, str):
        return {shape: value}
    return shape(params, value)


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def answer_ok(result: Any, req_id: object = None) -> Answer:
    """``{"ok": true, "result": ..., "id": ...}`` (no ``id`` when None)."""
    doc: dict[str, Any] = {"ok": True, "result": result}
    if req_id is not None:
        doc["id"] = req_id
    return None, _dumps(doc)


def answer_error(kind: str, message: str, req_id: object = None) -> Answer:
    """``{"ok": false, "error": {"type": ..., "message": ...}, "id": ...}`` (no ``id`` when None)."""
    doc: dict[str, Any] = {"ok": False, "error": {"type": kind, "message": message}}
    if req_id is not None:
        doc["id"] = req_id
    return kind, _dumps(doc)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes, what: str, hint: str) -> Any:
    """Decode ``data`` (UTF-8 JSON; ``NaN`` and ``Infinity`` refused).

    :param what: ``"request"`` or ``"body"``, for the message.
    :param hint: what the client should send instead.
    :raises RequestError: not UTF-8, not JSON, or nested too deeply.
    """
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except ValueError as exc:
        raise RequestError(f"the {what} is not valid JSON ({exc}); {hint}") from None
    except RecursionError:
        raise RequestError(f"the {what} is nested too deeply") from None


#: Fields of a request on the socket.
REQUEST_FIELDS = ("token", "method", "params", "id")


def request_id(req: dict[str, Any]) -> object:
    """The request's ``id`` when it may be echoed (a string or an integer), else None."""
    raw = req.get("id")
    return raw if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None


def check_request_fields(req: dict[str, Any]) -> None:
    """Refuse unknown fields and an ``id`` that is neither a string nor an integer.

    :raises RequestError: naming the field.
    """
    extra = sorted(set(req) - set(REQUEST_FIELDS))
    if extra:
        raise RequestError(f"unexpected request field {extra[0][:80]!r}; expected token, method, params and optionally id")
    raw_id = req.get("id")
    if raw_id is not None and request_id(req) is None:
        raise RequestError(f"the request id must be a string or an integer, got {json_type(raw_id)}")
