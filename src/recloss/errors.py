"""Exceptions a user can cause. The command line prints them on one line and exits non-zero."""

import signal
from pathlib import Path


class RecLossError(Exception):
    """Base class of every error caused by user input (data, configuration, files)."""


class DataError(RecLossError):
    """A data file is missing, empty or malformed."""


class ConfigError(RecLossError):
    """A configuration value or name is invalid; `key` is its dotted config key, when known."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class CompatibilityError(RecLossError):
    """Saved state (checkpoint, controller, cache) does not fit the current run."""


class TrainingDiverged(RecLossError):
    """The model's outputs became NaN or infinite while it trained (a learning rate too high)."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM (`signum`); `run_dir` is the folder that resumes it."""

    def __init__(self, run_dir: Path, signum: int = signal.SIGINT) -> None:
        super().__init__(str(run_dir))
        self.run_dir, self.signum = run_dir, signum
