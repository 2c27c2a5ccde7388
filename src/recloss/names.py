"""The known name closest to a mistyped one, for the messages that refuse it."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to a mistyped name; None where none is close."""
    found = get_close_matches(name, list(choices), n=1)
    return found[0] if found else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """` (did you mean X?)` with the choice closest to a mistyped name; empty where none is."""
    close = closest(name, choices)
    return f" (did you mean {close}?)" if close else ""


def also_closest(name: str, choices: Iterable[str]) -> str:
    """`; did you mean X?`, to follow a message that lists the choices; empty where none is."""
    close = closest(name, choices)
    return f"; did you mean {close}?" if close else ""
