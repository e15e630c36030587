"""The EZ-CLIP authors' own list format -> a project list (their zero-shot K600 set of 232 classes).

Their lists (``dataset_splits/K-600/Zero_shot/test_600_exclusive.txt`` in the EZ-CLIP repository)
have lines ``<absolute path on their cluster> <number of frames> <label>``; the label indexes
``lists/kinetics_600_labels_exclusive.csv``. The folder is theirs: what names a clip is its file
name (``<youtube_id>_<start>_<end>.mp4``, the CVDF naming). Output: ``test_exclusive.txt`` with
``<file name> <label>`` lines, or, given the folder of the user's K600 videos, each file's path
under it (the CVDF release keeps clips under ``train/``, ``val/`` and ``test/``), plus
``labels.csv`` copied from the label file.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath, PureWindowsPath

from ezclip.data.lists import VideoEntry, read_labels
from ezclip.prep.formats.common import AnnotationError, Conversion, find_videos, read_lines

log = logging.getLogger(__name__)

LIST_NAME = "test_600_exclusive.txt"
OUTPUT_NAME = "test_exclusive.txt"


def file_name(path: str) -> str:
    """The last component of a POSIX or Windows path."""
    return PureWindowsPath(path).name if "\\" in path else PurePosixPath(path).name


def convert(list_file: str | Path, labels: str | Path, video_root: str | Path | None = None) -> tuple[Conversion, int]:
    """Read the authors' list (a file, or the folder holding ``test_600_exclusive.txt``).

    Returns the conversion and how many of its videos were not found under ``video_root`` (those keep
    their bare file name, so that ``ezclip data summary`` reports them missing); 0 without a root.
    """
    list_file = Path(list_file)
    if list_file.is_dir():
        list_file = list_file / LIST_NAME
    names = read_labels(labels)
    entries = []
    for number, line in read_lines(list_file):
        fields = line.rsplit(maxsplit=2)
        if len(fields) != 3 or not fields[1].isdigit():
            raise AnnotationError(f"{list_file}:{number}: expected '<video path> <frames> <label>', got {line!r}")
        try:
            label = int(fields[2])
        except ValueError:
            raise AnnotationError(f"{list_file}:{number}: label {fields[2]!r} is not an integer") from None
        if not 0 <= label < len(names):
            raise AnnotationError(f"{list_file}:{number}: label {label} out of range [0, {len(names)}) of {labels}")
        entries.append(VideoEntry(file_name(fields[0]), label))
    unresolved = 0
    if video_root is not None:
        found = find_videos(video_root)
        repeated = sum(len(paths) > 1 for paths in found.values())
        if repeated:
            log.warning("%s: %d file names occur more than once; the first of each is used", video_root, repeated)
        unresolved = sum(e.path not in found for e in entries)
        entries = [VideoEntry(found[e.path][0] if e.path in found else e.path, e.label) for e in entries]
    return Conversion(names, {OUTPUT_NAME: entries}), unresolved
