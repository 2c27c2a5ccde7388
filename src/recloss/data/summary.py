"""The summary `recloss data info` prints of a prepared data set (`--json`: its raw record)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recloss.classes import class_text
from recloss.data.display import count, human_bytes, sources_text, table
from recloss.data.prepare import PreparedDataset
from recloss.data.splits import SPLITS
from recloss.data.tempfolders import disk_usage

LINE_WIDTH = 100
MAX_CLASS_COLUMNS = 10


def _label_counts(dataset: PreparedDataset) -> dict[str, np.ndarray]:
    """Rows per class in each split, counted from the cached labels."""
    classes = dataset.schema.num_classes
    counts = {}
    for split in SPLITS:
        y = np.asarray(dataset.split(split).y)
        counts[split] = np.bincount(y, minlength=classes)[:classes].astype(np.int64)
    return counts


def _class_names(dataset: PreparedDataset) -> list[str]:
    """Each class's label value (`data.table.classes`), else its index."""
    table = dataset.meta.get("settings", {}).get("table") or {}
    named = table.get("classes")
    if not named:
        return [str(k) for k in range(dataset.schema.num_classes)]
    return [class_text(v) for v in named]


def _split_table(dataset: PreparedDataset) -> str:
    counts = _label_counts(dataset)
    counts["total"] = sum(counts.values())
    classes = dataset.schema.num_classes
    names = _class_names(dataset)
    if dataset.schema.task == "binary":
        positive = "" if names == ["0", "1"] else f" ({names[1]})"
        header = ("split", "rows", f"positive rate{positive}")

        def cells(c: np.ndarray) -> list[str]:
            total = int(c.sum())
            return [count(total), f"{c[1] / total:.4f}" if total else "-"]
    elif classes <= MAX_CLASS_COLUMNS:
        header = ("split", "rows", *(f"class {name}" for name in names))

        def cells(c: np.ndarray) -> list[str]:
            return [count(int(c.sum())), *(count(int(v)) for v in c)]
    else:
        header = ("split", "rows", "classes present", "rarest class", "commonest class")

        def cells(c: np.ndarray) -> list[str]:
            rare, common = int(c.argmin()), int(c.argmax())
            return [
                count(int(c.sum())),
                f"{int((c > 0).sum())} of {classes}",
                f"{names[rare]} ({count(int(c[rare]))})",
                f"{names[common]} ({count(int(c[common]))})",
            ]

    rows = [(name, *cells(c)) for name, c in counts.items()]
    return table(header, rows, right=tuple(range(1, len(header))))


def _vocab_table(fields: Sequence[str], sizes: Sequence[int]) -> list[str]:
    """`field size` pairs, as many to a line as fit."""
    if not fields:
        return ["  none"]
    name_w = max(len(f) for f in fields)
    size_w = max(len(f"{s:,}") for s in sizes)
    cell = name_w + 1 + size_w
    per_line = max(1, (LINE_WIDTH - 2) // (cell + 3))
    cells = [f"{f:<{name_w}} {s:>{size_w},}" for f, s in zip(fields, sizes, strict=True)]
    return ["  " + "   ".join(cells[i : i + per_line]) for i in range(0, len(cells), per_line)]


def _numeric(meta: dict, schema_num: Sequence[str]) -> str:
    encoding = meta.get("encoding") or {}
    bucketed = encoding.get("key_fields") or []
    if schema_num:
        return f"{', '.join(schema_num)} (continuous, normalised)"
    if bucketed:
        return f"{', '.join(bucketed)} (bucketed into categorical fields)"
    return "none"


def _fitted_on(meta: dict) -> str:
    """Which rows the vocabularies and numeric statistics were counted on."""
    if meta.get("vocab_from", "all") == "all":  # caches from before the setting counted all
        return "fitted on all rows, every split's"
    train = meta.get("rows", {}).get("train")
    rows = f" ({count(train)} rows)" if train is not None else ""
    return f"fitted on the training split{rows}; other values map to the out-of-vocabulary index"


def format_info(dataset: PreparedDataset) -> str:
    """Data set, task, rows and labels per split, fields and vocabularies, cache size and path."""
    meta, schema = dataset.meta, dataset.schema
    settings = meta.get("settings") or {}
    task = f"{schema.task} ({schema.num_classes} classes)"
    splits = "the source's own files" if meta.get("splits_from") == "files" else "random"
    if splits == "random" and "split" in settings:
        fractions = "/".join(f"{f:g}" for f in settings["split"])
        splits += f" {fractions} (seed {settings.get('split_seed')})"
    prepared = f"{meta.get('created', '?')[:16].replace('T', ' ')}, in {meta.get('seconds', '?')} s"
    head = [
        ("data set", str(meta.get("dataset"))),
        ("task", task),
        ("sources", sources_text(meta.get("sources") or [])),
        ("splits", splits),
        ("bad lines", f"{count(meta.get('bad_lines', 0))} skipped"),
        ("prepared", prepared),
        ("cache", f"{dataset.root} ({human_bytes(disk_usage(dataset.root))})"),
    ]
    cat = len(schema.cat_fields)
    fields = f"{schema.n_fields}: {cat} categorical, {len(schema.num_fields)} continuous"
    if (settings.get("min_count") or 1) > 1 and meta.get("sources"):
        fields += f"; values seen fewer than {settings['min_count']} times share one index"
    body = [
        ("fields", fields),
        ("numeric", _numeric(meta, schema.num_fields)),
    ]
    if meta.get("sources"):
        body.append(("vocabulary", _fitted_on(meta)))
    width = max(len(k) for k, _ in head + body)
    lines = [f"{k:<{width}}  {v}" for k, v in head]
    lines += ["", _split_table(dataset), ""]
    lines += [f"{k:<{width}}  {v}" for k, v in body]
    lines.append("vocabulary sizes (with the missing and rare indices):")
    lines += _vocab_table(schema.cat_fields, schema.cardinalities)
    return "\n".join(lines)
