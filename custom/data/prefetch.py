"""Loading the next item in a background thread while the current one is computed.

Reading and preprocessing a 256 x 256 x 180 MR volume takes ~0.6 s on a CPU, mostly in zlib and numpy, which release
the GIL, so a thread overlaps it with the network's work on the previous volume. Unlike MONAI's ``ThreadBuffer`` (which
ends the iteration silently when the source raises), an error while loading is raised in the caller's thread, as the
original exception: a bad input in a folder stops the run with its own message instead of being skipped.

Config use (inference)::

    "evaluator": {"_target_": "SupervisedEvaluator", "val_data_loader": "$custom.data.Prefetch(@dataloader)", ...}
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator, Sized
from typing import Any

__all__ = ["Prefetch", "lower_thread_priority"]

_DONE = object()


def lower_thread_priority(niceness: int = 19) -> None:
    """Make the calling thread yield the CPU to the others (Linux: per-thread nice value; elsewhere nothing).

    Background I/O threads call this so that they use the cores when the network's threads leave them idle, instead of
    preempting one of its OpenMP threads (on a machine with as many threads as cores, every preemption stalls the
    other threads at the next barrier)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        pass


class Prefetch:
    """Iterate over ``source`` with up to ``depth`` items loaded ahead in a background thread.

    Args:
        source: a re-iterable (e.g. a ``DataLoader``); ``len(Prefetch(source))`` is ``len(source)``.
        depth: how many items may wait (each holds one batch in memory); ≥ 1.
    """

    def __init__(self, source: Iterable, depth: int = 1):
        if int(depth) < 1:
            raise ValueError(f"Prefetch: depth must be at least 1, got {depth}")
        self.source = source
        self.depth = int(depth)

    def __len__(self) -> int:
        if not isinstance(self.source, Sized):
            raise TypeError(f"Prefetch: the source {type(self.source).__name__} has no length")
        return len(self.source)

    def __iter__(self) -> Iterator[Any]:
        items: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()

        def put(value: Any) -> bool:
            while not stop.is_set():
                try:
                    items.put(value, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def load() -> None:
            lower_thread_priority()
            try:
                for item in self.source:
                    if not put((item, None)):
                        return
            except BaseException as error:  # handed to the consumer, raised there
                put((None, error))
                return
            put((_DONE, None))

        worker = threading.Thread(target=load, name="prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item, error = items.get()
                if error is not None:
                    raise error
                if item is _DONE:
                    return
                yield item
        finally:
            stop.set()  # the consumer stopped early (or failed): let the loader thread end
            worker.join()
