"""`ezclip data prepare --src DIR --dest DIR`: re-encode a dataset once, for fast reads in training.

Every video under --src (or only those the --list files name, their paths relative to --src) is
decoded and written again under --dest at the same relative path and file name, so the prepared
folder is a drop-in `data.root`: H.264 (libx264, yuv420p), short side --short-side (aspect kept,
even sides, never scaled up), a keyframe at least every --keyint frames, every frame at the same
frame rate (a variable frame rate becomes its average), no audio. Why: 8 sparse frames of a 10 s
1280x720 clip with x264's default keyframe interval took 527 ms to decode; the same clip at 256 px
with a keyframe every 16 frames 41 ms.

Containers: .mp4/.m4v MP4, .mov QuickTime, and Matroska for every other name, .avi, .webm and .mkv
included: WebM admits only VP8/VP9/AV1, and AVI stores no presentation timestamps, which H.264's
reordered B-frames need (FFmpeg, PyAV and decord read a file's format from its content, not its
name). Frame folders (img_00001.jpg, ...) are copied image by image, scaled down as above
(JPEG quality 90) when larger.

Safe to stop and rerun: each output is written under a temporary name in its destination folder,
decoded once and its frames counted against the source's, and only then renamed to its final
name (a mismatch is deleted and recorded as failed); a killed run leaves only temporary files,
which the next run deletes. The manifest --dest/.ezclip-prepare.jsonl records per file the
source's size, mtime and frame count, the output's frame count, the settings and the status; a
rerun skips files whose entry matches the source and the settings and whose output exists.
Unreadable, damaged or still-image sources are recorded as failed and never stop the run; a worker
that crashes or runs past --timeout is replaced, and its file retried alone once. --src is only
read. Prints a JSON summary (prepared, skipped, failed, seconds); exit status 1 if any file failed.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import multiprocessing as mp
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from ezclip.data.decoding import (
    FRAME_FILE,
    VideoFile,
    VideoReadError,
    frame_files,
    resized_size,
    scaled_image,
    still_image_kind,
)
from ezclip.data.lists import read_list
from ezclip.prep.formats.common import VIDEO_SUFFIXES, atomic_write_text, require_dir
from ezclip.runs.progress import progress_bar

MANIFEST = ".ezclip-prepare.jsonl"
TEMPORARY = ".ezclip-tmp"  # in the name of every file or folder while it is being written
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}  # any other name: Matroska
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Settings:
    """What an output depends on besides its source: a change re-prepares every file."""

    short_side: int = 256
    keyint: int = 16
    crf: int = 23
    preset: str = "veryfast"
    allow_images: bool = False


class PrepareError(Exception):
    """A file that cannot be prepared; the message says why."""


# --------------------------------------------------------------------------------------------
# One file (runs in a worker process)
# --------------------------------------------------------------------------------------------


def prepare_file(src: Path, dest: Path, relative: str, settings: Settings) -> dict:
    """Prepare the video or frame folder ``src/relative`` as ``dest/relative``; returns its manifest entry.

    A bad file is an entry with ``status: "failed"`` and a ``reason``, never an exception; a failed
    file leaves no output (an older one of the same name is deleted: it no longer matches its source).
    """
    entry: dict = {"path": relative, "settings": asdict(settings)}
    start = time.monotonic()
    try:
        if not _inside(relative):
            raise PrepareError("not a relative path inside --src")
        source, target = src / relative, dest / relative
        try:
            stat = source.stat()
            entry.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns)
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.{os.getpid()}{TEMPORARY}")
            try:
                if source.is_dir():
                    frames = _copy_frames(source, temporary, settings.short_side)
                else:
                    frames = _transcode(source, temporary, settings, CONTAINERS.get(target.suffix.lower(), "matroska"))
                _replace(temporary, target)
            finally:
                _remove(temporary)
        except BaseException:
            _remove_stale(target)
            raise
        entry.update(status="ok", source_frames=frames, output_frames=frames)
    except Exception as error:  # whatever a bad source raises (VideoReadError, av.error.*, PIL, OSError)
        if isinstance(error, VideoReadError | PrepareError):
            reason = getattr(error, "reason", str(error))
        else:
            reason = f"{type(error).__name__}: {error}"
        entry.update(status="failed", reason=reason)
    entry["seconds"] = round(time.monotonic() - start, 3)
    return entry


def _inside(relative: str) -> bool:
    path = Path(relative)
    return bool(relative) and not path.is_absolute() and ".." not in path.parts and path != Path(".")


def _transcode(source: Path, temporary: Path, settings: Settings, container: str) -> int:
    """Write ``source`` as H.264 into ``temporary``; the number of frames, the same in both (checked)."""
    import av

    if not settings.allow_images and (kind := still_image_kind(str(source))):
        raise PrepareError(f"a still image ({kind}), not a video")
    with VideoFile(str(source)) as video:
        if video.frame_count == 0:
            raise PrepareError("video has no frames")
        height, width = (
            max(2, side - side % 2) for side in resized_size(video.height, video.width, settings.short_side)
        )
        rate = Fraction(video.rate or 25)
        with av.open(str(temporary), "w", format=container) as out:
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.gop_size = settings.keyint
            # One thread per encoder: the parallelism is the workers'.
            stream.options = {"crf": str(settings.crf), "preset": settings.preset, "threads": "1"}
            written = 0
            # frames() checks every source frame: a damaged one fails here instead of being re-encoded
            # into a clean-looking copy that no later check could tell from a good one.
            for _, frame in video.frames():
                image = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
                image.pts, image.time_base = written, 1 / rate  # constant rate: frame i at i / rate
                for packet in stream.encode(image):
                    out.mux(packet)
                written += 1
            for packet in stream.encode():
                out.mux(packet)
    decoded = count_frames(temporary)
    if decoded != written:
        raise PrepareError(f"the output decodes to {decoded} frames, the source to {written}")
    return written


def count_frames(path: Path) -> int:
    """Decode every frame of a video file (checking each) and count them."""
    with VideoFile(str(path)) as video:
        return sum(1 for _ in video.frames())


def _copy_frames(source: Path, temporary: Path, short_side: int) -> int:
    """Copy a frame folder into the folder ``temporary``, scaling larger frames down; the frame count (checked)."""
    from PIL import Image

    names = frame_files(source)
    if not names:
        raise PrepareError("a folder without img_<n>.jpg frames")
    temporary.mkdir()
    for name in names:
        with Image.open(source / name) as image:
            if resized_size(image.height, image.width, short_side) == (image.height, image.width):
                image.verify()  # readable: the copy is then byte for byte
                shutil.copyfile(source / name, temporary / name)
            else:
                scaled_image(image, short_side).save(temporary / name, format="JPEG", quality=JPEG_QUALITY)
    written = frame_files(temporary)
    for name in written:
        with Image.open(temporary / name) as image:
            image.load()
    if len(written) != len(names):
        raise PrepareError(f"the output has {len(written)} frames, the source {len(names)}")
    return len(names)


def _replace(temporary: Path, target: Path) -> None:
    """Give ``temporary`` its final name; a folder that is already there is moved aside first and deleted."""
    if temporary.is_dir() and target.exists():
        old = target.with_name(f".{target.name}.{os.getpid()}.old{TEMPORARY}")
        os.replace(target, old)
        os.replace(temporary, target)
        _remove(old)
    else:
        os.replace(temporary, target)


def _remove_stale(target: Path) -> None:
    """Delete an older output of a file that just failed; a folder only if it is a frame folder (a
    listed path can name a folder of videos by mistake, whose prepared copies must stay)."""
    if target.is_dir() and not all(FRAME_FILE.match(name) for name in os.listdir(target)):
        return
    _remove(target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _work(job: tuple[Path, Path, str, Settings, float]) -> dict:
    """A worker's job: ``prepare_file`` under a watchdog."""
    src, dest, relative, settings, timeout = job
    # faulthandler's watchdog thread ends this process past the timeout even while it is stuck in C
    # code; the parent sees the pool break and retries the file alone.
    with open(os.devnull, "w") as sink:
        faulthandler.dump_traceback_later(timeout, exit=True, file=sink)
        try:
            return prepare_file(src, dest, relative, settings)
        finally:
            faulthandler.cancel_dump_traceback_later()


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


def find_sources(src: Path, lists: list[Path] | None = None) -> list[str]:
    """Relative POSIX paths of what to prepare: the lists' entries (in order, each once), or every
    video file (by suffix) and frame folder under ``src``."""
    if lists:
        return list(dict.fromkeys(entry.path for list_file in lists for entry in read_list(list_file)))
    found = []
    for folder, subfolders, files in os.walk(src):
        subfolders.sort()
        relative = Path(folder).relative_to(src)
        if relative != Path(".") and any(FRAME_FILE.match(name) for name in files):
            found.append(relative.as_posix())
            subfolders.clear()  # a frame folder is one video
            continue
        found += [(relative / name).as_posix() for name in sorted(files) if name.lower().endswith(VIDEO_SUFFIXES)]
    return found


def read_manifest(path: Path) -> dict[str, dict]:
    """Path -> its latest entry; a line cut short by a kill is ignored."""
    entries: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and "path" in entry:
                entries[entry["path"]] = entry
    return entries


def _up_to_date(entry: dict | None, source: Path, target: Path, settings: Settings) -> bool:
    if not entry or entry.get("status") != "ok" or entry.get("settings") != asdict(settings):
        return False
    try:
        stat = source.stat()
    except OSError:
        return False
    return (entry.get("size"), entry.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns) and target.exists()


def _remove_temporaries(dest: Path) -> int:
    """Delete what a killed run left half-written under ``dest``; how many."""
    removed = 0
    for folder, subfolders, files in os.walk(dest):
        for name in [*files, *subfolders]:
            if TEMPORARY in name:
                _remove(Path(folder, name))
                removed += 1
        subfolders[:] = [name for name in subfolders if TEMPORARY not in name]
    return removed


def _run(jobs: list, workers: int, record: Callable[[dict], None], work: Callable[[tuple], dict] = _work) -> None:
    """Run ``work(job)`` (``prepare_file`` under a watchdog) for every job in worker processes, calling
    ``record(entry)`` as each ends.

    A worker that dies (a crash in a decoder, or its watchdog past the timeout) breaks the pool: the
    jobs it was running are retried one at a time, and one that breaks its pool again is recorded
    as failed; the other jobs go on in a fresh pool.
    """
    queue = deque(jobs)
    while queue:
        for job in _run_pool(queue, workers, record, work):
            if _run_pool(deque([job]), 1, record, work):
                src, dest, relative, settings, timeout = job
                reason = f"the worker process died on it twice (a crash, or more than {timeout:g} s)"
                record({"path": relative, "settings": asdict(settings), "status": "failed", "reason": reason})


def _run_pool(queue: deque, workers: int, record: Callable[[dict], None], work: Callable[[tuple], dict]) -> list:
    """Run jobs from ``queue``, at most ``workers`` at a time; the jobs in flight if the pool broke, else []."""
    # spawn: workers start clean, whatever threads (the progress bar's) this process runs.
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        running: dict = {}
        while queue or running:
            while queue and len(running) < workers:
                job = queue.popleft()
                running[pool.submit(work, job)] = job
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = []
            for future in finished:
                job = running.pop(future)
                if isinstance(future.exception(), BrokenProcessPool):
                    broken.append(job)
                else:
                    record(future.result())
            if broken:
                return broken + list(running.values())
    return []


def prepare(
    src: str | Path,
    dest: str | Path,
    settings: Settings = Settings(),
    workers: int = 1,
    lists: list[str | Path] | None = None,
    timeout: float = 600.0,
    progress: bool = False,
) -> dict:
    """Prepare every source that is not up to date; returns the summary that `ezclip data prepare` prints."""
    src, dest = require_dir(src, "--src folder").resolve(), Path(dest).resolve()
    if dest == src or src in dest.parents or dest in src.parents:
        raise ValueError(f"--dest {dest} and --src {src} overlap: choose a --dest outside --src")
    if settings.short_side < 2 or settings.short_side % 2:
        raise ValueError(f"--short-side must be an even number of pixels (H.264 yuv420p), got {settings.short_side}")
    if settings.keyint < 1 or workers < 1 or not 0 <= settings.crf <= 51:
        raise ValueError(f"need --keyint >= 1, --workers >= 1, 0 <= --crf <= 51; got {settings}, workers={workers}")
    start = time.monotonic()
    sources = find_sources(src, [Path(p) for p in lists] if lists else None)
    dest.mkdir(parents=True, exist_ok=True)
    manifest = dest / MANIFEST
    with open(manifest, "a", encoding="utf-8") as log:
        _lock(log, dest)
        _remove_temporaries(dest)
        entries = read_manifest(manifest)
        todo = [p for p in sources if not _up_to_date(entries.get(p), src / p, dest / p, settings)]
        done = {"ok": 0, "failed": []}
        with progress_bar(progress) as bar:
            task = bar.add_task("preparing", total=len(todo))

            def record(entry: dict) -> None:
                log.write(json.dumps(entry) + "\n")
                log.flush()  # what is done survives a kill
                entries[entry["path"]] = entry
                if entry["status"] == "ok":
                    done["ok"] += 1
                else:
                    done["failed"].append({"path": entry["path"], "reason": entry["reason"]})
                bar.advance(task)

            _run([(src, dest, p, settings, timeout) for p in todo], min(workers, max(len(todo), 1)), record)
        _remove_temporaries(dest)  # what workers a broken pool terminated were writing
        atomic_write_text(manifest, "".join(json.dumps(entries[p]) + "\n" for p in sorted(entries)))  # one line each
    return {
        "src": str(src),
        "dest": str(dest),
        "files": len(sources),
        "prepared": done["ok"],
        "skipped": len(sources) - len(todo),
        "failed": len(done["failed"]),
        "seconds": round(time.monotonic() - start, 1),
        "settings": asdict(settings),
        "manifest": str(manifest),
        "failures": done["failed"][:20],
    }


def _lock(file, dest: Path) -> None:
    """Hold an exclusive lock on the manifest while this run writes into ``dest``."""
    import fcntl

    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise BlockingIOError(
            f"another `ezclip data prepare` is writing into {dest} (its manifest is locked)"
        ) from None


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Settings()
    parser.add_argument("--src", required=True, help="the dataset's video folder (only read)")
    parser.add_argument("--dest", required=True, help="the prepared folder, a drop-in data.root (outside --src)")
    parser.add_argument("--short-side", type=int, default=defaults.short_side, help="short side in pixels (even)")
    parser.add_argument("--keyint", type=int, default=defaults.keyint, help="a keyframe at least every N frames")
    parser.add_argument("--crf", type=int, default=defaults.crf, help="x264 constant rate factor (quality, 0-51)")
    parser.add_argument("--preset", default=defaults.preset, help="x264 preset (speed of encoding vs file size)")
    parser.add_argument(
        "--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="encoding processes (default: cores-1)"
    )
    parser.add_argument(
        "--list",
        dest="lists",
        action="extend",
        nargs="+",
        default=None,
        metavar="FILE",
        help="prepare only the videos these list files name (paths relative to --src); default: all",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per file before its worker is killed")
    parser.add_argument("--allow-images", action="store_true", help="prepare still images as one-frame videos")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    settings = Settings(args.short_side, args.keyint, args.crf, args.preset, args.allow_images)
    summary = prepare(
        args.src,
        args.dest,
        settings,
        workers=args.workers,
        lists=args.lists,
        timeout=args.timeout,
        progress=args.progress,
    )
    print(json.dumps(summary, indent=2))
    return 1 if summary["failed"] else 0
