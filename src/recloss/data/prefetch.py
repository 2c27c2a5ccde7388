"""Run an iterator in a background thread, a few items ahead of its consumer.

The thread is a daemon (an abandoned iterator must never keep the interpreter from exiting) but
must not still be running at exit: a daemon thread inside Arrow's C++ code when the interpreter
finalizes is killed by `pthread_exit`, which aborts with `terminate called without an active
exception`. So the thread is stopped and joined on every path: exhaustion, an error on either
side, `close()` (the object is a context manager), garbage collection, and, for an iterator
someone still holds, an `atexit` hook, which runs while Arrow is still alive.
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import threading
import weakref
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()
EXIT_JOIN_SECONDS = 10.0


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _produce(items: Iterable, slots: queue.Queue, stop: threading.Event) -> None:
    """The thread's work; holds no reference to its `Prefetch`, so that it can be collected."""

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    source = iter(items)
    try:
        for item in source:
            if not put(item):
                return
        put(_DONE)
    except BaseException as error:  # handed to the consumer, re-raised there
        put(_Raised(error))
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()  # the source's own cleanup (e.g. closing an Arrow reader) runs in this thread


class Prefetch(Generic[T]):
    """Iterator over `items` while a daemon thread produces up to `depth` of them ahead.

    The producer's exceptions are re-raised in the consumer, after the thread has ended. The
    thread starts at the first `next()`.
    """

    def __init__(self, items: Iterable[T], depth: int) -> None:
        self._items = items
        self._slots: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._closed = False

    def __iter__(self) -> Prefetch[T]:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        if self._worker is None:
            self._worker = threading.Thread(
                target=_produce,
                args=(self._items, self._slots, self._stop),
                name="recloss-prefetch",
                daemon=True,
            )
            _LIVE.add(self)
            self._worker.start()
        try:
            item = self._slots.get()
        except BaseException:  # KeyboardInterrupt while waiting
            self.close()
            raise
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Raised):
            self.close()
            raise item.error
        return item

    def close(self, timeout: float | None = None) -> None:
        """Stop the producer and wait for its thread to end (idempotent)."""
        self._closed = True
        self._stop.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)
        _LIVE.discard(self)

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # late in shutdown, `threading` may be gone
            self.close()


_LIVE: weakref.WeakSet[Prefetch] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Stop the threads of iterators still held at exit (e.g. by a stored traceback)."""
    for live in list(_LIVE):
        live.close(timeout=EXIT_JOIN_SECONDS)


def _inline(items: Iterable[T]) -> Iterator[T]:
    source = iter(items)
    try:
        yield from source
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """`items` in order, produced `depth` ahead in a background thread (none if `depth <= 0`).

    The result has `close()`; closing it early stops the producer and closes `items`. Useful
    where the producer releases the GIL (Arrow parsing, NumPy copies).
    """
    if depth <= 0:
        return _inline(items)
    return Prefetch(items, depth)
