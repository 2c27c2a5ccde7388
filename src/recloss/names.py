"""The known name closest to a mistyped one, for the messages that refuse it."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """` (did you mean X?)` with the choice closest to a mistyped name; empty where none is."""
    close = get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
