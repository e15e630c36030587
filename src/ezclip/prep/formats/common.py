"""Shared pieces of the annotation converters: the converted result, atomic writing, errors.

Every converter turns one official release into ``{split file name: entries}`` plus class names
(index = class id), and ``Conversion.write`` puts them in the project's list format
(``ezclip.data.lists``): ``<relative video path> <int label>`` lines and an ``id,name`` CSV.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ezclip.data.lists import ListFormatError, VideoEntry


class AnnotationError(ListFormatError):
    """An official annotation file that does not follow its format; the message names file:line."""


@dataclass
class Conversion:
    """A converted release: ``lists`` maps an output file name (``train1.txt``) to its entries."""

    names: list[str]
    lists: dict[str, list[VideoEntry]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of videos per output list, in insertion order."""
        return {name: len(entries) for name, entries in self.lists.items()}

    def write(self, out: str | Path) -> dict[str, int]:
        """Write every list and ``labels.csv`` into ``out`` (created); returns ``counts()``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_labels(out / "labels.csv", self.names)
        for file_name, entries in self.lists.items():
            write_list(out / file_name, entries)
        return self.counts()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same folder, so readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_list(path: str | Path, entries: list[VideoEntry]) -> None:
    """Write a list file: one ``<path> <label>`` line per entry, LF line ends."""
    atomic_write_text(path, "".join(f"{e.path} {e.label}\n" for e in entries))


def write_labels(path: str | Path, names: list[str]) -> None:
    """Write a label CSV ``id,name`` with ids 0..C-1 in list order (names with commas get quoted)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "name"])
    writer.writerows(enumerate(names))
    atomic_write_text(path, buffer.getvalue())


def read_lines(path: str | Path) -> list[tuple[int, str]]:
    """(1-based line number, stripped line) for each non-blank line; tolerates CRLF, BOM, trailing spaces."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    with open(path, encoding="utf-8-sig", newline=None) as f:
        return [(number, line.strip()) for number, line in enumerate(f, start=1) if line.strip()]


VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi")


def find_videos(root: str | Path) -> dict[str, list[str]]:
    """File name -> the POSIX paths relative to ``root`` of every video file of that name under it,
    in sorted walk order (a name in several folders has several paths)."""
    root = require_dir(root, "video folder")
    found: dict[str, list[str]] = {}
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for name in sorted(files):
            if name.lower().endswith(VIDEO_SUFFIXES):
                found.setdefault(name, []).append(Path(folder, name).relative_to(root).as_posix())
    return found


def require_dir(path: str | Path, what: str = "annotation folder") -> Path:
    """The folder as a Path; FileNotFoundError with the path when it is not a folder."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: {what} not found")
    return path
