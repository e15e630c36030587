"""`make bench`: EZ-CLIP's cost relative to plain open_clip frame encoding, measured in one run.

For each backbone (random weights, batch 1, T frames at the backbone's image size):
- plain:  open_clip `encode_image` on the T frames + mean over T (eval, no grad);
- ezclip: `EZCLIP.encode_video` (eval, no grad), target <= 1.10 x plain;
- train:  one training step: forward of the video and of the class texts, contrastive (ce) +
          motion loss, backward, AdamW on the trainable set, target <= 2.6 x plain.
Each measurement runs in its own process so that its peak memory is its own: on CPU the peak
resident set size above the process's size after building the model, on CUDA the peak allocated.
Times are medians over `--repeats` after one warm-up; ratios come from the same run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import time

import torch

KINDS = ("plain", "ezclip", "train")
TARGETS = {"ezclip": 1.10, "train": 2.6}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def _measure(
    kind: str, backbone: str, frames: int, repeats: int, num_texts: int, text_words: int, device: str, queue
) -> None:
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # open_clip's random-init warning
    from ezclip.models import build_ezclip, contrastive_loss, motion_loss

    torch.manual_seed(0)
    model = build_ezclip(backbone, num_frames=frames, device=device)
    size = model.image_size
    video = torch.randn(1, frames, 3, size, size, device=device)
    texts = [f"action number {i}" + " with a longer description" * text_words for i in range(num_texts)]
    tokens = model.tokenize(texts).to(device)
    label = torch.tensor([0], device=device)

    if kind == "plain":
        model.eval()

        def step():
            with torch.no_grad():
                model.clip.encode_image(video.flatten(0, 1)).view(1, frames, -1).mean(1)
    elif kind == "ezclip":
        model.eval()

        def step():
            with torch.no_grad():
                model.encode_video(video)
    else:
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

        def step():
            optimizer.zero_grad(set_to_none=True)
            frame_embeddings = model.encode_frames(video)
            logits = model.similarity_logits(frame_embeddings.mean(1), model.encode_text(tokens))
            loss = contrastive_loss(logits, label) + motion_loss(frame_embeddings)
            loss.backward()
            optimizer.step()

    def synchronize():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    baseline = _rss_mb()
    step()  # warm-up (allocator, optimizer state)
    synchronize()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = _peak_rss_mb() - baseline
    queue.put({"kind": kind, "seconds": statistics.median(times), "peak_mb": peak})


def run_benchmark(backbones, frames: int, repeats: int, num_texts: int, text_words: int, device: str) -> list[dict]:
    context = mp.get_context("spawn")
    rows = []
    for backbone in backbones:
        row = {"backbone": backbone, "frames": frames, "device": device, "texts": num_texts}
        for kind in KINDS:
            queue = context.Queue()
            process = context.Process(
                target=_measure, args=(kind, backbone, frames, repeats, num_texts, text_words, device, queue)
            )
            process.start()
            result = queue.get()
            process.join()
            row[f"{kind}_s"] = result["seconds"]
            row[f"{kind}_peak_mb"] = result["peak_mb"]
        for kind in TARGETS:
            row[f"{kind}_ratio"] = row[f"{kind}_s"] / row["plain_s"]
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [
        "| backbone | plain fwd (s) | EZ-CLIP fwd (s) | ratio (target <= 1.10) | train step (s) | "
        "ratio (target <= 2.6) | peak MB plain / EZ-CLIP / train |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backbone']}, T={r['frames']} | {r['plain_s']:.3f} | {r['ezclip_s']:.3f} | "
            f"{r['ezclip_ratio']:.2f} | {r['train_s']:.3f} | {r['train_ratio']:.2f} | "
            f"{r['plain_peak_mb']:.0f} / {r['ezclip_peak_mb']:.0f} / {r['train_peak_mb']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["ViT-B-16", "ViT-B-32"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--texts", type=int, default=10, help="class texts encoded in each training step")
    parser.add_argument(
        "--description-words",
        type=int,
        default=0,
        help="lengthen each class text by 4*N words (0: short class names; 15 fills the 77-token context)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args(argv)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, batch 1, "
        f"T={args.frames}, {args.texts} class texts (+{4 * args.description_words} words) per training step, "
        f"median of {args.repeats}",
        flush=True,
    )
    rows = run_benchmark(args.backbones, args.frames, args.repeats, args.texts, args.description_words, args.device)
    print(format_table(rows))
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
