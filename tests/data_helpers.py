"""Small real videos for the data tests: a frame's colour encodes its index."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STEP = 8  # red = STEP * frame index survives H.264 to within a few levels


@dataclass(frozen=True)
class Frames:
    """A picklable sampler (it can travel to the decoder's helper) that always asks for the same frames."""

    indices: tuple[int, ...]

    def __call__(self, frame_count: int) -> np.ndarray:
        return np.array(self.indices)


def frame_colour(index: int) -> tuple[int, int, int]:
    return (STEP * index) % 256, 255 - (STEP * index) % 256, 128


def frame_indices(frames: np.ndarray) -> list[int]:
    """Recover the frame indices from decoded frames (..., H, W, 3) or (..., 3, H, W) via their mean red."""
    frames = np.asarray(frames)
    red = frames[..., 0, :, :] if frames.shape[-1] != 3 else frames[..., 0]
    means = red.reshape(-1, red.shape[-2] * red.shape[-1]).astype(float).mean(axis=1)
    return [int(round(m / STEP)) for m in means]


def make_video(
    path: Path,
    num_frames: int = 32,
    width: int = 64,
    height: int = 48,
    fps: int = 25,
    faststart: bool = False,
    keyint: int | None = None,
    textured: bool = False,
    container: str | None = None,
    codec: str = "libx264",
) -> Path:
    """Write an H.264 (yuv420p) video whose frame i is a solid ``frame_colour(i)``.

    ``faststart`` puts the index (moov) first, so a truncated copy still opens and fails while decoding.
    ``keyint``: a keyframe every that many frames (default: x264's). ``textured``: random pixels in the top
    quarter (bigger packets, which ``damage_packet`` can hit; read indices from the bottom half then).
    ``container``: a format name (e.g. "matroska", "avi") instead of the one the file name implies.
    ``codec``: another encoder, e.g. "mpeg4" (MPEG-4 part 2 with B-frames, as in UCF101's AVI files).
    """
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format=container, options=options) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "10", "preset": "ultrafast", **({"g": str(keyint)} if keyint else {})}
        else:
            stream.codec_context.max_b_frames, stream.codec_context.bit_rate = 2, 2_000_000
        for i in range(num_frames):
            image = np.empty((height, width, 3), np.uint8)
            image[:] = frame_colour(i)
            if textured:
                image[: height // 4] = rng.integers(0, 256, (height // 4, width, 3))
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_scene_video(path: Path, num_frames: int = 12, width: int = 480, height: int = 360, fps: int = 25) -> Path:
    """A video that looks more like footage than solid colours: smooth moving gradients and a bright
    square with sharp edges; for comparing resizing paths."""
    import av

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "12", "preset": "ultrafast"}
        for i in range(num_frames):
            image = np.stack(
                [
                    128 + 120 * np.sin((x + 6 * i) / 23.0),
                    128 + 120 * np.cos((y - 4 * i) / 17.0),
                    128 + 120 * np.sin((x + y + 3 * i) / 41.0),
                ],
                axis=-1,
            ).astype(np.uint8)
            left = (40 + 9 * i) % (width - 80)
            image[height // 3 : height // 3 + 60, left : left + 60] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def damage_packet(source: Path, path: Path, index: int) -> Path:
    """A copy of ``source`` whose ``index``-th video packet (decode order) has its slice data zeroed,
    keeping the container's index and the NAL headers intact: it opens, and that frame does not decode."""
    import av

    with av.open(str(source)) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
    position, size = packets[index].pos, packets[index].size
    data = bytearray(source.read_bytes())
    data[position + 8 : position + size] = bytes(size - 8)  # 4-byte NAL length + a few header bytes kept
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def write_still_image(path: Path, kind: str) -> Path:
    """A 24x16 still image in the format ``kind`` ('PNG', 'JPEG', 'GIF', 'BMP', 'WebP'), whatever the file name."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 24, 3), (200, 40, 90), np.uint8)).save(path, format=kind.upper())
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


def hanging_decoder(path: str, sampler, **options):
    """A decoder that never returns for paths containing 'hang' (simulates a decord deadlock)."""
    if "hang" in Path(path).name:
        while True:
            time.sleep(3600)
    from ezclip.data.decoding import decode_video

    return decode_video(path, sampler, **options)


def crashing_decoder(path: str, sampler, **options):
    """A decoder that kills its own process for paths containing 'crash' (simulates a segfault)."""
    import os

    if "crash" in Path(path).name:
        os._exit(139)
    from ezclip.data.decoding import decode_video

    return decode_video(path, sampler, **options)


def work_or_crash(job: tuple) -> dict:
    """A stand-in for ``ezclip.prep.prepare._work`` whose worker dies on paths containing 'crash'."""
    import os

    relative = job[2]
    if "crash" in relative:
        os._exit(139)
    return {"path": relative, "status": "ok"}
