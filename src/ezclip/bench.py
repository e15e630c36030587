"""`make bench`: EZ-CLIP's cost relative to plain open_clip, and the data loader's, measured in one run.

Model, for each backbone (random weights, batch 1, T frames at the backbone's image size):
- plain:  open_clip `encode_image` on the T frames + mean over T (eval, no grad);
- ezclip: `EZCLIP.encode_video` (eval, no grad), target <= 1.10 x plain;
- train:  one training step: forward of the video and of the class texts, contrastive (ce) +
          motion loss, backward, AdamW on the trainable set, target <= 2.6 x plain.
One process holds the model and times the three kinds in turn (plain, ezclip, train, plain, ...),
so background load on a shared machine moves both sides of a ratio alike; times are medians over
`--repeats` rounds after a warm-up round. On CPU the clock is the process's CPU time with one
torch thread (`--threads`): time spent waiting for a core busy with other work is not counted,
and one thread cannot stall in OpenMP barriers the way two threads on two busy cores do (seen
at a load of ~5: B/32 ratios 1.33 / 4.61 with two threads in wall time, 1.14 / 2.68 with one).
On CUDA it is wall time, synchronised. Peak memory comes from one separate process per kind, so
that each peak is its own: on CPU the peak resident set size above the process's size after
building the model, on CUDA the peak allocated.

Loader: clips per second of one loader worker through the project's own training path (list ->
TSN sampler -> decoder helper process -> TrainTransform at 224 px, which crops, resizes and flips and
leaves the colour augmentation to the device; a `VideoDataset` read in this process, as one
DataLoader worker reads it), for a raw clip (10 s of 1280x720 H.264 at 25 fps,
x264's default keyframe interval, rendered here into a temporary folder) and for the copy
`ezclip data prepare` makes of it (256 px short side, a keyframe every 16 frames), read in turn.
From those: how many workers keep one GPU fed at the paper's training throughput.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

KINDS = ("plain", "ezclip", "train")
TARGETS = {"ezclip": 1.10, "train": 2.6}
PREPARED_TARGET = 3.0  # prepared clips/s >= 3x raw
# Table 7: 322.4 views/s of inference on one A100 (ViT-B/16, T=8). A training step costs our
# measured train / plain-forward ratio times a forward, so one A100 trains at about 322.4 / ratio
# views/s (~140 at the ratio of 2.3); a view is one clip of T frames, i.e. one loaded clip.
PAPER_INFERENCE_VIEWS_PER_S = 322.4
RAW_CLIP = {"seconds": 10, "width": 1280, "height": 720, "fps": 25}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def _steps(backbone: str, frames: int, num_texts: int, text_words: int, device: str, threads: int):
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # open_clip's random-init warning
    from ezclip.models import build_ezclip
    from ezclip.models.accounting import benchmark_steps

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_ezclip(backbone, num_frames=frames, device=device)
    return benchmark_steps(model, batch_size=1, num_texts=num_texts, text_words=text_words)


def _time_interleaved(backbone, frames, repeats, num_texts, text_words, device, threads, queue) -> None:
    """Child process: all kinds in turn, ``repeats`` rounds after a warm-up round; per kind the median seconds."""
    from ezclip.models.accounting import time_step

    steps = _steps(backbone, frames, num_texts, text_words, device, threads)
    clock = time.perf_counter if device.startswith("cuda") else time.process_time
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for round_ in range(repeats + 1):
        for kind in KINDS:
            seconds = time_step(steps[kind], device, clock)
            if round_:  # round 0 warms up (allocator, optimizer state)
                times[kind].append(seconds)
    queue.put({kind: statistics.median(values) for kind, values in times.items()})


def _peak_memory(kind, backbone, frames, num_texts, text_words, device, threads, queue) -> None:
    """Child process: the peak memory of one kind's step, in MB."""
    step = _steps(backbone, frames, num_texts, text_words, device, threads)[kind]
    baseline = _rss_mb()
    step()  # warm-up: the optimizer's state exists from here on
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    step()
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else _peak_rss_mb() - baseline
    queue.put(peak)


def _in_child(target, *args):
    """Run ``target(*args, queue)`` in a fresh process; what it put on the queue (an error if it died first)."""
    import queue as queues

    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    while True:
        alive = process.is_alive()  # before waiting: a result put just before it exits still arrives
        try:
            result = queue.get(timeout=5)
            break
        except queues.Empty:
            if not alive:
                raise RuntimeError(f"the benchmark process died (exit code {process.exitcode})") from None
    process.join()
    return result


def run_benchmark(
    backbones,
    frames: int,
    repeats: int,
    num_texts: int,
    text_words: int,
    device: str,
    threads: int = 1,
    memory: bool = True,
) -> list[dict]:
    rows = []
    for backbone in backbones:
        row = {"backbone": backbone, "frames": frames, "device": device, "texts": num_texts, "threads": threads}
        settings = (backbone, frames, num_texts, text_words, device, threads)
        seconds = _in_child(_time_interleaved, backbone, frames, repeats, num_texts, text_words, device, threads)
        for kind in KINDS:
            row[f"{kind}_s"] = seconds[kind]
            if memory:
                row[f"{kind}_peak_mb"] = _in_child(_peak_memory, kind, *settings)
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
        peaks = " / ".join(f"{r[f'{kind}_peak_mb']:.0f}" if f"{kind}_peak_mb" in r else "-" for kind in KINDS)
        lines.append(
            f"| {r['backbone']}, T={r['frames']} | {r['plain_s']:.3f} | {r['ezclip_s']:.3f} | "
            f"{r['ezclip_ratio']:.2f} | {r['train_s']:.3f} | {r['train_ratio']:.2f} | {peaks} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------


def write_raw_clip(path: Path, seconds: int, width: int, height: int, fps: int) -> Path:
    """A clip that decodes about as slowly as camera footage: a sliding texture and moving blocks under
    a light grain, H.264 with x264's defaults (crf 23, keyframe interval 250) at preset veryfast.

    Measured: 8 sparse frames of it take ~520 ms with decord (num_threads=1), as the 10 s 1280x720
    clip of docs/design.md §8 did; without the grain, ~410 ms.
    """
    import av

    frames = seconds * fps
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0 : width + 7 * frames].astype(np.float32)
    texture = 128 + 90 * np.stack([np.sin(x / 61.0), np.sin(y / 43.0), np.sin((x + y) / 97.0)], axis=-1)
    grain = rng.normal(0, 3, (8, height, width, 1)).astype(np.float32)  # a few grain fields, cycled
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast"}
        for i in range(frames):
            image = texture[:, 7 * i : 7 * i + width] + grain[i % len(grain)]  # (H, W, 3), sliding 7 px a frame
            for k in range(3):  # blocks crossing the frame
                left, top = (97 * k + 11 * i) % (width - 200), (53 * k + 4 * i) % (height - 150)
                image[top : top + 150, left : left + 200] = (60 + 80 * k, 200 - 60 * k, 90)
            frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def measure_loader(folder: Path, repeats: int, frames: int = 8, image_size: int = 224, clip: dict = RAW_CLIP) -> dict:
    """Clips/s of one worker reading the raw ``clip`` (seconds, width, height, fps) and its prepared copy,
    in turn: ``repeats`` times one raw clip then four prepared ones (a raw clip costs several)."""
    from ezclip.data.dataset import VideoDataset
    from ezclip.data.decoding import SafeDecoder
    from ezclip.data.lists import VideoEntry
    from ezclip.data.transforms import TrainTransform

    raw, prepared = folder / "raw", folder / "prepared"
    raw.mkdir()
    start = time.perf_counter()
    write_raw_clip(raw / "clip.mp4", **clip)
    render_s = time.perf_counter() - start
    start = time.perf_counter()
    # `ezclip data prepare` itself (the entry points do not import one another).
    command = [sys.executable, "-m", "ezclip.cli", "data", "prepare", "--src", str(raw), "--dest", str(prepared)]
    subprocess.run([*command, "--workers", "1", "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    prepare_s = time.perf_counter() - start

    transform = TrainTransform(image_size=image_size)
    decoder = SafeDecoder(timeout=120, short_side=transform.decode_short_side)  # as VideoDataModule builds it
    entries = [VideoEntry("clip.mp4", 0)] * (repeats * 8 + 1)
    datasets = {name: VideoDataset(str(root), entries, frames, transform, decoder) for name, root in
                (("raw", raw), ("prepared", prepared))}  # fmt: skip
    times: dict[str, list[float]] = {"raw": [], "prepared": []}
    index = 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker, which torch limits to one thread
    try:
        for name in times:  # warm-up: the helper process, the files in the page cache
            datasets[name][(index, 0)]
        for _ in range(repeats):
            for name, count in (("raw", 1), ("prepared", 4)):  # a raw clip costs several prepared ones
                for _ in range(count):
                    index += 1  # another item: other random frames and crops
                    start = time.perf_counter()
                    item = datasets[name][(index, 0)]
                    times[name].append(time.perf_counter() - start)
                    assert isinstance(item, dict), f"the benchmark clip could not be read: {item}"
    finally:
        torch.set_num_threads(threads)
        decoder.close()
    result = {f"{name}_clips_per_s": 1 / statistics.median(values) for name, values in times.items()}
    result.update(
        clip=clip,
        frames=frames,
        image_size=image_size,
        ratio=result["prepared_clips_per_s"] / result["raw_clips_per_s"],
        raw_mb=(raw / "clip.mp4").stat().st_size / 2**20,
        prepared_mb=(prepared / "clip.mp4").stat().st_size / 2**20,
        render_s=render_s,
        prepare_s=prepare_s,
        raw_items=len(times["raw"]),
        prepared_items=len(times["prepared"]),
    )
    return result


def feeding(loader: dict, rows: list[dict]) -> dict:
    """Workers per GPU: the GPU's training views/s (the paper's A100 inference throughput / this run's
    ViT-B-16 train-step ratio, 2.3 without one) / the clips/s one worker loads; one view = one clip."""
    b16 = next((r for r in rows if r["backbone"] == "ViT-B-16"), None)
    ratio = b16["train_ratio"] if b16 else 2.3
    gpu = PAPER_INFERENCE_VIEWS_PER_S / ratio
    return {
        "gpu_training_views_per_s": gpu,
        "train_ratio": ratio,
        "train_ratio_measured": b16 is not None,
        "cpu_training_views_per_s": 1 / (b16 or rows[0])["train_s"],
        **{f"{name}_workers_per_gpu": math.ceil(gpu / loader[f"{name}_clips_per_s"]) for name in ("raw", "prepared")},
    }


def format_loader(loader: dict) -> str:
    """The loader table, the ratio against its target, and the workers a GPU needs."""
    clip, gpu = loader["clip"], loader["gpu_training_views_per_s"]
    lines = [
        "",
        f"Loader, one worker (VideoDataset + SafeDecoder + TrainTransform {loader['image_size']} px, "
        f"T={loader['frames']}; median of {loader['raw_items']} raw / {loader['prepared_items']} prepared clips, "
        "read in turn; wall time, one torch thread as in a DataLoader worker):",
        f"| clip | MB | clips/s per worker | workers to feed one GPU at {gpu:.0f} training views/s |",
        "|---|---|---|---|",
    ]
    for name, label in (
        ("raw", f"raw: {clip['seconds']} s {clip['width']}x{clip['height']} H.264, x264's keyframe interval (250)"),
        ("prepared", "prepared: `ezclip data prepare` (256 px short side, a keyframe every 16 frames)"),
    ):
        lines.append(
            f"| {label} | {loader[f'{name}_mb']:.1f} | {loader[f'{name}_clips_per_s']:.2f} | "
            f"{loader[f'{name}_workers_per_gpu']} |"
        )
    verdict = "meets" if loader["ratio"] >= PREPARED_TARGET else "MISSES"
    lines.append(f"prepared / raw: {loader['ratio']:.1f}x ({verdict} the target >= {PREPARED_TARGET:g}x)")
    basis = "this run's" if loader["train_ratio_measured"] else "an assumed"
    lines.append(
        f"Assumed GPU: {gpu:.0f} training views/s = the paper's {PAPER_INFERENCE_VIEWS_PER_S} inference views/s on "
        f"one A100 (Table 7) / {basis} ViT-B-16 train-step ratio {loader['train_ratio']:.2f}; one view is one "
        "loaded clip; workers = ceil(views/s / clips/s per worker), one core each, scaling linearly. (This "
        f"CPU trains at {loader['cpu_training_views_per_s']:.2f} views/s: one worker feeds it.)"
    )
    lines.append(f"(rendering the raw clip took {loader['render_s']:.0f} s, preparing it {loader['prepare_s']:.1f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["ViT-B-16", "ViT-B-32"], help="open_clip model names")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (T)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (model) after a warm-up round")
    parser.add_argument("--texts", type=int, default=10, help="class texts encoded in each training step")
    parser.add_argument(
        "--description-words",
        type=int,
        default=0,
        help="lengthen each class text by 4*N words (0: short class names; 15 fills the 77-token context)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the model processes")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory processes")
    parser.add_argument("--loader-repeats", type=int, default=6, help="raw clips timed (4 prepared per raw)")
    parser.add_argument("--no-loader", dest="loader", action="store_false", help="skip the loader measurement")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args(argv)
    clock = "wall time" if args.device.startswith("cuda") else "process CPU time"
    print(
        f"torch {torch.__version__}, device {args.device}, {args.threads} torch thread(s), batch 1, T={args.frames}, "
        f"{args.texts} class texts (+{4 * args.description_words} words) per training step; kinds timed in turn, "
        f"{clock}, median of {args.repeats} rounds",
        flush=True,
    )
    rows = run_benchmark(
        args.backbones,
        args.frames,
        args.repeats,
        args.texts,
        args.description_words,
        args.device,
        args.threads,
        args.memory,
    )
    print(format_table(rows), flush=True)
    result = {"model": rows}
    if args.loader:
        with tempfile.TemporaryDirectory(prefix="ezclip-bench-") as folder:
            loader = measure_loader(Path(folder), args.loader_repeats, frames=args.frames)
        loader.update(feeding(loader, rows))
        print(format_loader(loader))
        result["loader"] = loader
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
