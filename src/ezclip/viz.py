"""`ezclip viz`: a run's figures, from what the run saved.

    ezclip viz outputs/demo/runs/tvp-deep_motion-true --baseline outputs/demo/runs/zero_shot

Writes small PNGs into `<run>/viz/` (or `--out`):
  curves.png               losses, learning rate and validation metrics (<run>/csv/version_0/metrics.csv)
  confusion_<set>.png      the confusion matrix of each test set (<run>/predictions/<set>.npz)
  embeddings_<set>.png     a t-SNE map (UMAP when installed) of the test videos' embeddings, coloured
                           by class; with --baseline, the baseline run's beside this run's
  attention_<set>.png      the class token's attention over the patches, per frame, for --layers, on
                           the first test video of the first --videos classes (with --baseline: both models)
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run folder (holds results.json)")
    parser.add_argument("--out", type=Path, default=None, help="where the PNGs go; default <run>/viz")
    parser.add_argument(
        "--baseline", type=Path, default=None, help="a run to draw beside this one (e.g. the zero-shot evaluation)"
    )
    parser.add_argument(
        "--layers", type=int, nargs="+", default=[-1], help="vision layers of the attention maps (-1: the last)"
    )
    parser.add_argument("--videos", type=int, default=2, help="test videos in the attention figure (0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the 2-D embedding map")


def run(args: argparse.Namespace) -> int:
    from ezclip.runs.figures import write_figures

    for path in (args.run_dir, args.baseline):
        if path is not None and not (path / "results.json").is_file():
            raise ValueError(f"{path} is not a run folder: it has no results.json")
    for path in write_figures(args.run_dir, args.out, args.baseline, args.layers, args.videos, args.seed):
        print(path)
    return 0
