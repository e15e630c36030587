"""Something-Something-v2 official JSON -> project lists.

- ``something-something-v2-labels.json``: ``{"Approaching something with your camera": "0", ...}``
  (template with ``[]`` removed -> index as a string; 174 classes).
- ``something-something-v2-train.json`` / ``-validation.json``: ``[{"id": "78687", "label": "...",
  "template": "Holding [something] next to [something]", "placeholders": [...]}, ...]``; the class is
  the template with ``[`` and ``]`` removed.
Videos are ``<id>.webm``. Output: ``train.txt``, ``val.txt`` and ``labels.csv`` (names in index order).
"""

from __future__ import annotations

import json
from pathlib import Path

from ezclip.data.lists import VideoEntry
from ezclip.prep.formats.common import AnnotationError, Conversion, require_dir

LABELS_FILE = "something-something-v2-labels.json"
SPLIT_FILES = {"train.txt": "something-something-v2-train.json", "val.txt": "something-something-v2-validation.json"}
NUM_CLASSES = 174


def template_class(template: str) -> str:
    """The class name of a template: ``Putting [something] on [something]`` -> ``Putting something on something``."""
    return template.replace("[", "").replace("]", "")


def _load_json(path: Path):
    """Parse a JSON file; a syntax error becomes an AnnotationError naming file:line."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None


def read_labels_json(path: Path) -> list[str]:
    """Class names ordered by their index in the labels JSON."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected an object mapping class name -> index string")
    by_index: dict[int, str] = {}
    for name, index in data.items():
        try:
            i = int(index)
        except (TypeError, ValueError):
            raise AnnotationError(f"{path}: index {index!r} of {name!r} is not an integer") from None
        if i in by_index:
            raise AnnotationError(f"{path}: index {i} used by both {by_index[i]!r} and {name!r}")
        by_index[i] = template_class(name)
    if sorted(by_index) != list(range(len(by_index))):
        raise AnnotationError(f"{path}: indices must be 0..{len(by_index) - 1} without gaps")
    return [by_index[i] for i in range(len(by_index))]


def read_split_json(path: Path, index: dict[str, int]) -> list[VideoEntry]:
    """Entries ``<id>.webm <label>`` of a train/validation JSON, in file order."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a list of {{id, label, template, placeholders}} objects")
    entries = []
    for position, item in enumerate(data):
        if not isinstance(item, dict) or "id" not in item or "template" not in item:
            raise AnnotationError(f"{path}: item {position} lacks 'id' or 'template': {str(item)[:200]}")
        name = template_class(item["template"])
        if name not in index:
            raise AnnotationError(f"{path}: item {position} (id {item['id']}): template {name!r} not in {LABELS_FILE}")
        entries.append(VideoEntry(f"{item['id']}.webm", index[name]))
    return entries


def convert(annotations: str | Path) -> Conversion:
    """Convert the folder holding the labels, train and validation JSON files."""
    root = require_dir(annotations)
    result = Conversion(read_labels_json(root / LABELS_FILE))
    index = {name: i for i, name in enumerate(result.names)}
    for out_name, json_name in SPLIT_FILES.items():
        result.lists[out_name] = read_split_json(root / json_name, index)
    return result
