"""`ezclip info`: parameter and FLOP accounting for one backbone and set of switches, as JSON.

With --throughput it also measures inference views per second on --device (Table 7's TP; random
weights, downloads nothing).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", default="ViT-B-16", help="open_clip model name or .json config")
    parser.add_argument("--frames", type=int, default=8, help="frames per video (T)")
    parser.add_argument("--tvp", choices=["deep", "first", "off"], default="deep", help="temporal prompts")
    parser.add_argument("--no-adapters", dest="adapters", action="store_false", help="leave out the adapters")
    parser.add_argument("--adapter-ratio", type=float, default=0.25, help="adapter bottleneck width / tower width")
    parser.add_argument("--batch-size", type=int, default=1, help="videos per counted (and timed) forward")
    parser.add_argument("--throughput", action="store_true", help="also measure inference views/s of random weights")
    parser.add_argument("--device", default=None, help="for --throughput; default: cuda if available, else cpu")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON to this file")


def model_info(backbone: str, frames: int, tvp: str, adapters: bool, adapter_ratio: float, batch_size: int = 1) -> dict:
    from ezclip.models import build_ezclip, count_flops, count_parameters

    # Built on the meta device: no weights are allocated or downloaded, counting is shape-only.
    model = build_ezclip(
        backbone, num_frames=frames, tvp=tvp, adapters=adapters, adapter_ratio=adapter_ratio, device="meta"
    )
    return {
        "backbone": backbone,
        "num_frames": frames,
        "image_size": model.image_size,
        "tvp": tvp,
        "adapters": adapters,
        "parameters": count_parameters(model),
        "flops_per_view": {
            # counted on a batch of `batch_size` views, divided back to one view
            **{key: value / batch_size for key, value in count_flops(model, batch_size=batch_size).items()},
            "batch_size": batch_size,
            "what": "encode_video of one clip of T frames, in G multiply-accumulates; full = every "
            "matmul/conv/attention product of the model (torch.utils.flop_counter); linear_conv = "
            "nn.Linear + nn.Conv2d modules only (fvcore/thop-style); executed = what ezclip runs "
            "(its last block computes only the pooled class token)",
        },
    }


def run(args: argparse.Namespace) -> int:
    info = model_info(args.backbone, args.frames, args.tvp, args.adapters, args.adapter_ratio, args.batch_size)
    if args.throughput:
        import torch

        from ezclip.models.accounting import measure_throughput

        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        switches = {"tvp": args.tvp, "adapters": args.adapters, "adapter_ratio": args.adapter_ratio}
        info["throughput"] = measure_throughput(args.backbone, args.frames, args.batch_size, device, **switches)
    text = json.dumps(info, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0
