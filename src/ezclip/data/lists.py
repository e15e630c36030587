"""Video lists and label files in the paper-protocol format (ViFi-CLIP release, used by EZ-CLIP).

- list file: one video per line, ``<relative video path> <int label>``; CRLF line ends, trailing
  spaces and blank lines are tolerated; the path may itself contain spaces (the label is the last
  field).
- label CSV: header ``id,name``; ids are 0..C-1, each exactly once (any order).
- exclusion list: one relative video path per line (known-corrupt or missing videos).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class ListFormatError(ValueError):
    """A list, label or exclusion file that does not follow its format; the message names file:line."""


@dataclass(frozen=True)
class VideoEntry:
    """One line of a list file: ``path`` relative to the dataset root, ``label`` a class index."""

    path: str
    label: int


def _lines(path: str | Path) -> Iterable[tuple[int, str]]:
    """Yield (1-based line number, stripped line) for non-blank lines; CRLF and trailing spaces go."""
    with open(path, encoding="utf-8-sig", newline=None) as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if line:
                yield number, line


def normalize_name(name: str) -> str:
    """Key for matching class names: case-folded, underscores as spaces, whitespace collapsed."""
    return re.sub(r"\s+", " ", name.replace("_", " ")).strip().casefold()


def read_list(path: str | Path, num_classes: int | None = None) -> list[VideoEntry]:
    """Read a list file into entries, in file order.

    Args:
        path: the list file.
        num_classes: when given, every label must lie in [0, num_classes).
    Raises:
        ListFormatError: naming ``file:line`` for a line without an integer label or with a label out of range.
    """
    entries = []
    for number, line in _lines(path):
        fields = line.rsplit(maxsplit=1)
        if len(fields) != 2:
            raise ListFormatError(f"{path}:{number}: expected '<video path> <int label>', got {line!r}")
        video, label_text = fields
        try:
            label = int(label_text)
        except ValueError:
            raise ListFormatError(f"{path}:{number}: label {label_text!r} is not an integer (line {line!r})") from None
        if label < 0 or (num_classes is not None and label >= num_classes):
            bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            raise ListFormatError(f"{path}:{number}: label {label} out of range {bound} (line {line!r})")
        entries.append(VideoEntry(video, label))
    return entries


def read_labels(path: str | Path) -> list[str]:
    """Read a label CSV with header ``id,name``; returns the class names ordered by id (index = class id).

    Raises:
        ListFormatError: wrong header, a malformed row (file:line), a duplicate id, ids that are not 0..C-1,
            or two classes with the same name (compared as class texts match them: case, `_` and spaces aside).
    """
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    # Blank rows (trailing newlines) are not classes.
    numbered = [(number, [cell.strip() for cell in row]) for number, row in enumerate(rows, start=1) if any(row)]
    if not numbered or [c.lower() for c in numbered[0][1]] != ["id", "name"]:
        got = numbered[0][1] if numbered else "an empty file"
        raise ListFormatError(f"{path}:1: expected header 'id,name', got {got}")
    names: dict[int, str] = {}
    for number, row in numbered[1:]:
        if len(row) != 2 or not row[1]:
            raise ListFormatError(f"{path}:{number}: expected '<int id>,<name>', got {row}")
        try:
            class_id = int(row[0])
        except ValueError:
            raise ListFormatError(f"{path}:{number}: id {row[0]!r} is not an integer") from None
        if class_id in names:
            raise ListFormatError(f"{path}:{number}: duplicate id {class_id}")
        names[class_id] = row[1]
    if sorted(names) != list(range(len(names))):
        missing = sorted(set(range(len(names))) - set(names))
        raise ListFormatError(
            f"{path}: class ids must be 0..{len(names) - 1} without gaps; "
            f"missing {missing[:10]}, got ids up to {max(names, default=-1)}"
        )
    if not names:
        raise ListFormatError(f"{path}: no classes")
    ordered = [names[i] for i in range(len(names))]
    # Two classes with one name get one text: one of them could never be predicted.
    seen: dict[str, int] = {}
    for class_id, name in enumerate(ordered):
        key = normalize_name(name)
        if key in seen:
            raise ListFormatError(
                f"{path}: classes {seen[key]} ({ordered[seen[key]]!r}) and {class_id} ({name!r}) have the same name"
            )
        seen[key] = class_id
    return ordered


def read_exclusions(path: str | Path) -> set[str]:
    """Read an exclusion list: one relative video path per line (blank lines ignored)."""
    return {line for _, line in _lines(path)}


def apply_exclusions(entries: list[VideoEntry], excluded: set[str]) -> tuple[list[VideoEntry], int]:
    """Drop entries whose path is in ``excluded``; returns (kept entries, number removed).

    Paths are compared after normalising separators and a leading ``./`` so that lists written on
    another system still match.
    """
    normalized = {_normalize(p) for p in excluded}
    kept = [e for e in entries if _normalize(e.path) not in normalized]
    return kept, len(entries) - len(kept)


def _normalize(path: str) -> str:
    path = path.replace("\\", "/")
    return path[2:] if path.startswith("./") else path


def split_validation(
    entries: list[VideoEntry], share: float | int, seed: int
) -> tuple[list[VideoEntry], list[VideoEntry]]:
    """Carve a validation split out of a training list: stratified by class, seeded, disjoint.

    `share` < 1 is the fraction of each class's videos held out (rounded, at least one); `share` >= 1
    the number per class. A class always keeps one training video. Returns (train, val), each in
    list order.
    """
    if share <= 0:
        raise ValueError(f"val_from_train must be a fraction in (0, 1) or a count >= 1 per class, got {share}")
    by_class: dict[int, list[int]] = {}
    for position, entry in enumerate(entries):
        by_class.setdefault(entry.label, []).append(position)
    held_out: set[int] = set()
    for label, positions in by_class.items():
        wanted = max(1, round(share * len(positions))) if share < 1 else int(share)
        count = min(wanted, len(positions) - 1)
        order = np.random.default_rng([seed, label]).permutation(len(positions))
        held_out.update(positions[i] for i in order[:count])
    train = [e for i, e in enumerate(entries) if i not in held_out]
    val = [e for i, e in enumerate(entries) if i in held_out]
    return train, val
