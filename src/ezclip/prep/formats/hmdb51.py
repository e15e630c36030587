"""HMDB51 official release (``testTrainMulti_7030_splits/``) -> project lists.

One file per class and split, ``<class>_test_split{1,2,3}.txt``, lines ``<video>.avi <mark> `` (with a
trailing space): 1 = train, 2 = test, 0 = not used in that split. Class ids are the sorted class names
(as in the ViFi-CLIP label file). Output: ``train{N}.txt``, ``test{N}.txt`` for N = 1..3 and
``labels.csv``, paths ``<class>/<video>.avi`` relative to the video root.
"""

from __future__ import annotations

import re
from pathlib import Path

from ezclip.data.lists import VideoEntry
from ezclip.prep.formats.common import AnnotationError, Conversion, read_lines, require_dir

SPLITS = (1, 2, 3)
_FILE = re.compile(r"^(?P<name>.+)_test_split(?P<split>[123])\.txt$")
MARKS = {"1": "train", "2": "test"}  # "0": unused in this split


def find_split_files(root: Path) -> dict[str, dict[int, Path]]:
    """Map class name -> {split: file}; every class must have all three splits."""
    files: dict[str, dict[int, Path]] = {}
    for path in sorted(root.iterdir()):
        match = _FILE.match(path.name)
        if match:
            files.setdefault(match["name"], {})[int(match["split"])] = path
    if not files:
        raise AnnotationError(f"{root}: no '<class>_test_split<1|2|3>.txt' files")
    for name, splits in files.items():
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise AnnotationError(f"{root}: class {name!r} has no split file(s) {missing}")
    return files


def read_split_file(path: Path, class_name: str, label: int) -> dict[str, list[VideoEntry]]:
    """Read one class's split file into {'train': [...], 'test': [...]} (mark-0 videos dropped)."""
    out: dict[str, list[VideoEntry]] = {"train": [], "test": []}
    for number, line in read_lines(path):
        fields = line.split()
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise AnnotationError(f"{path}:{number}: expected '<video>.avi <0|1|2>', got {line!r}")
        if fields[1] in MARKS:
            out[MARKS[fields[1]]].append(VideoEntry(f"{class_name}/{fields[0]}", label))
    return out


def convert(annotations: str | Path) -> Conversion:
    """Convert the folder of the 153 ``<class>_test_split<N>.txt`` files."""
    root = require_dir(annotations)
    files = find_split_files(root)
    result = Conversion(sorted(files))
    for split in SPLITS:
        train, test = [], []
        for label, name in enumerate(result.names):
            marked = read_split_file(files[name][split], name, label)
            train += marked["train"]
            test += marked["test"]
        result.lists[f"train{split}.txt"] = train
        result.lists[f"test{split}.txt"] = test
    return result
