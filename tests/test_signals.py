"""Stopping on SIGTERM or Ctrl-C: the first asks for a stop at the step's end, a second Ctrl-C
stops at once, a repeated SIGTERM is not counted, and the handlers before come back."""

from __future__ import annotations

import signal
import threading

import pytest

from recloss.training.signals import StopSignals

CAUGHT = (signal.SIGINT, signal.SIGTERM)


def test_a_first_signal_is_only_a_request():
    with StopSignals(announce=False) as stop:
        assert stop.requested is None
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested == signal.SIGTERM


def test_a_second_ctrl_c_stops_at_once_and_a_repeated_sigterm_does_not():
    with StopSignals(announce=False) as stop:
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)  # torchrun's, after the terminal's Ctrl-C
        assert stop.requested == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)


def test_leaving_restores_the_handlers_before():
    before = [signal.getsignal(s) for s in CAUGHT]
    with pytest.raises(RuntimeError), StopSignals(announce=False):
        assert [signal.getsignal(s) for s in CAUGHT] != before
        raise RuntimeError
    assert [signal.getsignal(s) for s in CAUGHT] == before


def test_off_the_main_thread_nothing_is_caught():
    before, seen = [signal.getsignal(s) for s in CAUGHT], []

    def enter() -> None:
        with StopSignals(announce=False):
            seen.append([signal.getsignal(s) for s in CAUGHT])

    worker = threading.Thread(target=enter)
    worker.start()
    worker.join()
    assert seen == [before]


def test_the_first_signal_says_what_happens_next(capsys):
    with StopSignals() as stop:
        signal.raise_signal(signal.SIGINT)
    assert stop.requested == signal.SIGINT
    assert capsys.readouterr().err == (
        "recloss: SIGINT: saving a checkpoint, then stopping (Ctrl-C again stops at once)\n"
    )
