"""Labels named by value (`data.table.classes`): how a label compares with a class, and how a
class is shown."""

from __future__ import annotations

from typing import Any

import yaml

ClassValue = bool | int | float | str


def class_key(value: ClassValue) -> tuple[str, Any]:
    """How a label value compares with `data.table.classes`: as YAML reads it, so that `1`,
    `1.0` and ` 1` are one number and `yes` and `True` one boolean, but never `1` and `true`."""
    if isinstance(value, str):
        text = value.strip()
        tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, text, (True, False))
        value = yaml.constructor.SafeConstructor().construct_object(yaml.ScalarNode(tag, text))
    if value is None:
        return ("missing", None)
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return ("text", str(value))


def class_text(value: ClassValue) -> str:
    """A class's value as written: text as it is, others as YAML writes them (`true`, `1.5`)."""
    return value if isinstance(value, str) else yaml.safe_dump(value).removesuffix("\n...\n")
