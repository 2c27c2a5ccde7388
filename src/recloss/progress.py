"""Progress bars on stderr, drawn only where someone watches: asked for, and on a terminal."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm


class ProgressBar(tqdm):
    """tqdm shown when `show` and stderr is a terminal (tqdm's `disable=None`); logs, pipes and
    files get no bar. No monitor thread: it would outlive the bar."""

    monitor_interval = 0

    def __init__(self, *args: Any, show: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, disable=None if show else True, **kwargs)
