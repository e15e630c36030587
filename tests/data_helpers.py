"""Small real videos for the data tests: a frame's colour encodes its index."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

STEP = 8  # red = STEP * frame index survives H.264 to within a few levels


def frame_colour(index: int) -> tuple[int, int, int]:
    return (STEP * index) % 256, 255 - (STEP * index) % 256, 128


def frame_indices(frames: np.ndarray) -> list[int]:
    """Recover the frame indices from decoded frames (..., H, W, 3) or (..., 3, H, W) via their mean red."""
    frames = np.asarray(frames)
    red = frames[..., 0, :, :] if frames.shape[-1] != 3 else frames[..., 0]
    means = red.reshape(-1, red.shape[-2] * red.shape[-1]).astype(float).mean(axis=1)
    return [int(round(m / STEP)) for m in means]


def make_video(
    path: Path, num_frames: int = 32, width: int = 64, height: int = 48, fps: int = 25, faststart: bool = False
) -> Path:
    """Write an H.264 (yuv420p) mp4 whose frame i is a solid ``frame_colour(i)``.

    ``faststart`` puts the index (moov) first, so a truncated copy still opens and fails while decoding.
    """
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "10", "preset": "ultrafast"}
        for i in range(num_frames):
            image = np.empty((height, width, 3), np.uint8)
            image[:] = frame_colour(i)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_frame_folder(path: Path, num_frames: int = 20, width: int = 40, height: int = 30) -> Path:
    """A folder of img_00001.jpg... whose frame i (file i+1) has colour ``frame_colour(i)``."""
    from PIL import Image

    path.mkdir(parents=True, exist_ok=True)
    for i in range(num_frames):
        image = np.empty((height, width, 3), np.uint8)
        image[:] = frame_colour(i)
        Image.fromarray(image).save(path / f"img_{i + 1:05d}.jpg", quality=95)
    return path


def make_truncated(source: Path, path: Path) -> Path:
    data = source.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def make_garbage(path: Path, size: int = 5000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def hanging_decoder(path: str, sampler):
    """A decoder that never returns for paths containing 'hang' (simulates a decord deadlock)."""
    if "hang" in Path(path).name:
        while True:
            time.sleep(3600)
    from ezclip.data.decoding import decode_video

    return decode_video(path, sampler)


def crashing_decoder(path: str, sampler):
    """A decoder that kills its own process for paths containing 'crash' (simulates a segfault)."""
    import os

    if "crash" in Path(path).name:
        os._exit(139)
    from ezclip.data.decoding import decode_video

    return decode_video(path, sampler)
