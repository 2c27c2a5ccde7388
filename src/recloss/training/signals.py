"""A stop asked for by a signal, honoured at a step's end once the run has saved a checkpoint.

SIGTERM (a scheduler's preemption, `kill`) and a first Ctrl-C (SIGINT) only set `requested`; the
checkpoint callback saves the whole training state once the step in progress is done and stops the
run there, so a resume loses nothing. A second Ctrl-C stops at once, as Python's default does. A
repeated SIGTERM is not counted: whoever sends it follows it with SIGKILL after a grace period, and
torchrun sends one to ranks that already have the terminal's Ctrl-C.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(KeyboardInterrupt):
    """Stops a run at a step's end, its checkpoint saved, as the signal `signum` asked."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """While entered (in the main thread: elsewhere signals cannot be caught), SIGINT and
    SIGTERM set `requested` to the signal's number; leaving restores the handlers before."""

    def __init__(self, announce: bool = True) -> None:
        self.announce = announce  # say so on stderr (rank 0 only)
        self.requested: int | None = None
        self._before: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._before = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._before.items():
            signal.signal(sig, handler)
        self._before = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.requested = signum
        if self.announce:
            again = " (Ctrl-C again stops at once)" if signum == signal.SIGINT else ""
            name = signal.Signals(signum).name
            print(f"recloss: {name}: saving a checkpoint, then stopping{again}", file=sys.stderr)
