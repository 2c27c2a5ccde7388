"""What a configuration problem is told: pydantic's message, or for an unknown key the known key
of its section closest to it (`train.epoch: unknown key (did you mean epochs?)`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from recloss.names import did_you_mean


def problem_text(error: ErrorDetails, root: type[BaseModel]) -> str:
    """The message of one validation problem of a `root` model."""
    if error["type"] != "extra_forbidden":
        return error["msg"].removeprefix("Value error, ")  # pydantic's prefix to our words
    *section, key = (str(part) for part in error["loc"])
    return "unknown key" + did_you_mean(key, section_keys(root, section))


def section_keys(root: type[BaseModel], path: Sequence[str]) -> list[str]:
    """The keys of the section at `path` below `root` (a mapping's entries count as sections:
    a grid's `methods.ce`); none where `path` is no section."""
    kinds: list[Any] = [root]
    for name in path:
        inner: list[Any] = []
        for kind in kinds:
            if _section(kind) and name in kind.model_fields:
                inner += _alternatives(kind.model_fields[name].annotation)
            elif get_origin(kind) in (dict, Mapping):  # `name` is one of its keys
                inner += _alternatives(get_args(kind)[1])
        kinds = inner
    sections = [kind for kind in kinds if _section(kind)]
    return list(sections[0].model_fields) if sections else []


def _alternatives(annotation: Any) -> list[Any]:
    """The types an annotation admits (`TableSchema | None`: TableSchema and None)."""
    if get_origin(annotation) in (Union, UnionType):
        return [kind for arg in get_args(annotation) for kind in _alternatives(arg)]
    if get_origin(annotation) is Annotated:
        return _alternatives(get_args(annotation)[0])
    return [annotation]


def _section(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)
