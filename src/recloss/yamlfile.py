"""Reading a YAML file of settings: its top-level mapping, a key given twice refused, and a
file the parser refuses named with its line and what the parser found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from recloss.errors import ConfigError

MERGE_TAG = "tag:yaml.org,2002:merge"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last one,
    so the first one's settings would be dropped without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *anchor`, which explicit keys may override
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml_mapping(path: str | Path, kind: str = "config") -> dict[str, Any]:
    """The top-level mapping of a YAML file; ConfigError naming the file (and line) otherwise."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{p}: {kind} file not found")
    try:
        raw = yaml.load(p.read_text(), Loader=_UniqueKeyLoader) or {}  # a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or ""
        what = problem if problem.startswith("duplicate key") else "not valid YAML"
        what += f" ({problem})" if problem and what != problem else ""
        raise ConfigError(f"{p}{where}: {what}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the top level must be a mapping")
    return raw
