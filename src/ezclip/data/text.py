"""Class texts for the text encoder: bare names, prompt templates, or per-class descriptions.

``class_texts`` returns one list of texts per class. When a class has several texts (several
templates), the caller encodes each and AVERAGES the normalised text embeddings into one class
embedding (the standard prompt ensemble of CLIP), then normalises again.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from ezclip.data.lists import normalize_name

log = logging.getLogger(__name__)

SOURCES = ("names", "templates", "descriptions")
ON_MISSING = ("error", "templates")
DEFAULT_TEMPLATES = ("a video of a person {}.",)

# Headers understood in a descriptions CSV: (key column, text column).
_OURS = ("name", "description")  # id,name,description
_AUTHORS = ("class name", "gpt3 discription")  # SNo,Class Name,GPT3 discription (sic)


class DescriptionsError(ValueError):
    """A descriptions CSV that cannot be read, or classes without a description when they are required."""


def read_descriptions(path: str | Path) -> dict[str, str]:
    """Read class descriptions keyed by ``normalize_name(class name)``.

    Accepts our header ``id,name,description`` and the authors' ``SNo,Class Name,GPT3 discription``.
    Texts are stripped (the authors' often begin with blank lines). Rows with an empty text are ignored.
    """
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().casefold() for h in next(reader, [])]
        for key_col, text_col in (_OURS, _AUTHORS):
            if key_col in header and text_col in header:
                key_i, text_i = header.index(key_col), header.index(text_col)
                break
        else:
            raise DescriptionsError(
                f"{path}: header must be 'id,name,description' or 'SNo,Class Name,GPT3 discription', got {header}"
            )
        descriptions: dict[str, str] = {}
        for row in reader:
            if len(row) <= max(key_i, text_i):
                continue
            key, text = normalize_name(row[key_i]), row[text_i].strip()
            if key and text:
                descriptions[key] = text
    return descriptions


def template_texts(name: str, templates: list[str] | tuple[str, ...]) -> list[str]:
    """Fill each template's ``{}`` with ``name``; a template without ``{}`` gets the name appended."""
    return [t.replace("{}", name) if "{}" in t else f"{t} {name}" for t in templates]


def class_texts(
    names: list[str],
    source: str = "names",
    templates: list[str] | tuple[str, ...] | None = None,
    descriptions_csv: str | Path | None = None,
    on_missing: str = "error",
) -> list[list[str]]:
    """Texts for each class, to be encoded and averaged per class.

    Args:
        names: class names, index = class id.
        source: ``names`` (the bare name), ``templates`` (one text per template) or ``descriptions``
            (one text per class from ``descriptions_csv``).
        templates: templates with ``{}`` for the name; defaults to ``DEFAULT_TEMPLATES``.
        descriptions_csv: path of the descriptions CSV (required for ``descriptions``).
        on_missing: for classes without a description: ``error`` raises listing them, ``templates``
            falls back to the templates for those classes (and logs which).
    Returns:
        outer list over classes (len(names)), inner list of >= 1 texts.
    """
    if source not in SOURCES:
        raise ValueError(f"text source must be one of {SOURCES}, got {source!r}")
    if on_missing not in ON_MISSING:
        raise ValueError(f"on_missing must be one of {ON_MISSING}, got {on_missing!r}")
    templates = tuple(templates) if templates else DEFAULT_TEMPLATES
    if source == "names":
        return [[name] for name in names]
    if source == "templates":
        return [template_texts(name, templates) for name in names]
    if descriptions_csv is None:
        raise ValueError("text source 'descriptions' needs a descriptions CSV")
    descriptions = read_descriptions(descriptions_csv)
    missing = [name for name in names if normalize_name(name) not in descriptions]
    if missing and on_missing == "error":
        raise DescriptionsError(
            f"{descriptions_csv}: no description for {len(missing)} of {len(names)} classes: {missing} "
            "(set on_missing='templates' to fall back to templates for them)"
        )
    if missing:
        log.warning(
            "%s: %d classes use templates instead of a description: %s", descriptions_csv, len(missing), missing
        )
    return [
        [descriptions[normalize_name(name)]]
        if normalize_name(name) in descriptions
        else template_texts(name, templates)
        for name in names
    ]
