"""`ezclip predict`: classify your own videos against your own class names.

    ezclip predict a.mp4 b.mp4 --labels "juggling;riding a bike" --ckpt outputs/.../checkpoints/model.pt
    ezclip predict a.mp4 --labels-file classes.txt --ckpt ezclip_k400_b16.pt --json   # the authors' release
    ezclip predict a.mp4 --labels "cat;dog" --backbone ViT-B-16 --pretrained openai   # frozen CLIP, zero-shot

`--ckpt` takes any checkpoint ezclip reads, recognised by its content: ezclip's own `model.pt`,
a Lightning `last.ckpt`, or the authors' release.

An unreadable video gets one line on stderr naming it; the others are still classified, and the
exit status is 1 when any video failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ezclip.models import EZCLIP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", help="video files or frame folders")
    labels = parser.add_mutually_exclusive_group(required=True)
    labels.add_argument("--labels", help='class names separated by ";", e.g. "juggling;riding a bike"')
    labels.add_argument("--labels-file", type=Path, help="one class name per line, or an id,name CSV")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--ckpt", type=Path, help="a checkpoint: ezclip's model.pt, a Lightning .ckpt or the authors' file"
    )
    source.add_argument("--backbone", help="an open_clip model name: the frozen CLIP, zero-shot")
    parser.add_argument("--pretrained", default=None, help="with --backbone: open_clip tag or local weights file")
    parser.add_argument("--frames", type=int, default=8, help="with --backbone: frames per video")
    parser.add_argument("--template", default="{}", help='class text template, e.g. "a video of a person {}."')
    parser.add_argument("--topk", type=int, default=5, help="how many classes to print per video")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of text")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a hanging decode is abandoned")
    parser.add_argument("--device", default=None, help="torch device; default cuda if available, else cpu")


def read_labels(args: argparse.Namespace) -> list[str]:
    if args.labels is not None:
        names = [name.strip() for name in args.labels.split(";")]
    else:
        lines = args.labels_file.read_text(encoding="utf-8").splitlines()
        if lines and lines[0].strip().lower().replace(" ", "") == "id,name":
            names = [row["name"] for row in csv.DictReader(lines)]
        else:
            names = [line.strip() for line in lines]
    names = [name for name in names if name]
    if len(names) < 2:
        raise ValueError(f"need at least 2 class names to choose between, got {names}")
    return names


def load_model(args: argparse.Namespace) -> EZCLIP:
    from ezclip.models import build_ezclip, load_model

    if args.ckpt is not None:
        return load_model(args.ckpt)
    # No trained prompts: the frozen backbone itself (fresh adapters are the identity).
    return build_ezclip(args.backbone, pretrained=args.pretrained, num_frames=args.frames, tvp="off")


def classify(
    model: EZCLIP, labels: list[str], videos: list[str], topk: int, template: str, timeout: float, device: str
) -> list[dict]:
    """One result per video: {"video", "top": [(label, probability), ...]} or {"video", "error"}."""
    import torch

    with torch.no_grad():
        return _classify(model, labels, videos, topk, template, timeout, device)


def _classify(model, labels, videos, topk, template, timeout, device) -> list[dict]:
    from ezclip.data.decoding import SafeDecoder, VideoReadError
    from ezclip.data.sampling import ClipSampler
    from ezclip.data.transforms import TestTransform, normalize_video

    model = model.to(device).eval()
    text = model.encode_text(model.tokenize([template.format(name) for name in labels]).to(device))  # (C, E)
    size = model.image_size
    transform = TestTransform(image_size=size, resize_size=round(size * 256 / 224))
    sampler = ClipSampler(num_frames=model.num_frames, train=False)
    decoder = SafeDecoder(timeout=timeout, short_side=transform.decode_short_side)
    results = []
    try:
        for path in videos:
            try:
                frames = decoder(str(path), sampler)  # (T, H, W, 3) uint8
            except VideoReadError as error:
                results.append({"video": str(path), "error": error.reason})
                continue
            video = transform(frames)[:1].to(device)  # (1, T, 3, S, S): one centre crop
            logits = model.similarity_logits(model.encode_video(normalize_video(video)), text)  # (1, C)
            probs = logits.float().softmax(dim=-1)[0]
            top = probs.topk(min(topk, len(labels)))
            results.append(
                {
                    "video": str(path),
                    "top": [(labels[i], float(p)) for p, i in zip(top.values, top.indices, strict=True)],
                }
            )
    finally:
        decoder.close()
    return results


def run(args: argparse.Namespace) -> int:
    import torch

    labels = read_labels(args)
    model = load_model(args)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    results = classify(model, labels, args.videos, args.topk, args.template, args.timeout, device)
    failed = [r for r in results if "error" in r]
    for r in failed:
        print(f"ezclip predict: error: {r['video']}: {r['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if "top" in r:
                ranked = ", ".join(f"{name} {100 * p:.1f}%" for name, p in r["top"])
                print(f"{r['video']}: {ranked}")
    return 1 if failed else 0
