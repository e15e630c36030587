"""Read only the sampled frames of a video, and never hang on a bad one.

``decode_video(path, sampler)`` opens a video once, asks ``sampler(frame_count)`` for the frame
indices, and decodes just those: decord ``VideoReader(num_threads=1).get_batch`` for files, PyAV
when decord fails, and frame folders (``img_00001.jpg``... 1-indexed) read image by image.

``SafeDecoder`` runs a decode function in a persistent helper subprocess (one per process that
uses it, i.e. one per DataLoader worker) and waits at most ``timeout`` seconds for the answer.
decord can deadlock inside C code, where no Python-level timeout can interrupt it; a separate
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
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# (path, sampler) -> uint8 (N, H, W, 3); sampler: frame count -> int indices (N,).
Sampler = Callable[[int], np.ndarray]
DecodeFn = Callable[[str, Sampler], np.ndarray]

_FRAME_FILE = re.compile(r"img_(\d+)\.jpg$")
_HEADER = struct.Struct("<QQ")  # sizes of the pickled part and the raw payload of each message on the pipes
_STARTUP_TIMEOUT = 120.0  # s; the helper's imports, which a busy machine can slow down


class VideoReadError(RuntimeError):
    """A video that cannot be read; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):  # keep both fields through pickling (the helper sends these back)
        return type(self), (self.path, self.reason)


# --------------------------------------------------------------------------------------------
# Decoders (run inside the helper)
# --------------------------------------------------------------------------------------------


def decode_video(path: str, sampler: Sampler) -> np.ndarray:
    """Decode the frames ``sampler(frame_count)`` of a video file or frame folder.

    Args:
        path: a video file (anything FFmpeg reads) or a folder of ``img_00001.jpg``... frames.
        sampler: frame count -> int indices (N,) in [0, frame_count); repeats allowed.
    Returns:
        uint8 (N, H, W, 3), RGB, frames in the order of the indices.
    Raises:
        VideoReadError: missing, empty, truncated or undecodable video.
    """
    path = str(path)
    if os.path.isdir(path):
        return decode_frame_folder(path, sampler)
    if not os.path.isfile(path):
        raise VideoReadError(path, "no such file")
    try:
        return decode_decord(path, sampler)
    except VideoReadError as decord_error:
        if decord_error.reason.startswith("sampler"):
            raise
        try:
            return decode_pyav(path, sampler)
        except VideoReadError as pyav_error:
            raise VideoReadError(path, f"decord: {decord_error.reason}; PyAV: {pyav_error.reason}") from None


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


def decode_decord(path: str, sampler: Sampler) -> np.ndarray:
    """decord: open, count frames from the container index, ``get_batch`` only the sampled ones."""
    try:
        import decord

        reader = decord.VideoReader(path, num_threads=1)
        frame_count = len(reader)
    except Exception as e:  # decord raises DECORDError and plain RuntimeErrors alike
        raise VideoReadError(path, f"cannot open ({type(e).__name__}: {_short(e)})") from None
    indices = _indices(path, sampler, frame_count)
    # Sorted, unique indices: decord seeks forward only, and repeated frames (short videos,
    # clip-major multi-view order) are decoded once.
    unique, inverse = np.unique(indices, return_inverse=True)
    try:
        frames = reader.get_batch(unique.tolist()).asnumpy()
    except Exception as e:
        raise VideoReadError(path, f"cannot decode frames ({type(e).__name__}: {_short(e)})") from None
    if not np.array_equal(unique, indices):
        frames = frames[inverse.reshape(-1)]  # back to the sampler's order, repeats included
    return _check_frames(path, frames, indices.size)


def decode_pyav(path: str, sampler: Sampler) -> np.ndarray:
    """PyAV: decode sequentially up to the last sampled frame, keeping the sampled ones.

    The frame count comes from the stream header; containers that do not store it (some WebM)
    are counted by demuxing packets, which reads the file but decodes nothing.
    """
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            frame_count = stream.frames or sum(1 for p in container.demux(stream) if p.size)
        indices = _indices(path, sampler, frame_count)
        wanted = set(indices.tolist())
        last = int(indices.max())
        kept: dict[int, np.ndarray] = {}
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_count = 1
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    kept[i] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
    except VideoReadError:
        raise
    except Exception as e:  # av.error.* and IndexError (no video stream)
        raise VideoReadError(path, f"cannot decode ({type(e).__name__}: {_short(e)})") from None
    if len(kept) < len(wanted):
        raise VideoReadError(path, f"decoded {len(kept)} of {len(wanted)} sampled frames (truncated video?)")
    return _check_frames(path, np.stack([kept[i] for i in indices.tolist()]), indices.size)


def decode_frame_folder(path: str, sampler: Sampler) -> np.ndarray:
    """A folder of ``img_00001.jpg``... (1-indexed); the frame count is the number of such files."""
    from PIL import Image

    # Frame i is the (i+1)-th file in numeric order, whatever its zero padding.
    files = sorted((int(m.group(1)), name) for name in os.listdir(path) if (m := _FRAME_FILE.match(name)))
    indices = _indices(path, sampler, len(files))
    frames = []
    for i in indices.tolist():
        file = Path(path) / files[i][1]
        try:
            with Image.open(file) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except Exception as e:
            raise VideoReadError(path, f"cannot read {file.name} ({type(e).__name__}: {_short(e)})") from None
    if len({f.shape for f in frames}) != 1:
        raise VideoReadError(path, f"frames differ in size: {sorted({f.shape for f in frames})}")
    return _check_frames(path, np.stack(frames), indices.size)


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
    """Helper main loop: read (decode_fn, path, sampler), answer ("ok", (shape, dtype)) + frame bytes, or
    ("error", VideoReadError)."""
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    sys.stdout = sys.stderr  # stray prints of a decoder must not corrupt the protocol
    _write_message(fd_out, "ready")
    while True:
        try:
            (decode_fn, path, sampler), _ = _read_message(fd_in)
        except EOFError:
            return
        try:
            frames = np.ascontiguousarray(decode_fn(path, sampler))
            answer, payload = ("ok", (frames.shape, frames.dtype.str)), frames
        except VideoReadError as e:
            answer, payload = ("error", e), None
        except Exception as e:
            answer, payload = ("error", VideoReadError(path, f"{type(e).__name__}: {_short(e)}")), None
        _write_message(fd_out, answer, payload)


class SafeDecoder:
    """Call ``decode_fn(path, sampler)`` in a helper subprocess, with a timeout.

    One instance per process; it notices being copied into a forked DataLoader worker (the pid
    changes) and starts its own helper there. The helper is started lazily and restarted after a
    timeout or crash. ``timeout=None`` (or <= 0) decodes in this process instead: no protection,
    no overhead.

    Args:
        decode_fn: a picklable, importable (module-level) function ``(path, sampler) -> uint8 (N, H, W, 3)``.
        timeout: seconds allowed for one video, measured from sending the request.
    """

    def __init__(self, decode_fn: DecodeFn = decode_video, timeout: float | None = 30.0):
        self.decode_fn = decode_fn
        self.timeout = timeout if timeout and timeout > 0 else None
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
                return self.decode_fn(path, sampler)
            except VideoReadError:
                raise
            except Exception as e:
                raise VideoReadError(path, f"{type(e).__name__}: {_short(e)}") from None
        proc = self._helper()
        deadline = time.monotonic() + self.timeout
        try:
            _write_message(proc.stdin.fileno(), (self.decode_fn, str(path), sampler))
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
