"""SynthMotion: a synthetic video dataset of shapes that change colour, rendered with numpy.

One textured background, one shape (with a contrasting orientation mark) at a random place, size
and angle, whose colour changes from one named colour to another at a random moment in the middle
of the clip, or stays the same. The classes are made of what a CLIP trained on single captioned
frames can see in a frame (its colour), and of the order of the frames: they come in
time-reversal pairs ("turning from red to blue" / "turning from blue to red"). In val and test
each pair is rendered once and its frame-reversed copy is the sample of the paired class, so a
frame-order-blind model is at chance (50%) between them. Videos are real H.264 mp4 files (PyAV,
libx264, yuv420p) in the project's list formats (docs/design.md §5). `sample_frame` renders single
frames with a caption in the same words as the class descriptions, to pretrain the demo's
nano-CLIP.
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ezclip.runs.progress import progress_bar

VERSION = 2

# Named colours (RGB, 0..1) so captions can say them.
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.75, 0.15),
    "blue": (0.1, 0.25, 0.95),
    "yellow": (0.95, 0.9, 0.1),
    "purple": (0.6, 0.15, 0.8),
    "orange": (1.0, 0.55, 0.0),
    "cyan": (0.0, 0.85, 0.9),
    "pink": (1.0, 0.45, 0.75),
}
COLOR_NAMES = tuple(COLORS)
# The colours of the classes: far apart, so the nano-CLIP's frame features tell them apart.
CLASS_COLORS = ("red", "green", "blue", "yellow")
_COLOR_PAIRS = tuple(itertools.combinations(CLASS_COLORS, 2))
# (start colour, end colour) of every class: each pair of CLASS_COLORS in both orders (a
# time-reversal pair, ids 2k and 2k+1), then one class per colour that stays the same.
CHANGES: tuple[tuple[str, str], ...] = tuple(c for a, b in _COLOR_PAIRS for c in ((a, b), (b, a))) + tuple(
    (c, c) for c in CLASS_COLORS
)


def _class(start: str, end: str) -> tuple[str, str]:
    # Descriptions use the words of the frame captions (colour names, "shape") so a caption-pretrained CLIP has them.
    if start == end:
        return f"staying {start}", f"a {start} shape stays {start}"
    return f"turning from {start} to {end}", f"a {start} shape turns {end}"


# (name, description) of every class, in class-id order.
CLASSES: tuple[tuple[str, str], ...] = tuple(_class(start, end) for start, end in CHANGES)
CLASS_NAMES: tuple[str, ...] = tuple(name for name, _ in CLASSES)
# Time-reversal pairs (class ids): the frame-reversed video of one is a video of the other.
PAIRS: tuple[tuple[int, int], ...] = tuple((2 * k, 2 * k + 1) for k in range(len(_COLOR_PAIRS)))
# Base-to-novel: whole reversal pairs stay on one side, so novel pairs test unseen colour changes.
NOVEL_CLASSES: tuple[int, ...] = (*PAIRS[-2], *PAIRS[-1], len(CHANGES) - 1)
BASE_CLASSES: tuple[int, ...] = tuple(c for c in range(len(CHANGES)) if c not in NOVEL_CLASSES)

SHAPES = ("square", "circle", "triangle", "star", "cross", "diamond")
# Shape radius as a fraction of the frame side.
MIN_RADIUS, MAX_RADIUS = 0.09, 0.24
# Mark: a disc at this canonical offset (up, in shape units) and radius.
MARK_OFFSET, MARK_RADIUS = 0.55, 0.32
# The new colour starts at a frame drawn uniformly from [m, 1 - m] of the clip (m = CHANGE_MARGIN):
# symmetric, so neither colour fills more of a clip on average, which an order-blind model could read as order.
CHANGE_MARGIN = 0.35


def class_slug(name: str) -> str:
    return name.replace(" ", "_")


# --- rendering ---------------------------------------------------------------------------------


@dataclass
class Scene:
    """One clip's fixed look (background, shape) and per-frame (T,) arrays.

    Positions and radius are fractions of the frame side; angle in radians (positive turns
    clockwise on screen, 0 = mark pointing up); alpha is visibility in [0, 1]; colors names
    the shape's colour in each frame.
    """

    background: np.ndarray  # (H, W, 3) float32 in [0, 1]
    shape: str
    colors: tuple[str, ...]
    cx: np.ndarray
    cy: np.ndarray
    radius: np.ndarray
    angle: np.ndarray
    alpha: np.ndarray


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates as fractions of the side: (H, W) x and y (cached; do not modify)."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(coords, coords)


@functools.lru_cache(maxsize=64)
def _interpolation_matrix(cells: int, size: int) -> np.ndarray:
    """(size, cells) weights of linear interpolation from `cells` knots to `size` samples."""
    position = np.linspace(0, cells - 1, size)
    return np.maximum(0.0, 1.0 - np.abs(position[:, None] - np.arange(cells)[None, :]))


def render_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Textured background: muted low-frequency colour noise + fine grain -> (H, W, 3) float32."""
    base = rng.uniform(0.25, 0.6, size=3)
    cells = int(rng.integers(2, 6))
    coarse = rng.normal(0, 0.12, size=(cells, cells, 3))
    # Bilinear upsampling of the coarse noise as two small matrix products.
    upsample = _interpolation_matrix(cells, size)  # (size, cells)
    rows = (upsample @ coarse.reshape(cells, cells * 3)).reshape(size, cells, 3)  # (H, cells, 3)
    smooth = np.einsum("hjc,wj->hwc", rows, upsample)  # (H, W, 3)
    grain = rng.normal(0, 0.03, size=(size, size, 1)).astype(np.float32)
    if rng.random() < 0.5:  # faint stripes: a second texture family
        period = rng.uniform(4, 12)
        x, y = _grid(size)
        phase = np.sin((x * np.cos(rng.uniform(0, np.pi)) + y) * size * 2 * np.pi / period)
        grain = grain + 0.03 * phase[..., None]
    return np.clip(base + smooth + grain, 0, 1).astype(np.float32)


def _shape_metric(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A distance-like metric in canonical shape units: < 1 inside, ~1 on the outline."""
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) * 1.15
    if shape == "circle":
        return np.sqrt(u * u + v * v)
    if shape == "diamond":
        return (np.abs(u) * 1.4 + np.abs(v)) * 0.85
    if shape == "triangle":  # apex up (v < 0 is up on screen)
        apothem = 0.5
        faces = [(0.0, 1.0), (np.sqrt(3) / 2, -0.5), (-np.sqrt(3) / 2, -0.5)]
        return np.max([u * a + v * b for a, b in faces], axis=0) / apothem
    if shape == "star":
        rho = np.sqrt(u * u + v * v)
        phi = np.arctan2(u, -v)  # 0 at "up"
        return rho / (0.7 + 0.3 * np.cos(5 * phi))
    if shape == "cross":
        bar = 0.4
        a = np.maximum(np.abs(u), np.abs(v) * bar / 1.0 * 2.5)
        b = np.maximum(np.abs(v), np.abs(u) * bar / 1.0 * 2.5)
        return np.minimum(a, b) * 1.05
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def _coverage(metric: np.ndarray, radius_px: np.ndarray) -> np.ndarray:
    """Antialiased coverage from a metric (1 on the edge), ~1 pixel of soft edge."""
    return np.clip((1.0 - metric) * radius_px + 0.5, 0.0, 1.0)


def render_scene(scene: Scene) -> np.ndarray:
    """Scene -> (T, H, W, 3) uint8 frames."""
    size = scene.background.shape[0]
    x, y = _grid(size)
    T = len(scene.cx)
    dx = x[None] - scene.cx[:, None, None]  # (T, H, W)
    dy = y[None] - scene.cy[:, None, None]
    cos = np.cos(scene.angle)[:, None, None].astype(np.float32)
    sin = np.sin(scene.angle)[:, None, None].astype(np.float32)
    r = scene.radius[:, None, None].astype(np.float32)
    # Screen -> canonical shape coordinates (inverse rotation, then scale by the radius).
    u = (cos * dx + sin * dy) / r
    v = (-sin * dx + cos * dy) / r
    radius_px = r * size
    body = _coverage(_shape_metric(scene.shape, u, v), radius_px)  # (T, H, W)
    mark = _coverage(np.sqrt(u * u + (v + MARK_OFFSET) ** 2) / MARK_RADIUS, radius_px * MARK_RADIUS)
    alpha = scene.alpha[:, None, None].astype(np.float32)
    color = np.asarray([COLORS[c] for c in scene.colors], dtype=np.float32)[:, None, None, :]  # (T, 1, 1, 3)
    mark_color = np.where(color.mean(axis=-1, keepdims=True) > 0.45, 0.05, 0.97).astype(np.float32)  # (T, 1, 1, 1)
    frames = np.broadcast_to(scene.background, (T, size, size, 3))
    a = (alpha * body)[..., None]
    frames = frames * (1 - a) + color * a
    m = (alpha * body * mark)[..., None]
    frames = frames * (1 - m) + mark_color * m
    return (frames * 255 + 0.5).clip(0, 255).astype(np.uint8)


def random_scene(rng: np.random.Generator, class_id: int, size: int, frames: int) -> Scene:
    """A random clip of one class: a still shape whose colour changes (or not) in the middle of the clip."""
    start, end = CHANGES[class_id]
    radius = rng.uniform(0.11, 0.17)
    margin = radius + 0.04
    first = max(1, round(CHANGE_MARGIN * frames))
    change = int(rng.integers(first, frames - first + 1))  # the first frame of the new colour
    one = lambda value: np.full(frames, value, np.float32)  # noqa: E731
    return Scene(
        background=render_background(rng, size),
        shape=SHAPES[int(rng.integers(len(SHAPES)))],
        colors=(start,) * change + (end,) * (frames - change),
        cx=one(rng.uniform(margin, 1 - margin)),
        cy=one(rng.uniform(margin, 1 - margin)),
        radius=one(radius),
        angle=one(rng.uniform(-np.pi, np.pi)),
        alpha=one(1.0),
    )


# --- single frames with captions (nano-CLIP pretraining) -----------------------------------------

_DIRECTIONS = ("up", "up right", "right", "down right", "down", "down left", "left", "up left")


def _position_words(cx: float, cy: float) -> str:
    horizontal = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "center"
    vertical = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    if horizontal == "center" and vertical == "middle":
        return "in the center"
    if horizontal == "center":
        return f"at the {vertical}"
    if vertical == "middle":
        return f"on the {horizontal}"
    return f"at the {vertical} {horizontal}"


def frame_caption(
    shape: str,
    color: str,
    cx: float,
    cy: float,
    radius: float,
    angle: float,
    alpha: float,
    appearance: bool = False,
) -> str:
    """What one frame shows: size, position, mark direction, visibility, and with `appearance` the
    colour and shape name (the words of the class descriptions; see `ezclip.demo.nano`)."""
    if alpha < 0.2:
        return "an empty background, the shape is invisible"
    size = "small" if radius < 0.13 else "big" if radius > 0.18 else "medium"
    direction = _DIRECTIONS[int(np.round(angle / (np.pi / 4))) % 8]
    faint = "faint " if alpha < 0.7 else ""
    noun = f"{color} {shape}" if appearance else "shape"
    return f"a {faint}{size} {noun} {_position_words(cx, cy)}, its mark pointing {direction}"


def sample_frames(
    rng: np.random.Generator, size: int, count: int, appearance: bool = False
) -> tuple[np.ndarray, list[str]]:
    """`count` random single-frame scenes -> ((count, H, W, 3) uint8, captions)."""
    images, captions = np.empty((count, size, size, 3), np.uint8), []
    for i in range(count):
        image, caption = sample_frame(rng, size, appearance)
        images[i] = image
        captions.append(caption)
    return images, captions


def sample_frame(rng: np.random.Generator, size: int, appearance: bool = False) -> tuple[np.ndarray, str]:
    """One random frame (any position, size, angle, visibility) -> ((H, W, 3) uint8, caption)."""
    radius = float(rng.uniform(MIN_RADIUS, MAX_RADIUS))
    cx, cy = rng.uniform(radius * 0.8, 1 - radius * 0.8, size=2)
    angle = float(rng.uniform(-np.pi, np.pi))
    draw = rng.random()
    alpha = 0.0 if draw < 0.1 else float(rng.uniform(0.3, 0.7)) if draw < 0.25 else 1.0
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    color = COLOR_NAMES[int(rng.integers(len(COLOR_NAMES)))]
    one = lambda value: np.array([value], np.float32)  # noqa: E731
    scene = Scene(render_background(rng, size), shape, (color,), one(cx), one(cy), one(radius), one(angle), one(alpha))
    return render_scene(scene)[0], frame_caption(shape, color, cx, cy, radius, angle, alpha, appearance)


# --- video files -----------------------------------------------------------------------------------


def write_mp4(path: Path, frames: np.ndarray, fps: int = 8) -> None:
    """(T, H, W, 3) uint8 -> H.264 mp4 (yuv420p, so H and W must be even), nearly lossless."""
    import av

    T, H, W, _ = frames.shape
    if H % 2 or W % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sizes, got {H}x{W}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        # Low CRF keeps reversed pairs within a few grey levels; one thread for byte-identical output.
        stream.options = {"crf": "12", "preset": "veryfast", "threads": "1"}
        stream.codec_context.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_list(path: Path, rows: list[tuple[str, int]]) -> None:
    path.write_text("".join(f"{p} {label}\n" for p, label in rows))


def _write_labels(path: Path, ids: tuple[int, ...], with_description: bool = False) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "name", "description"] if with_description else ["id", "name"])
        for new_id, class_id in enumerate(ids):
            name, description = CLASSES[class_id]
            writer.writerow([new_id, name, description] if with_description else [new_id, name])


def generate(
    out_dir: str | Path,
    videos_per_class: int = 60,
    val_per_class: int | None = None,
    test_per_class: int | None = None,
    size: int = 64,
    frames: int = 16,
    seed: int = 0,
    fps: int = 8,
    progress: bool = True,
) -> dict:
    """Render SynthMotion into `out_dir`; returns a summary dict (also written as meta.json).

    `videos_per_class`: training videos per class; val/test default to a third of it (at least 2).
    `size`: frame side in pixels (even); `frames`: frames per video. Same seed -> same files.
    decord 0.6's `get_batch` fails on 48x48 videos (measured; 32, 40, 56, 64, 80, 96 decode).
    """
    if size % 2 or size < 16:
        raise ValueError(f"size must be even and >= 16 (H.264 yuv420p), got {size}")
    if frames < 2 or videos_per_class < 1:
        raise ValueError(f"need frames >= 2 and videos_per_class >= 1, got {frames} and {videos_per_class}")
    held_out = max(2, videos_per_class // 3)
    counts = {
        "train": videos_per_class,
        "val": held_out if val_per_class is None else val_per_class,
        "test": held_out if test_per_class is None else test_per_class,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows: dict[str, list[tuple[str, int]]] = {}
    total = sum(counts.values()) * len(CLASSES)
    with progress_bar(progress) as bar:
        task = bar.add_task("rendering SynthMotion", total=total)
        for split, per_class in counts.items():
            rows[split] = _render_split(out, split, per_class, size, frames, seed, fps, lambda: bar.advance(task))
    _write_metadata(out, rows)
    summary = {
        "version": VERSION,
        "seed": seed,
        "size": size,
        "frames": frames,
        "fps": fps,
        "num_classes": len(CLASSES),
        "counts": {split: len(r) for split, r in rows.items()},
        "per_class": counts,
        "base_classes": len(BASE_CLASSES),
        "novel_classes": len(NOVEL_CLASSES),
        "seconds": round(time.perf_counter() - start, 2),
    }
    # Timing is not part of the deterministic files.
    (out / "meta.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "seconds"}, indent=2) + "\n")
    return summary


def _render_split(out: Path, split: str, per_class: int, size: int, frames: int, seed: int, fps: int, advance):
    """Render and write one split; returns its list rows (relative path, class id), class-major."""
    root = np.random.SeedSequence([seed, {"train": 0, "val": 1, "test": 2}[split]])
    seeds = root.spawn(len(CLASSES) * per_class)
    first_of = {b: a for a, b in PAIRS}
    rows: list[tuple[str, int]] = []
    for class_id in range(len(CLASSES)):
        for index in range(per_class):
            reverse = split != "train" and class_id in first_of
            source = first_of[class_id] if reverse else class_id
            # The reversed clip re-renders the first class's scene from the same seed: identical frames.
            rng = np.random.default_rng(seeds[source * per_class + index])
            clip = render_scene(random_scene(rng, source, size, frames))
            if reverse:
                clip = clip[::-1]
            relative = f"videos/{split}/{class_slug(CLASS_NAMES[class_id])}/{split}_{class_id:02d}_{index:05d}.mp4"
            write_mp4(out / relative, clip, fps)
            rows.append((relative, class_id))
            advance()
    return rows


def _write_metadata(out: Path, rows: dict[str, list[tuple[str, int]]]) -> None:
    for split, split_rows in rows.items():
        _write_list(out / f"{split}.txt", split_rows)
    all_ids = tuple(range(len(CLASSES)))
    _write_labels(out / "labels.csv", all_ids)
    _write_labels(out / "descriptions.csv", all_ids, with_description=True)
    _write_labels(out / "base_labels.csv", BASE_CLASSES)
    _write_labels(out / "novel_labels.csv", NOVEL_CLASSES)
    base_index = {c: i for i, c in enumerate(BASE_CLASSES)}
    novel_index = {c: i for i, c in enumerate(NOVEL_CLASSES)}
    _write_list(out / "base_train.txt", [(p, base_index[c]) for p, c in rows["train"] if c in base_index])
    _write_list(out / "base_val.txt", [(p, base_index[c]) for p, c in rows["val"] if c in base_index])
    _write_list(out / "novel_test.txt", [(p, novel_index[c]) for p, c in rows["test"] if c in novel_index])
    pairs = [{"ids": [a, b], "names": [CLASS_NAMES[a], CLASS_NAMES[b]]} for a, b in PAIRS]
    (out / "pairs.json").write_text(json.dumps(pairs, indent=2) + "\n")


# --- command line ------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--videos-per-class", type=int, default=60, help="training videos per class")
    parser.add_argument("--val-per-class", type=int, default=None, help="default: a third of --videos-per-class")
    parser.add_argument("--test-per-class", type=int, default=None, help="default: a third of --videos-per-class")
    parser.add_argument("--size", type=int, default=64, help="frame side in pixels (even)")
    parser.add_argument("--frames", type=int, default=16, help="frames per video")
    parser.add_argument("--seed", type=int, default=0, help="seed of every rendered video (same seed, same files)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    summary = generate(
        args.out,
        videos_per_class=args.videos_per_class,
        val_per_class=args.val_per_class,
        test_per_class=args.test_per_class,
        size=args.size,
        frames=args.frames,
        seed=args.seed,
        progress=args.progress,
    )
    print(json.dumps(summary, indent=2))
    return 0
