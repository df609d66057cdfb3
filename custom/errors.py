"""The errors a user can act on, and how a command-line process stops on a signal.

Every problem that is the user's to fix (bad input data, an output that cannot be written) is an :class:`InputError`
whose message names the file and the problem and is shown as it is: one line, exit code 2 (``custom.cli`` and, under
``python -m monai.bundle run``, :mod:`custom.monai_run`). Ctrl-C and SIGTERM end a run the same way, with exit code 130
or 143 (:func:`stop_on_signals`).
"""

from __future__ import annotations

import errno
import logging
import re
import signal
from collections.abc import Iterator
from typing import Any

__all__ = ["InputError", "OutputError", "Terminated", "short_reason", "stop_on_signals", "user_error"]


class InputError(ValueError):
    """Bad input data: the message names the file and the problem, and is meant to be shown as is."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's ``KeyboardInterrupt`` (whose handling it shares: outputs
    written atomically are either whole or absent), so that a run stopped by ``kill`` or a job scheduler also ends with
    one line and no empty output folder (exit code 143 instead of 130)."""


def _interrupt(signum: int, frame: Any) -> None:
    logging.disable(logging.CRITICAL)  # the engines would log the unwinding as errors: the command says it in one line
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def stop_on_signals() -> None:
    """Make Ctrl-C (SIGINT) raise ``KeyboardInterrupt`` and SIGTERM :class:`Terminated` in the main thread, both
    silencing the logs from then on: a command-line process calls this once at its start."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


class OutputError(InputError):
    """An output that cannot be written (read-only folder, disk full, a folder in the way): the message names the
    file. An :class:`InputError`, so that every command shows it the same way (one line, exit code 2)."""


def short_reason(error: BaseException, limit: int = 200) -> str:
    """``Type: first sentence`` of an error from a library, for a one-line message (torch's and the readers' run to
    several lines of advice)."""
    text = str(error).strip()
    first = text.splitlines()[0].split(". ")[0] if text else ""
    return f"{type(error).__name__}: {first[:limit]}" if first else type(error).__name__


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions behind it (``raise ... from``, or raised while handling), outermost first."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def user_error(error: BaseException) -> str | None:
    """The one-line message of an error that is the user's to fix, or ``None`` for a bug (shown as a traceback).

    An :class:`InputError` anywhere behind ``error`` (MONAI wraps errors of config expressions and transforms in
    ``RuntimeError``), or quoted in a ``RuntimeError``'s text, gives its own message; otherwise an ``OSError`` naming
    a file (permission denied, disk full, no such file...) gives ``file: reason``.
    """
    chain = list(_chain(error))
    for e in chain:
        if isinstance(e, InputError):
            return str(e)
        if isinstance(e, KeyboardInterrupt):
            return "interrupted"
    for e in chain:  # MONAI's SaveImage keeps its writer's error only as text, in a RuntimeError of its own
        quoted = _QUOTED_ERROR.findall(str(e)) if isinstance(e, RuntimeError) else []
        if quoted:
            return quoted[-1]
    for e in chain:
        if isinstance(e, OSError) and (e.filename or e.errno == errno.ENOSPC):
            reason = "disk full" if e.errno == errno.ENOSPC else e.strerror or str(e)
            return f"{e.filename or 'output'}: {reason}"
    return None


_QUOTED_ERROR = re.compile(r"^custom\.errors\.(?:Input|Output)Error: (.+)$", re.MULTILINE)
