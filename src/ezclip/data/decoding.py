"""Read only the sampled frames of a video, at the size training needs, and never hang on a bad one.

``decode_video(path, sampler, short_side=None, allow_images=False)`` opens a video once, asks
``sampler(frame_count)`` for the frame indices, and decodes just those:

- files: PyAV (``VideoFile``). The packet index (demuxing reads the file but decodes nothing) gives
  the frame count, every frame's timestamp and the keyframes; each sampled frame is reached by a
  seek to the keyframe before it, or by decoding on when it lies in the group of pictures being
  decoded, and is recognised by its timestamp, never by counting. A frame FFmpeg flags as corrupt,
  or a frame missing from the sequence, spoils every later frame up to the next keyframe (they
  are predicted from it): sampling one of those is a read error, so a damaged file is skipped and
  counted like any other bad video instead of feeding neighbouring or concealed frames. decord is
  only a fallback for files PyAV cannot open or index: decord 0.6 counts decoded frames instead of
  reading their timestamps, so when its decoder drops a damaged frame every later frame of the
  group comes back one position early, without an error, and ``fault_tol`` (set anyway, for the
  frames it does count as recovered) does not see it.
- frame folders (``img_00001.jpg``... 1-indexed): read image by image with PIL.

With ``short_side``, frames whose short side is larger are scaled down to it (long side rounded as
torchvision rounds it) inside the decoder, so what crosses the helper's pipe and sits in a worker
is the size training needs, whatever the source resolution; smaller frames are never scaled up.
Still images (PNG, JPEG, GIF, BMP, WebP) are recognised by their first bytes and refused unless
``allow_images``: FFmpeg would read them as one-frame videos without a word.

``SafeDecoder`` runs a decode function in a persistent helper subprocess (one per process that
uses it, i.e. one per DataLoader worker) and waits at most ``timeout`` seconds for the answer.
Decoders can deadlock inside C code, where no Python-level timeout can interrupt them; a separate
process can always be killed. On a timeout or a crash (a segfault in a decoder on a garbage file)
the helper is killed and a fresh one starts on the next request. The helper is a fresh
interpreter (``subprocess.Popen``), not a ``multiprocessing.Process``: DataLoader workers are
daemonic and may not have multiprocessing children, and a fresh interpreter inherits no locks or
threads from its parent.

Everything a failure looks like surfaces as ``VideoReadError(path, reason)``.
This module and ``sampling`` do not import torch, to keep the helper's start-up short (~0.3 s).
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import re
import select
import signal
import struct
import subprocess
import sys
import time
import weakref
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# (path, sampler, **options) -> uint8 (N, H, W, 3); sampler: frame count -> int indices (N,).
Sampler = Callable[[int], np.ndarray]
DecodeFn = Callable[..., np.ndarray]

FRAME_FILE = re.compile(r"img_(\d+)\.jpg$")
_HEADER = struct.Struct("<QQ")  # sizes of the pickled part and the raw payload of each message on the pipes
_STARTUP_TIMEOUT = 120.0  # s; the helper's imports, which a busy machine can slow down
# decord: a fraction, so that a single frame it replaces by a neighbour ("recovered") is an error.
_DECORD_FAULT_TOL = "0.000001"
_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}  # the DIB header sizes a real BMP file has


class VideoReadError(RuntimeError):
    """A video that cannot be read; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):  # keep both fields through pickling (the helper sends these back)
        return type(self), (self.path, self.reason)


class UnopenableVideo(VideoReadError):
    """PyAV cannot open the file or read its packet index (decord may still)."""


# --------------------------------------------------------------------------------------------
# Decoders (run inside the helper)
# --------------------------------------------------------------------------------------------


def decode_video(path: str, sampler: Sampler, short_side: int | None = None, allow_images: bool = False) -> np.ndarray:
    """Decode the frames ``sampler(frame_count)`` of a video file or frame folder.

    Args:
        path: a video file (anything FFmpeg reads) or a folder of ``img_00001.jpg``... frames.
        sampler: frame count -> int indices (N,) in [0, frame_count); repeats allowed.
        short_side: scale frames whose short side is larger down to this (None: full size).
        allow_images: read a still image file as a one-frame video instead of refusing it.
    Returns:
        uint8 (N, H, W, 3), RGB, frames in the order of the indices.
    Raises:
        VideoReadError: missing, empty, truncated, damaged or undecodable video, or a still image.
    """
    path = str(path)
    if os.path.isdir(path):
        return decode_frame_folder(path, sampler, short_side)
    if not os.path.isfile(path):
        raise VideoReadError(path, "no such file")
    if not allow_images and (kind := still_image_kind(path)):
        raise VideoReadError(path, f"a still image ({kind}), not a video")
    try:
        video = VideoFile(path)
    except UnopenableVideo as pyav_error:  # decord has its own FFmpeg build
        try:
            return decode_decord(path, sampler, short_side)
        except VideoReadError as decord_error:
            raise VideoReadError(path, f"PyAV: {pyav_error.reason}; decord: {decord_error.reason}") from None
    with video:
        return _decode_sampled(video, sampler, short_side)


def still_image_kind(path: str) -> str | None:
    """'PNG', 'JPEG', 'GIF', 'BMP' or 'WebP' when the file starts like one, else None."""
    with open(path, "rb") as f:
        head = f.read(18)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    # "BM" alone is too weak a sign: also the zero reserved bytes and a known DIB header size.
    if head[:2] == b"BM" and head[6:10] == bytes(4) and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "BMP"
    return None


def resized_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """(height, width) once the short side is scaled down to ``short_side``, the long side rounded
    down as torchvision's ``resize`` rounds it (so a later resize to the same short side is a no-op);
    unchanged when ``short_side`` is None or not below the short side (never upscale)."""
    if short_side is None or min(height, width) <= short_side:
        return height, width
    if width <= height:
        return int(short_side * height / width), short_side
    return short_side, int(short_side * width / height)


def _indices(path: str, sampler: Sampler, frame_count: int) -> np.ndarray:
    """Call the sampler and check its answer against the frame count."""
    if frame_count < 1:
        raise VideoReadError(path, "video has no frames")
    indices = np.asarray(sampler(frame_count), dtype=np.int64).reshape(-1)
    if indices.size == 0 or indices.min() < 0 or indices.max() >= frame_count:
        raise VideoReadError(path, f"sampler gave indices outside [0, {frame_count}): {indices.tolist()}")
    return indices


def _check_frames(path: str, frames: np.ndarray, n: int) -> np.ndarray:
    if frames.ndim != 4 or frames.shape[0] != n or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise VideoReadError(path, f"decoder returned {frames.dtype} {frames.shape}, expected uint8 ({n}, H, W, 3)")
    return frames


class VideoFile:
    """A video file opened with PyAV, with the index of its frames (one packet per frame).

    ``frame_count``, ``rate`` (frames per second, a Fraction), ``height``, ``width``, and
    ``frames(wanted)``, which decodes frames and checks that they can be trusted. Use it as a
    context manager. Every failure, when opening or decoding, is a ``VideoReadError``.
    """

    def __init__(self, path: str):
        import av

        self.path = str(path)
        try:
            self._container = av.open(self.path)
        except Exception as e:  # av.error.* for anything FFmpeg cannot open
            raise UnopenableVideo(self.path, f"cannot open ({_describe(e)})") from None
        try:
            self._stream = self._container.streams.video[0]  # IndexError: no video stream
            self._stream.thread_count = 1  # one decoder thread per process: the parallelism is the workers'
            packets = [(p.pts, p.dts, p.is_keyframe, p.size) for p in self._container.demux(self._stream)]
        except Exception as e:
            self.close()
            raise UnopenableVideo(self.path, f"cannot read the packet index ({_describe(e)})") from None
        # Empty packets: the flush packet at the end (no timestamp), and frames a container lists
        # without data (AVI drop frames), which the header's count includes.
        listed = sum(1 for pts, _, _, size in packets if size or pts is not None)
        packets = [(pts, dts, key) for pts, dts, key, size in packets if size]
        declared = self._stream.frames
        if declared > listed:  # demuxing stops quietly where a file is cut off
            self.close()
            raise VideoReadError(self.path, f"the header lists {declared} frames, the file holds {listed} (truncated?)")
        self.frame_count = len(packets)
        self.rate = self._stream.average_rate or self._stream.guessed_rate
        self.height, self.width = self._stream.codec_context.height, self._stream.codec_context.width
        stamps = [pts for pts, _, _ in packets]
        if None in stamps or len(set(stamps)) < len(stamps):
            # No usable timestamps: frames are counted from the start, and never seeked to.
            self._stamps: list[int] | None = None
            self._keyframes = [0]
        else:
            order = sorted(range(len(packets)), key=stamps.__getitem__)  # decode order -> presentation order
            self._stamps = [stamps[i] for i in order]
            self._keyframes = [i for i, j in enumerate(order) if packets[j][2]] or [0]
            # Seek to a keyframe's decoding timestamp: at or before its presentation timestamp, so a
            # container whose seek index holds decoding times (AVI, MP4) lands on the keyframe itself
            # and one that holds presentation times (Matroska) on it or an earlier one, never later.
            self._seek_points = [packets[j][1] if packets[j][1] is not None else packets[j][0] for j in order]
        self._position = {pts: i for i, pts in enumerate(self._stamps or [])}

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frames(self, wanted: Sequence[int] | None = None) -> Iterator[tuple[int, object]]:
        """Yield ``(index, av.VideoFrame)`` for the sorted, unique frame indices ``wanted`` (None: every frame).

        Raises ``VideoReadError`` when a wanted frame cannot be trusted (FFmpeg flagged it or an
        earlier frame of its group of pictures as corrupt, or a frame between them is missing), was
        never output by the decoder, or lies past where the file ends.
        """
        try:
            yield from self._frames(range(self.frame_count) if wanted is None else wanted)
        except VideoReadError:
            raise
        except Exception as e:  # av.error.* raised while decoding
            raise VideoReadError(self.path, f"cannot decode ({_describe(e)})") from None

    def _frames(self, targets: Sequence[int]) -> Iterator[tuple[int, object]]:
        decoded = None  # the running decode, positioned just after frame `last`
        last = None
        damage = None  # why the frames from `last` up to the next keyframe cannot be trusted
        for target in targets:
            key = self._keyframes[max(bisect_right(self._keyframes, target) - 1, 0)]
            if decoded is None or (self._stamps is not None and (target <= last or key > last)):
                if self._stamps is None:
                    self._container.seek(0)  # no timestamps: decode from the start, counting
                else:  # the keyframe at or before the target
                    self._container.seek(self._seek_points[key], stream=self._stream)
                decoded, last, damage = self._container.decode(self._stream), None, None
            index = None
            for frame in decoded:
                index = self._index(frame, last)
                if frame.key_frame:
                    damage = None
                elif last is not None and index != last + 1:
                    damage = f"frame {last + 1} is missing"
                if frame.is_corrupt:
                    damage = f"frame {index} is damaged"
                last = index
                if index >= target:
                    break
            else:
                ends = f"after frame {last}" if last is not None else "before its first frame"
                raise VideoReadError(self.path, f"the stream ends {ends}; its index lists {self.frame_count} frames")
            if index != target:
                raise VideoReadError(self.path, f"frame {target} was not decoded (the decoder went on to {index})")
            if damage:
                raise VideoReadError(self.path, f"frame {target} cannot be decoded cleanly: {damage}")
            yield index, frame

    def _index(self, frame, last: int | None) -> int:
        if self._stamps is None:
            return 0 if last is None else last + 1
        if frame.pts not in self._position:
            raise VideoReadError(self.path, f"a decoded frame has a timestamp ({frame.pts}) that no packet has")
        return self._position[frame.pts]


def _decode_sampled(video: VideoFile, sampler: Sampler, short_side: int | None) -> np.ndarray:
    indices = _indices(video.path, sampler, video.frame_count)
    kept = {}
    for index, frame in video.frames(np.unique(indices).tolist()):  # repeats (short videos) decoded once
        kept[index] = _scaled_array(frame.to_ndarray(format="rgb24"), short_side)
    return _check_frames(video.path, np.stack([kept[i] for i in indices.tolist()]), indices.size)


def decode_pyav(path: str, sampler: Sampler, short_side: int | None = None) -> np.ndarray:
    """PyAV alone (no still-image check, no fallback): the sampled frames of a video file, checked."""
    with VideoFile(path) as video:
        return _decode_sampled(video, sampler, short_side)


def decode_decord(path: str, sampler: Sampler, short_side: int | None = None) -> np.ndarray:
    """decord: open, count frames from the container index, ``get_batch`` only the sampled ones.

    The fallback for files PyAV cannot open: decord does not notice a frame its decoder drops (see
    the module docstring).
    """
    try:
        import decord

        reader = decord.VideoReader(path, num_threads=1, fault_tol=_DECORD_FAULT_TOL)
        frame_count = len(reader)
    except Exception as e:  # decord raises DECORDError and plain RuntimeErrors alike
        raise VideoReadError(path, f"cannot open ({_describe(e)})") from None
    indices = _indices(path, sampler, frame_count)
    # Sorted, unique indices: decord seeks forward only, and repeated frames (short videos,
    # clip-major multi-view order) are decoded once.
    unique, inverse = np.unique(indices, return_inverse=True)
    try:
        frames = reader.get_batch(unique.tolist()).asnumpy()
    except Exception as e:  # DECORDLimitReachedError too: a frame replaced by its neighbour
        raise VideoReadError(path, f"cannot decode frames ({_describe(e)})") from None
    frames = np.stack([_scaled_array(frame, short_side) for frame in frames])
    return _check_frames(path, frames[inverse.reshape(-1)], indices.size)  # the sampler's order, repeats included


def decode_frame_folder(path: str, sampler: Sampler, short_side: int | None = None) -> np.ndarray:
    """A folder of ``img_00001.jpg``... (1-indexed); the frame count is the number of such files."""
    from PIL import Image

    files = frame_files(path)  # frame i is files[i]
    indices = _indices(path, sampler, len(files))
    frames = []
    for i in indices.tolist():
        try:
            with Image.open(Path(path) / files[i]) as image:
                frames.append(np.asarray(scaled_image(image, short_side)))
        except Exception as e:
            raise VideoReadError(path, f"cannot read {files[i]} ({_describe(e)})") from None
    if len({f.shape for f in frames}) != 1:
        raise VideoReadError(path, f"frames differ in size: {sorted({f.shape for f in frames})}")
    return _check_frames(path, np.stack(frames), indices.size)


def frame_files(path: str | Path) -> list[str]:
    """The ``img_<n>.jpg`` file names of a frame folder, in frame order (numeric, whatever the padding)."""
    numbered = [(int(m.group(1)), name) for name in os.listdir(path) if (m := FRAME_FILE.match(name))]
    return [name for _, name in sorted(numbered)]


def scaled_image(image, short_side: int | None):
    """A PIL image in RGB, its short side scaled down to ``short_side``; a JPEG is first decoded at
    1/2, 1/4 or 1/8 scale where that still leaves enough pixels.

    PIL's bilinear filter widens with the scale factor, as torchvision's ``antialias=True`` (a port
    of it) does, so the result is what the transforms' own resize gives (measured: identical on RGB
    frames; scaling yuv420p frames in swscale while converting them differed by ~4 levels at 1/5).
    """
    from PIL import Image

    height, width = resized_size(image.height, image.width, short_side)
    if (height, width) == (image.height, image.width):
        return image.convert("RGB")
    image.draft("RGB", (width, height))
    return image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)


def _scaled_array(frame: np.ndarray, short_side: int | None) -> np.ndarray:
    """uint8 (H, W, 3) -> (h, w, 3) scaled as ``scaled_image`` does; the same array when no scaling is needed."""
    if resized_size(*frame.shape[:2], short_side) == frame.shape[:2]:
        return frame
    from PIL import Image

    return np.asarray(scaled_image(Image.fromarray(frame), short_side))


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {_short(error)}"


def _short(error: BaseException, limit: int = 200) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------------------------
# The helper process and its client
# --------------------------------------------------------------------------------------------


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def _write_message(fd: int, obj, payload: np.ndarray | None = None) -> None:
    """Send a pickled object and, raw, an optional array's bytes (no pickling copies of frames)."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    raw = memoryview(np.ascontiguousarray(payload)).cast("B") if payload is not None else memoryview(b"")
    _write_all(fd, memoryview(_HEADER.pack(len(data), raw.nbytes) + data))
    _write_all(fd, raw)


def _read_into(fd: int, buffer: memoryview, deadline: float | None) -> None:
    """Fill buffer from fd; TimeoutError past the deadline, EOFError if the writer died."""
    done = 0
    while done < len(buffer):
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
        n = os.readv(fd, [buffer[done:]])
        if n == 0:
            raise EOFError
        done += n


def _read_message(fd: int, deadline: float | None = None) -> tuple[object, bytearray]:
    """Receive (object, raw payload bytes) sent by ``_write_message``."""
    header = bytearray(_HEADER.size)
    _read_into(fd, memoryview(header), deadline)
    size, payload_size = _HEADER.unpack(header)
    data, payload = bytearray(size), bytearray(payload_size)
    _read_into(fd, memoryview(data), deadline)
    _read_into(fd, memoryview(payload), deadline)
    return pickle.loads(data), payload


def _die_with_parent(parent_pid: int) -> None:
    """Linux: have the kernel SIGKILL this helper when its parent dies, even if it is stuck in C."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the helper still exits on EOF when it is not stuck
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def _serve(parent_pid: int) -> None:
    """Helper main loop: read (decode_fn, path, sampler, options), answer ("ok", (shape, dtype)) + frame
    bytes, or ("error", VideoReadError)."""
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    sys.stdout = sys.stderr  # stray prints of a decoder must not corrupt the protocol
    _write_message(fd_out, "ready")
    while True:
        try:
            (decode_fn, path, sampler, options), _ = _read_message(fd_in)
        except EOFError:
            return
        try:
            frames = np.ascontiguousarray(decode_fn(path, sampler, **options))
            answer, payload = ("ok", (frames.shape, frames.dtype.str)), frames
        except VideoReadError as e:
            answer, payload = ("error", e), None
        except Exception as e:
            answer, payload = ("error", VideoReadError(path, f"{type(e).__name__}: {_short(e)}")), None
        _write_message(fd_out, answer, payload)


class SafeDecoder:
    """Call ``decode_fn(path, sampler, **options)`` in a helper subprocess, with a timeout.

    One instance per process; it notices being copied into a forked DataLoader worker (the pid
    changes) and starts its own helper there. The helper is started lazily and restarted after a
    timeout or crash. ``timeout=None`` (or <= 0) decodes in this process instead: no protection,
    no overhead.

    Args:
        decode_fn: a picklable, importable (module-level) function
            ``(path, sampler, **options) -> uint8 (N, H, W, 3)``.
        timeout: seconds allowed for one video, measured from sending the request.
        options: passed to every ``decode_fn`` call, e.g. ``short_side`` and ``allow_images`` of
            ``decode_video``: frames are scaled down in the helper, before they cross the pipe.
    """

    def __init__(self, decode_fn: DecodeFn = decode_video, timeout: float | None = 30.0, **options):
        self.decode_fn = decode_fn
        self.timeout = timeout if timeout and timeout > 0 else None
        self.options = options
        self._proc: subprocess.Popen | None = None
        self._pid: int | None = None
        self._finalizer: weakref.finalize | None = None  # kills the helper when this object goes
        self.restarts = 0

    def __getstate__(self):  # the helper belongs to the process that started it
        state = self.__dict__.copy()
        state["_proc"], state["_pid"], state["_finalizer"] = None, None, None
        return state

    def __call__(self, path: str, sampler: Sampler) -> np.ndarray:
        """Decode or raise ``VideoReadError`` (including 'timed out' and 'decoder process died')."""
        if self.timeout is None:
            try:
                return self.decode_fn(path, sampler, **self.options)
            except VideoReadError:
                raise
            except Exception as e:
                raise VideoReadError(path, f"{type(e).__name__}: {_short(e)}") from None
        proc = self._helper()
        deadline = time.monotonic() + self.timeout
        try:
            _write_message(proc.stdin.fileno(), (self.decode_fn, str(path), sampler, self.options))
            (status, value), payload = _read_message(proc.stdout.fileno(), deadline)
        except TimeoutError:
            self.close()
            raise VideoReadError(path, f"decoder timed out after {self.timeout:g} s (helper killed)") from None
        except (EOFError, BrokenPipeError, OSError) as e:
            code = proc.poll()
            self.close()
            raise VideoReadError(path, f"decoder process died (exit code {code}, {type(e).__name__})") from None
        if status != "ok":
            raise value
        shape, dtype = value
        return np.frombuffer(payload, dtype=dtype).reshape(shape)  # writable: backed by a bytearray

    def _helper(self) -> subprocess.Popen:
        """The live helper of this process, started if needed."""
        if self._proc is not None and self._pid == os.getpid() and self._proc.poll() is None:
            return self._proc
        if self._pid != os.getpid():
            self._proc = None  # a forked copy of the parent's: not ours to use or kill
        self.close()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        # Decoders and BLAS must not start threads of their own in every worker's helper.
        env.setdefault("OMP_NUM_THREADS", "1")
        proc = subprocess.Popen(
            [sys.executable, "-c", f"from ezclip.data.decoding import _serve; _serve({os.getpid()})"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        _grow_pipe(proc.stdout.fileno())
        self._proc, self._pid = proc, os.getpid()
        self.restarts += 1
        self._finalizer = weakref.finalize(self, _kill, proc)
        try:
            if _read_message(proc.stdout.fileno(), time.monotonic() + _STARTUP_TIMEOUT)[0] != "ready":
                raise EOFError
        except (TimeoutError, EOFError) as e:
            self.close()
            raise RuntimeError(f"the decoder helper did not start ({type(e).__name__})") from None
        return proc

    def close(self) -> None:
        """Kill this process's helper, if any."""
        if self._proc is not None and self._pid == os.getpid():
            _kill(self._proc)
            if self._finalizer is not None:
                self._finalizer.detach()
        self._proc, self._finalizer = None, None


def _grow_pipe(fd: int, size: int = 1 << 20) -> None:
    """Linux: a 1 MiB pipe instead of 64 KiB cuts the context switches per transferred clip."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
    except OSError:  # above /proc/sys/fs/pipe-max-size, or not Linux: keep the default
        pass


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def import_function(spec: str) -> Callable:
    """``'package.module:function'`` -> the function (for configs that name a decoder)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)
