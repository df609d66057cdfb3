"""Writing sCT volumes in a background thread, and waiting for them before the next network pass and at the end.

Compressing and writing a 256 x 256 x 180 int16 NIfTI takes about 0.2 s on a 2-core CPU, mostly in zlib and numpy,
which release the GIL. By default (:class:`BackgroundWrites`) a volume's write overlaps the reading and preprocessing of
the next volume of a folder, and is waited for before the network starts on that volume: on a CPU whose cores all run
the network's OpenMP threads, a write beside them preempts one and stalls the others at the next barrier (measured:
a folder took longer). With ``overlap_network`` (``--background_io true``, e.g. with a GPU) it may run beside the
network too. At most ``MAX_PENDING`` writes wait at a time (each holds one volume in memory). Writes stay atomic
(:func:`custom.outputs.atomic_write`), and an error in a write (full disk, read-only folder) is raised in the run, at
the next wait.

Config use (inference)::

    "writer": "$custom.handlers.BackgroundNibabelWriter",      # in SaveImaged
    "handlers": [{"_target_": "custom.handlers.BackgroundWrites"}, ...]   # first, before handlers that read outputs
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from ignite.engine import Engine, Events

from custom.data.prefetch import lower_thread_priority
from custom.outputs import AtomicNibabelWriter

__all__ = ["BackgroundNibabelWriter", "BackgroundWrites", "wait_for_background_writes"]

MAX_PENDING = 2

_lock = threading.Lock()
_pending: deque[Future] = deque()
_executor: ThreadPoolExecutor | None = None


def _submit(write, *args, **kwargs) -> None:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="sct-writer", initializer=lower_thread_priority
            )
        oldest = _pending.popleft() if len(_pending) >= MAX_PENDING else None
    if oldest is not None:
        oldest.result()  # back-pressure, and the error of an earlier write surfaces here
    future = _executor.submit(write, *args, **kwargs)
    with _lock:
        _pending.append(future)


def wait_for_background_writes() -> None:
    """Block until every background write has finished; raise the first error among them."""
    first_error: BaseException | None = None
    while True:
        with _lock:
            if not _pending:
                break
            future = _pending.popleft()
        error = future.exception()
        if error is not None and first_error is None:
            first_error = error
    if first_error is not None:
        raise first_error


class BackgroundNibabelWriter(AtomicNibabelWriter):
    """MONAI ``NibabelWriter``, atomic, writing in a background thread (see the module docstring)."""

    def write(self, filename, verbose: bool = False, **obj_kwargs):
        _submit(super().write, filename, verbose=verbose, **obj_kwargs)


def _finish_earlier_writes(_engine: Engine) -> None:
    """Writes left by an earlier run in this process that failed before it completed: finish them before this run
    starts; their errors belong to that run, which has already stopped with its own error."""
    try:
        wait_for_background_writes()
    except Exception:  # noqa: BLE001 - reported by the failed run, not this one
        pass


class BackgroundWrites:
    """Ignite handler: wait for the engine's background writes before each iteration's network pass (unless
    ``overlap_network``) and when the engine completes (raising a write's error), so the outputs exist when the run
    returns and for the handlers attached after this one (e.g. evaluation). When it starts, writes left by an earlier
    failed run are finished first, so their errors do not surface in this run.

    Args:
        overlap_network: let a write run beside the next volume's network pass, not only beside its reading.
    """

    def __init__(self, overlap_network: bool = False) -> None:
        self.overlap_network = bool(overlap_network)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, _finish_earlier_writes)
        if not self.overlap_network:  # after the next batch is read, before the network runs on it
            engine.add_event_handler(Events.ITERATION_STARTED, lambda _engine: wait_for_background_writes())
        engine.add_event_handler(Events.COMPLETED, lambda _engine: wait_for_background_writes())
