"""Keeping known third-party noise off the console, each source silenced where it arises and
only for the call that causes it; errors always get through.

- :func:`quiet_torchao`: when transformers (or litert-torch) first imports torchao, torchao logs
  "Failed to load ..." for each optional CUDA/cutlass kernel library it cannot load, and torch's
  pytree logs a deprecation warning for each Enum torchao registers ("<enum 'KernelPreference'>
  is an Enum subclass ... register_constant() ... deprecated"). Neither matters for a CPU export.
- :func:`captured_native_output`: the LiteRT converter and runtime and their TensorFlow/absl
  dependencies print progress and INFO lines from C++ straight to file descriptors 1 and 2
  ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU."); they are captured, and shown
  (or attached to the error) when the call fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import IO, Iterator

#: The loggers torchao's import speaks through: its own, and torch's pytree registry.
_TORCHAO_IMPORT_LOGGERS = ("torchao", "torch.utils._pytree")


@contextlib.contextmanager
def quiet_torchao() -> Iterator[None]:
    """Hold the loggers of torchao's import messages at ERROR for the duration (wrap the import
    of transformers' models or litert-torch); their levels are restored afterwards."""
    loggers = [logging.getLogger(name) for name in _TORCHAO_IMPORT_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def captured_native_output() -> Iterator[IO[bytes]]:
    """Send file descriptors 1 and 2 (C++ output included) to a temporary file for the duration;
    yields the file, for :func:`log_tail`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def log_tail(log: IO[bytes], chars: int = 4000) -> str:
    """The end of a log captured by :func:`captured_native_output`, for an error message."""
    log.seek(0)
    return log.read()[-chars:].decode("utf-8", "replace")


@contextlib.contextmanager
def native_info_hidden() -> Iterator[None]:
    """:func:`captured_native_output` for a call whose native output is informational only (e.g.
    loading a TFLite model); if the call raises, what it printed is written to stderr first."""
    shown = ""
    try:
        with captured_native_output() as log:
            try:
                yield
            except BaseException:
                shown = log_tail(log)
                raise
    finally:
        if shown:
            sys.stderr.write(shown)
            sys.stderr.flush()
