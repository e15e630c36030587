"""Kinetics-400/600 official CSVs -> project lists.

CSV columns ``label,youtube_id,time_start,time_end,split[,is_cc]`` (multi-word labels are quoted; the
K600 test CSV has no label column and is skipped). Class index = sorted label names. Two clip namings:

- ``cvdf``: ``{split}/{youtube_id}_{start:06d}_{end:06d}.mp4`` (the CVDF release; ViFi-CLIP's lists use it);
- ``folders``: ``{split}/{label}/{youtube_id}.mp4`` (the other common release).

``split`` is ``train``, ``val`` or ``test`` (``validate`` is read as ``val``). Output: ``train.txt``,
``val.txt`` (and ``test.txt`` when a labelled test CSV is present) and ``labels.csv``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ezclip.data.lists import VideoEntry
from ezclip.prep.formats.common import AnnotationError, Conversion, require_dir

NAMINGS = ("cvdf", "folders")
REQUIRED = ("youtube_id", "time_start", "time_end", "split")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "validate": "val",
    "validation": "val",
    "test": "test",
}
OUTPUT_ORDER = ("train", "val", "test")


def clip_path(naming: str, split: str, label: str, youtube_id: str, start: int, end: int) -> str:
    """The clip's path relative to the video root under ``naming`` (see the module docstring)."""
    if naming == "cvdf":
        return f"{split}/{youtube_id}_{start:06d}_{end:06d}.mp4"
    if naming == "folders":
        return f"{split}/{label}/{youtube_id}.mp4"
    raise ValueError(f"naming must be one of {NAMINGS}, got {naming!r}")


def _seconds(path: Path, number: int, text: str) -> int:
    """A CSV time field as whole seconds (the CSVs write ints, some re-exports floats like '10.0')."""
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(f"{path}:{number}: time {text!r} is not a number") from None
    if value != int(value) or value < 0:
        raise AnnotationError(f"{path}:{number}: time {text!r} is not a whole non-negative number of seconds")
    return int(value)


def read_csv(path: Path) -> list[tuple[int, dict[str, str]]]:
    """Rows of one annotation CSV as (line number, {column: value}); [] for an unlabelled CSV (K600 test)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise AnnotationError(f"{path}:1: header lacks {missing} (got {header})")
        if "label" not in header:
            return []
        rows = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise AnnotationError(f"{path}:{reader.line_num}: expected {len(header)} fields, got {len(row)}: {row}")
            rows.append((reader.line_num, dict(zip(header, (cell.strip() for cell in row), strict=True))))
    return rows


def convert(annotations: str | Path, naming: str = "cvdf") -> Conversion:
    """Convert every ``*.csv`` in ``annotations`` (train/validate/test CSVs of one Kinetics version)."""
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {NAMINGS}, got {naming!r}")
    root = require_dir(annotations)
    csv_files = sorted(root.glob("*.csv"))
    if not csv_files:
        raise AnnotationError(f"{root}: no *.csv annotation files")
    rows = [(path, number, row) for path in csv_files for number, row in read_csv(path)]
    names = sorted({row["label"] for _, _, row in rows})
    if "" in names:
        path, number, _ = next(r for r in rows if not r[2]["label"])
        raise AnnotationError(f"{path}:{number}: empty label")
    index = {name: i for i, name in enumerate(names)}
    by_split: dict[str, list[VideoEntry]] = {}
    for path, number, row in rows:
        split = SPLIT_ALIASES.get(row["split"].lower())
        if split is None:
            raise AnnotationError(f"{path}:{number}: unknown split {row['split']!r} (expected train, val or test)")
        start, end = _seconds(path, number, row["time_start"]), _seconds(path, number, row["time_end"])
        video = clip_path(naming, split, row["label"], row["youtube_id"], start, end)
        by_split.setdefault(split, []).append(VideoEntry(video, index[row["label"]]))
    result = Conversion(names)
    for split in OUTPUT_ORDER:
        if split in by_split or split != "test":
            result.lists[f"{split}.txt"] = by_split.get(split, [])
    return result
