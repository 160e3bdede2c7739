"""Feature extraction in a child process with a time limit, for callers that must not wait on
a decoder forever (the local service's one worker): a file that makes a decoder spin is killed
with its child, and the caller gets a :class:`FeatureError`. Costs a process start (about half
a second) per call, so only the service uses it; a shell command just runs in-process."""

from __future__ import annotations

import multiprocessing
from typing import Any, Callable

from edge.errors import EdgeError, FeatureError

__all__ = ["run_with_time_limit"]


def _child(conn: Any, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    try:
        conn.send(("ok", fn(*args, **kwargs)))
    except EdgeError as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
    except BaseException as exc:  # noqa: BLE001  (reported to the parent, which raises FeatureError)
        conn.send(("error", "FeatureError", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_with_time_limit(fn: Callable[..., Any], timeout_s: float, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a fresh child process (``fn`` and its result must pickle).

    :raises FeatureError: it ran past ``timeout_s`` (the child is killed), died, or raised
        anything but another :class:`EdgeError` (which is raised again as its own class).
    """
    from edge import errors

    ctx = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout_s):
            raise FeatureError(f"decoding took longer than {timeout_s:g} s and was stopped; the file is refused")
        try:
            answer = parent.recv()
        except EOFError:
            raise FeatureError(f"the decoder process died (exit {proc.exitcode}); the file is refused") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if answer[0] == "ok":
        return answer[1]
    cls = getattr(errors, answer[1], FeatureError)
    raise (cls if isinstance(cls, type) and issubclass(cls, EdgeError) else FeatureError)(answer[2])
