"""`ezclip data summary [overrides]`: what a run would read, without decoding a single video.

Composes the same config as `ezclip train` with the same overrides, then for every split (train,
val, each test set) reports the number of videos, of classes in its label CSV, of classes that
have videos, and of listed files that do not exist, and checks that every class has its text (a
description when the source is descriptions), so a dataset can be checked before a 50-epoch run.
Empty lists and training lists shorter than one batch are flagged (`problems`). One JSON object on
stdout; exit status 1 when anything is missing, unreadable or flagged.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for ezclip train (e.g. data=ucf101)")
    parser.add_argument("--config", default="train", help="the config to compose (train or eval)")
    parser.add_argument("--show-missing", type=int, default=5, help="how many missing paths to list per split")


def summarize_split(
    list_file: str, labels: str, root: str, show_missing: int, exclude: str | None = None, text: dict | None = None
) -> dict[str, Any]:
    from ezclip.data.lists import apply_exclusions, read_exclusions, read_labels, read_list
    from ezclip.data.text import class_texts

    text = text or {}
    source = text.get("source", "names")
    summary: dict[str, Any] = {"list": list_file, "labels": labels, "root": root, "text": source}
    if source == "descriptions":
        summary["descriptions"] = text.get("descriptions")
    try:
        names = read_labels(labels)
        class_texts(names, source, text.get("templates"), text.get("descriptions"), text.get("on_missing", "error"))
        entries = read_list(list_file, num_classes=len(names))
        if exclude:
            entries, summary["excluded"] = apply_exclusions(entries, read_exclusions(exclude))
    except (OSError, ValueError) as error:
        return {**summary, "error": str(error)}
    missing = [e.path for e in entries if not os.path.exists(os.path.join(root, e.path))]
    return {
        **summary,
        "videos": len(entries),
        "classes": len(names),
        "classes_with_videos": len({e.label for e in entries}),
        "missing": len(missing),
        "missing_examples": list(dict.fromkeys(missing))[:show_missing],
    }


def summarize(datamodule, show_missing: int = 5) -> dict[str, Any]:
    """Per split of a (not set up) VideoDataModule: videos, classes, missing files, and `problems`:
    an empty list, or a training list shorter than one batch (no optimizer step would run)."""
    splits = {}
    for name, spec in datamodule.splits().items():
        split = summarize_split(
            spec["list"], spec["labels"], spec["root"], show_missing, datamodule.hparams.exclude, spec["text"]
        )
        problems = []
        if "error" in split:
            pass  # the error says it all
        elif split["videos"] == 0:
            problems.append("the list is empty")
        elif name == "train" and split["videos"] < datamodule.hparams.batch_size:
            problems.append(
                f"{split['videos']} videos, fewer than one batch ({datamodule.hparams.batch_size}): "
                "no optimizer step would run"
            )
        if problems:
            split["problems"] = problems
        splits[name if name in ("train", "val") else f"test/{name}"] = split
    return splits


def run(args: argparse.Namespace) -> int:
    import hydra
    from omegaconf import OmegaConf

    from ezclip.runs.config import compose

    cfg = compose(args.config, args.overrides)
    splits = summarize(hydra.utils.instantiate(cfg.data, _convert_="all"), args.show_missing)
    protocol = OmegaConf.to_container(cfg.protocol) if cfg.get("protocol") else None
    dataset = (cfg.get("dataset") or {}).get("name")
    print(json.dumps({"dataset": dataset, "protocol": protocol, "splits": splits}, indent=2))
    bad = any("error" in s or "problems" in s or s["missing"] for s in splits.values())
    return 1 if bad else 0
