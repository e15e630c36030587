"""`ezclip data flatten --src DIR --dest DIR`: one folder of links to every video under a release.

The ViFi-CLIP lists name HMDB51 and UCF101 videos by file name alone (``v_ApplyEyeMakeup_g01_c01.avi``),
while the official releases keep them in class folders (``UCF-101/ApplyEyeMakeup/...``). This links
each video file under ``--src`` into ``--dest`` by its file name, without copying. It refuses file
names found twice (naming them), leaves links that are already right, and never overwrites a
different file. Prints one JSON object: linked, already there, conflicts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ezclip.prep.formats.common import find_videos


def flatten(src: str | Path, dest: str | Path) -> dict:
    src, dest = Path(src).resolve(), Path(dest)
    videos = find_videos(src)
    repeated = {name: paths for name, paths in videos.items() if len(paths) > 1}
    if repeated:
        examples = dict(list(repeated.items())[:5])
        raise ValueError(f"{len(repeated)} file names occur more than once under {src}, e.g. {examples}")
    dest.mkdir(parents=True, exist_ok=True)
    linked, already, conflicts = 0, 0, []
    for name, (relative,) in videos.items():
        target, link = src / relative, dest / name
        if link.is_symlink() or link.exists():
            if link.resolve() == target:
                already += 1
            else:
                conflicts.append(name)
            continue
        link.symlink_to(target)
        linked += 1
    return {"src": str(src), "dest": str(dest), "linked": linked, "already": already,
            "conflicts": len(conflicts), "conflict_examples": conflicts[:5]}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--src", required=True, help="the release's video folder (e.g. UCF-101 with class folders)")
    parser.add_argument("--dest", required=True, help="the flat folder the lists' paths are relative to")


def run(args: argparse.Namespace) -> int:
    result = flatten(args.src, args.dest)
    print(json.dumps(result, indent=2))
    return 1 if result["conflicts"] else 0
