"""UCF101 official release (``ucfTrainTestlist/``) -> project lists.

- ``classInd.txt``: ``1 ApplyEyeMakeup`` (1-based ids; our labels are id - 1).
- ``trainlist0{1,2,3}.txt``: ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``.
- ``testlist0{1,2,3}.txt``: ``ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi`` (no label: the folder names the class).
Lines end in CRLF. Output: ``train{N}.txt``, ``test{N}.txt`` for N = 1..3 and ``labels.csv``, paths
relative to the ``UCF-101/`` video root (``<Class>/<video>.avi``).
"""

from __future__ import annotations

from pathlib import Path

from ezclip.data.lists import VideoEntry
from ezclip.prep.formats.common import AnnotationError, Conversion, read_lines, require_dir

SPLITS = (1, 2, 3)


def read_class_index(path: str | Path) -> list[str]:
    """Read ``classInd.txt``; returns class names, index = 0-based class id.

    Raises:
        AnnotationError: a line that is not ``<int id> <name>``, or ids that are not 1..C without gaps.
    """
    by_id: dict[int, str] = {}
    for number, line in read_lines(path):
        fields = line.split()
        if len(fields) != 2 or not fields[0].isdigit():
            raise AnnotationError(f"{path}:{number}: expected '<1-based id> <ClassName>', got {line!r}")
        class_id = int(fields[0])
        if class_id in by_id:
            raise AnnotationError(f"{path}:{number}: duplicate class id {class_id}")
        by_id[class_id] = fields[1]
    if sorted(by_id) != list(range(1, len(by_id) + 1)):
        raise AnnotationError(f"{path}: class ids must be 1..{len(by_id)} without gaps, got {sorted(by_id)[:10]}...")
    return [by_id[i] for i in range(1, len(by_id) + 1)]


def read_split_list(path: str | Path, names: list[str], labelled: bool) -> list[VideoEntry]:
    """Read a ``trainlist``/``testlist`` file into entries with 0-based labels.

    A train line's label must agree with its folder; a test line has no label and takes it from the folder.
    """
    index = {name: i for i, name in enumerate(names)}
    entries = []
    for number, line in read_lines(path):
        fields = line.split()
        video = fields[0]
        folder = video.replace("\\", "/").split("/")[0]
        if "/" not in video or folder not in index:
            raise AnnotationError(
                f"{path}:{number}: expected '<ClassName>/<video>.avi' with a known class, got {line!r}"
            )
        label = index[folder]
        if labelled:
            if len(fields) != 2 or not fields[1].isdigit():
                raise AnnotationError(f"{path}:{number}: expected '<ClassName>/<video>.avi <1-based id>', got {line!r}")
            if int(fields[1]) - 1 != label:
                raise AnnotationError(
                    f"{path}:{number}: label {fields[1]} disagrees with the folder {folder} "
                    f"(id {label + 1} in classInd.txt)"
                )
        elif len(fields) != 1:
            raise AnnotationError(f"{path}:{number}: expected '<ClassName>/<video>.avi' (no label), got {line!r}")
        entries.append(VideoEntry(video, label))
    return entries


def convert(annotations: str | Path) -> Conversion:
    """Convert the folder holding ``classInd.txt`` and the six split lists."""
    root = require_dir(annotations)
    result = Conversion(read_class_index(root / "classInd.txt"))
    for split in SPLITS:
        result.lists[f"train{split}.txt"] = read_split_list(root / f"trainlist0{split}.txt", result.names, True)
        result.lists[f"test{split}.txt"] = read_split_list(root / f"testlist0{split}.txt", result.names, False)
    return result
