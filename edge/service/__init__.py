"""The local service: the :class:`~edge.recommender.Recommender` facade as JSON, for apps on
the same device that are not written in Python (``edgerec serve``).

Every method is the facade method of the same name with the same parameter names
(:data:`~edge.service.protocol.METHODS`); two transports carry one envelope (every method's
schema is in ``docs/service.md``):

* a **Unix domain socket** (:mod:`edge.service.unix`): one JSON object per line in, one per
  line out, any number of requests per connection;
* optionally **HTTP on a loopback address** (:mod:`edge.service.http`): ``POST /v1/<method>``
  with the params object as the body and ``Authorization: Bearer <token>``. Any other bind
  address is refused.

Errors are ``{"ok": false, "error": {"type": "HistoryError", "message": "…"}}``: the class name
of any :class:`~edge.errors.EdgeError`, ``RequestError`` (malformed request), ``AuthError``
(no or wrong token), ``RateLimited``, ``Busy`` (too many connections) or ``InternalError``
(logged on ``edge.service``; no traceback goes to the client).

Modules: :mod:`~edge.service.protocol` (schema, parameter checks, envelopes),
:mod:`~edge.service.access` (private folder, token and token file, loopback address),
:mod:`~edge.service.limits` (:class:`Limits`), :mod:`~edge.service.ratelimit` (token
buckets), :mod:`~edge.service.streams`, :mod:`~edge.service.unix` and
:mod:`~edge.service.http` (the transports), :mod:`~edge.service.server` (:class:`Service`:
lifecycle, worker thread, dispatch). Importing this package does not import ``asyncio``.
"""

from edge.service.access import default_socket_path, load_or_create_token, loopback_address
from edge.service.limits import Limits
from edge.service.protocol import MAX_K, METHODS, check_params
from edge.service.server import Service

__all__ = ["Limits", "MAX_K", "METHODS", "Service", "check_params", "default_socket_path", "load_or_create_token",
           "loopback_address"]
