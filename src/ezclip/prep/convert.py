"""Convert a dataset's official annotations to the project's lists (docs/design.md §5).

ezclip data convert ucf101 --annotations ucfTrainTestlist --out lists/ucf101
ezclip data convert hmdb51 --annotations testTrainMulti_7030_splits --out lists/hmdb51
ezclip data convert k400 --annotations kinetics400 --out lists/k400 [--naming cvdf|folders]
ezclip data convert ssv2 --annotations labels --out lists/ssv2
ezclip data convert k600-authors --annotations test_600_exclusive.txt \
    --labels splits/Shahzadnit/EZ-CLIP/lists/kinetics_600_labels_exclusive.csv --out k600/lists \
    [--video-root k600/videos]      # the authors' 232-class zero-shot K600 list (protocol=zero_shot_authors)

Writes train/test (UCF, HMDB: one pair per split) or train/val lists (Kinetics, SSv2) and labels.csv,
with video paths relative to the dataset's video root, and prints the count of videos per list.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ezclip.prep.formats import authors, hmdb51, kinetics, ssv2, ucf101
from ezclip.prep.formats.common import Conversion

DATASETS = ("ucf101", "hmdb51", "k400", "k600", "ssv2", "k600-authors")
# Class counts of the full releases: a different count is allowed (subsets) but worth a warning.
EXPECTED_CLASSES = {"ucf101": 101, "hmdb51": 51, "k400": 400, "k600": 600, "ssv2": 174, "k600-authors": 232}


def convert(dataset: str, annotations: str | Path, naming: str = "cvdf") -> Conversion:
    """Parse ``dataset``'s official annotation folder; ``naming`` applies to Kinetics only."""
    if dataset == "ucf101":
        return ucf101.convert(annotations)
    if dataset == "hmdb51":
        return hmdb51.convert(annotations)
    if dataset in ("k400", "k600"):
        return kinetics.convert(annotations, naming=naming)
    if dataset == "ssv2":
        return ssv2.convert(annotations)
    raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")


def convert_to(
    dataset: str,
    annotations: str | Path,
    out: str | Path,
    naming: str = "cvdf",
    labels: str | Path | None = None,
    video_root: str | Path | None = None,
) -> dict:
    """Convert and write into ``out``; returns a summary {dataset, out, classes, lists: {file: count}}.

    ``labels`` and ``video_root`` are for ``k600-authors`` (whose list has no class names and
    absolute paths of the authors' machine); the summary then also counts the videos not found.
    """
    extra = {}
    if dataset == "k600-authors":
        if labels is None:
            raise ValueError("k600-authors needs --labels (the authors' kinetics_600_labels_exclusive.csv)")
        result, extra["not_found_under_video_root"] = authors.convert(annotations, labels, video_root)
    else:
        result = convert(dataset, annotations, naming)
    counts = result.write(out)
    return {"dataset": dataset, "out": str(out), "classes": len(result.names), "lists": counts, **extra}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("dataset", choices=DATASETS, help="which release the annotations come from")
    parser.add_argument("--annotations", required=True, help="folder of the official annotation files")
    parser.add_argument("--out", required=True, help="output folder for the lists and labels.csv")
    parser.add_argument(
        "--naming",
        choices=kinetics.NAMINGS,
        default="cvdf",
        help="Kinetics clip naming: cvdf = {split}/{id}_{start:06d}_{end:06d}.mp4, folders = {split}/{label}/{id}.mp4",
    )
    parser.add_argument("--labels", help="k600-authors: the label CSV its labels index")
    parser.add_argument("--video-root", help="k600-authors: find each clip's file name under this folder")


def run(args: argparse.Namespace) -> int:
    summary = convert_to(args.dataset, args.annotations, args.out, args.naming, args.labels, args.video_root)
    expected = EXPECTED_CLASSES[args.dataset]
    if summary["classes"] != expected:
        summary["warning"] = f"{summary['classes']} classes, the full {args.dataset} release has {expected}"
    print(json.dumps(summary, indent=2))
    return 0
