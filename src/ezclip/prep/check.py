"""`ezclip data check [overrides]`: decode one clip of every listed video, report the unreadable.

Composes the same config as `ezclip train`; every split's videos are decoded (the test-time
clip, no transforms) in parallel worker processes, each decode with a timeout, so a corrupt or
hanging file is found before a long run rather than during it. `--write-exclusions FILE` writes
the unreadable videos' list paths, which `data.exclude=FILE` then leaves out of every split.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ezclip.data.decoding import SafeDecoder, VideoReadError
from ezclip.data.lists import read_labels, read_list
from ezclip.data.sampling import ClipSampler


class _DecodeCheck:
    """Item i -> (i, None) if video i decodes, else (i, reason)."""

    def __init__(self, root: str, paths: list[str], num_frames: int, timeout: float, allow_images: bool):
        self.root, self.paths = root, paths
        self.sampler = ClipSampler(num_frames, train=False)
        self.decoder = SafeDecoder(timeout=timeout, allow_images=allow_images)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, str | None]:
        try:
            self.decoder(os.path.join(self.root, self.paths[index]), self.sampler)
        except VideoReadError as error:
            return index, error.reason
        return index, None


def check_split(
    spec: dict[str, Any], num_frames: int, workers: int, timeout: float, allow_images: bool = False
) -> dict[str, Any]:
    """Decode every video of one split ({list, labels, root}); the unreadable ones with reasons."""
    entries = read_list(spec["list"], num_classes=len(read_labels(spec["labels"])))
    paths = list(dict.fromkeys(e.path for e in entries))  # a video listed twice is decoded once
    from torch.utils.data import DataLoader

    dataset = _DecodeCheck(spec["root"], paths, num_frames, timeout, allow_images)
    loader = DataLoader(dataset, batch_size=None, num_workers=workers)
    try:
        bad = [{"path": paths[i], "reason": reason} for i, reason in loader if reason is not None]
    finally:
        dataset.decoder.close()
    return {"list": spec["list"], "root": spec["root"], "videos": len(paths), "unreadable": bad}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for ezclip train (e.g. data=ucf101)")
    parser.add_argument("--config", default="train", help="the config to compose (train or eval)")
    parser.add_argument(
        "--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="decoding processes (default: cores - 1)"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per video before it counts as hung")
    parser.add_argument("--write-exclusions", type=Path, default=None, help="write unreadable paths here")


def run(args: argparse.Namespace) -> int:
    import hydra

    from ezclip.runs.config import compose

    cfg = compose(args.config, args.overrides)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    report = {
        name: check_split(spec, cfg.data.num_frames, args.workers, args.timeout, datamodule.hparams.allow_images)
        for name, spec in datamodule.splits().items()
    }
    unreadable = sorted({bad["path"] for split in report.values() for bad in split["unreadable"]})
    if args.write_exclusions is not None:
        args.write_exclusions.parent.mkdir(parents=True, exist_ok=True)
        args.write_exclusions.write_text("".join(f"{path}\n" for path in unreadable))
    print(
        json.dumps(
            {"dataset": (cfg.get("dataset") or {}).get("name"), "unreadable": len(unreadable), "splits": report},
            indent=2,
        )
    )
    return 1 if unreadable else 0
