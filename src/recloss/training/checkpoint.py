"""Atomic, weights-only-loadable checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from recloss.atomic import write_atomic
from recloss.errors import CompatibilityError


def save_atomic(obj: Any, path: Path) -> None:
    """`torch.save` whole or not at all (`write_atomic`)."""
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


def load(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `save_atomic` without unpickling arbitrary objects."""
    if not path.is_file():
        raise CompatibilityError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # corrupt or foreign file
        raise CompatibilityError(f"{path}: not a readable recloss checkpoint ({err})") from None


def restore(target: Any, state: dict[str, Any], path: Path) -> None:
    """`target.load_state_dict(state)`, the state read from `path`; CompatibilityError naming
    the file where it does not fit (a run's `config.yaml` changed after it was written)."""
    try:
        target.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as err:
        detail = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), "")
        raise CompatibilityError(
            f"{path}: does not fit this run's model and settings ({detail or err}); was its "
            "config.yaml changed after it was written? Start a new run instead"
        ) from None
