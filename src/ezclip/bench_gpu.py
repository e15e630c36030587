"""`make bench-gpu`: EZ-CLIP's throughput and memory on a GPU by batch size, and Table 7's row, as JSON.

For one backbone (ViT-B/16 by default, random weights, T=8), at batch sizes 1, 2, 4, ... (or the
--batch-sizes given) until memory runs out, --max-batch or --time-limit:
- inference: views/s of `encode_video` (autocast to --dtype, bf16 by default; attention is one
  `scaled_dot_product_attention` call per block) and of plain open_clip frame encoding + mean,
  and EZ-CLIP's time over plain's;
- training: views/s of whole training steps (the video and 10 class names forward, contrastive +
  motion loss, backward, AdamW on the trainable set);
- the peak memory of each (torch.cuda.max_memory_allocated, the weights included).
With --compile each kind's computation goes through torch.compile (its warm-up steps compile it).
A torch.cuda.OutOfMemoryError ends that kind's ladder and the last batch that fit is reported.
Then Table 7's row: GFLOPs and parameters (count_flops, count_parameters) and views/s
(measure_throughput at the largest inference batch that fit, at most 32, not compiled), beside the
paper's. Its GFLOPs are counted as the paper's peers count them (nn.Linear and nn.Conv2d
multiply-accumulates); every product of the model, attention included, is in `full_gflops`.
The JSON is rewritten after every batch size, so a run cut off by a time limit keeps what it
measured. On the CPU (the tests) the same code runs with a tiny backbone and small batches.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

PAPER_TABLE7 = {"gflops": 102, "views_per_s": 322.4, "trainable_m": 5.2, "total_m": 87.5, "gpu": "A100"}
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": None}
KINDS = ("ezclip", "plain", "train")


def measure(step, batch_size: int, device: str, repeats: int) -> dict:
    """Views/s (median of ``repeats`` after two warm-ups) and peak memory of one kind of step."""
    from ezclip.models.accounting import time_step

    cuda = device.startswith("cuda")
    for _ in range(2):
        time_step(step, device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    seconds = statistics.median(time_step(step, device) for _ in range(repeats))
    return {
        "views_per_s": batch_size / seconds,
        "seconds": seconds,
        "peak_mb": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
    }


def run_ladder(
    backbone: str,
    frames: int,
    device: str,
    dtype: str,
    max_batch: int,
    time_limit: float,
    repeats: int,
    out: Path | None = None,
    batch_sizes: list[int] | None = None,
    torch_compile: bool = False,
) -> dict:
    """Measure ``batch_sizes`` (default 1, 2, 4, ... up to ``max_batch``; see the module docstring);
    the result, also written to ``out``."""
    from ezclip.models import build_ezclip, count_flops, count_parameters
    from ezclip.models.accounting import benchmark_steps, measure_throughput

    start = time.monotonic()
    reserve = min(60.0, time_limit / 5)  # for Table 7's row after the ladder
    autocast_dtype = DTYPES[dtype]
    result: dict = {
        "backbone": backbone,
        "frames": frames,
        "device": device,
        "device_name": torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "cpu",
        "dtype": dtype,
        "compiled": torch_compile,
        "torch": torch.__version__,
        "repeats": repeats,
        "ladder": [],
    }
    torch.manual_seed(0)
    model = build_ezclip(backbone, num_frames=frames, device=device)
    fits = {"inference": True, "train": True}
    if batch_sizes is None:
        batch_sizes = [2**i for i in range(max_batch.bit_length())]  # 1, 2, 4, ... <= max_batch
    last_seconds = 0.0
    for batch in batch_sizes:
        if not any(fits.values()):
            break
        if time.monotonic() - start + 3 * last_seconds > time_limit - reserve:  # the next batch takes ~2x this one
            result["stopped"] = f"time limit ({time_limit:g} s) before batch {batch}"
            break
        begun = time.monotonic()
        row: dict = {"batch_size": batch}
        steps = benchmark_steps(model, batch, autocast_dtype=autocast_dtype, torch_compile=torch_compile)
        for kind in KINDS:
            group = "train" if kind == "train" else "inference"
            if not fits[group]:
                continue
            try:
                row[kind] = measure(steps[kind], batch, device, repeats)
            except torch.cuda.OutOfMemoryError:
                fits[group] = False
                row[kind] = "out of memory"
                model.zero_grad(set_to_none=True)
                gc.collect()
                torch.cuda.empty_cache()
        if isinstance(row.get("ezclip"), dict) and isinstance(row.get("plain"), dict):
            row["ezclip_over_plain"] = row["ezclip"]["seconds"] / row["plain"]["seconds"]
        result["ladder"].append(row)
        del steps
        _write(result, out)
        last_seconds = time.monotonic() - begun
    if "stopped" not in result:
        result["stopped"] = "out of memory" if not any(fits.values()) else f"batch sizes up to {batch_sizes[-1]} done"
    result["largest_batch_that_fit"] = {
        group: max((r["batch_size"] for r in result["ladder"] if isinstance(r.get(kind), dict)), default=None)
        for group, kind in (("inference", "ezclip"), ("train", "train"))
    }
    del model
    gc.collect()

    meta = build_ezclip(backbone, num_frames=frames, device="meta")
    parameters, flops = count_parameters(meta), count_flops(meta)
    tp_batch = min(32, result["largest_batch_that_fit"]["inference"] or 1)
    throughput = measure_throughput(backbone, frames, tp_batch, device, repeats=repeats, autocast_dtype=autocast_dtype)
    result["table7"] = {
        "gflops": flops["linear_conv_gmacs"],
        "full_gflops": flops["full_gflops"],
        "executed_gmacs": flops["executed_gmacs"],
        "trainable_params": parameters["trainable"],
        "vision_total_params": parameters["vision_total"],
        "views_per_s": throughput["ezclip_views_per_s"],
        "plain_views_per_s": throughput["plain_views_per_s"],
        "batch_size": tp_batch,
        "dtype": throughput["dtype"],
        "paper": PAPER_TABLE7,
    }
    result["seconds"] = time.monotonic() - start
    _write(result, out)
    return result


def _write(result: dict, out: Path | None) -> None:
    """Write the JSON through a temporary file, so a kill never leaves half of it."""
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(result, indent=2) + "\n")
    os.replace(temporary, out)


def summary(result: dict) -> str:
    """One line per batch size and Table 7's row, for the terminal."""
    compiled = ", torch.compile" if result["compiled"] else ""
    lines = [f"{result['backbone']} T={result['frames']} on {result['device_name']} ({result['dtype']}{compiled}):"]
    for row in result["ladder"]:
        cells = []
        for kind in KINDS:
            value = row.get(kind)
            if isinstance(value, dict):
                memory = f", {value['peak_mb']:.0f} MB" if value["peak_mb"] is not None else ""
                cells.append(f"{kind} {value['views_per_s']:.1f} views/s{memory}")
            elif value:
                cells.append(f"{kind} {value}")
        ratio = f", EZ-CLIP/plain {row['ezclip_over_plain']:.2f}" if "ezclip_over_plain" in row else ""
        lines.append(f"  batch {row['batch_size']}: " + "; ".join(cells) + ratio)
    lines.append(f"  stopped: {result.get('stopped')}")
    t7 = result["table7"]
    paper = t7["paper"]
    lines.append(
        f"Table 7: {t7['gflops']:.0f} GFLOPs (paper {paper['gflops']}; "
        f"{t7['full_gflops']:.0f} counting every product), {t7['trainable_params'] / 1e6:.1f}M trainable "
        f"(paper {paper['trainable_m']}M), {t7['views_per_s']:.1f} views/s at batch {t7['batch_size']} "
        f"(paper {paper['views_per_s']} on an {paper['gpu']})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cuda = torch.cuda.is_available()
    parser.add_argument("--backbone", default="ViT-B-16", help="open_clip model name or .json config")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (T)")
    parser.add_argument("--device", default="cuda" if cuda else "cpu", help="cuda (default when present) or cpu")
    parser.add_argument(
        "--dtype", choices=list(DTYPES), default="bfloat16" if cuda else "float32", help="autocast dtype"
    )
    parser.add_argument("--max-batch", type=int, default=4096, help="largest batch size to try")
    parser.add_argument(
        "--batch-sizes", type=lambda text: [int(b) for b in text.split(",")], help="e.g. 128,256 instead of the ladder"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile each kind's computation")
    parser.add_argument("--time-limit", type=float, default=480.0, help="seconds for the whole run (about)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per measurement, after 2 warm-ups")
    parser.add_argument("--out", type=Path, default=Path("bench-gpu.json"), help="the JSON file to write")
    args = parser.parse_args(argv)
    result = run_ladder(
        args.backbone, args.frames, args.device, args.dtype, args.max_batch, args.time_limit, args.repeats, args.out,
        args.batch_sizes, args.compile,
    )  # fmt: skip
    print(summary(result))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
