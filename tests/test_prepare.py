"""`ezclip data prepare`: drop-in re-encoded copies, resumable, atomic, bad sources recorded, --src untouched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from data_helpers import (
    damage_packet,
    frame_indices,
    make_frame_folder,
    make_garbage,
    make_video,
    work_or_crash,
    write_still_image,
)
from ezclip.cli import main
from ezclip.data.decoding import VideoFile, decode_video
from ezclip.prep import prepare as prep
from ezclip.prep.prepare import MANIFEST, TEMPORARY, Settings, prepare, read_manifest

SETTINGS = Settings(short_side=32, keyint=4)
# relative path -> (frame count, (height, width) after preparing)
GOOD = {
    "a/v1.mp4": (24, (32, 48)),  # 64x96 -> short side 32
    "b/v2.webm": (20, (32, 42)),  # H.264 in Matroska named .webm; 48x64 -> 32x42 (42.67 rounded down, even)
    "c/v3.avi": (18, (32, 48)),  # MPEG-4 part 2 with B-frames in AVI, like UCF101
    "small/tiny.mp4": (10, (22, 30)),  # smaller than --short-side: kept (sides even)
    "frames/f1": (12, (32, 42)),  # a folder of 48x64 JPEGs, scaled down image by image
}
BAD = {
    "bad/garbage.mp4": "cannot open",
    "bad/still.mp4": "a still image (PNG), not a video",
    "bad/damaged.mp4": "cannot be decoded cleanly",
}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("prepare") / "src"
    make_video(src / "a/v1.mp4", num_frames=24, width=96, height=64)
    make_video(src / "b/v2.webm", num_frames=20, width=64, height=48, container="matroska")
    make_video(src / "c/v3.avi", num_frames=18, width=96, height=64, codec="mpeg4")
    make_video(src / "small/tiny.mp4", num_frames=10, width=30, height=22)
    make_frame_folder(src / "frames/f1", num_frames=12, width=64, height=48)
    make_garbage(src / "bad/garbage.mp4")
    write_still_image(src / "bad/still.mp4", "PNG")
    good = make_video(src.parent / "textured.mp4", num_frames=16, width=128, height=96, keyint=8, textured=True)
    damage_packet(good, src / "bad/damaged.mp4", 10)
    (src / "notes.txt").write_text("not a video\n")
    return src


def fingerprint(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under root: its sha256 and mtime."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def leftovers(dest: Path) -> list[str]:
    return [str(p) for p in dest.rglob(f"*{TEMPORARY}*")]


def test_prepares_drop_in_copies_and_records_bad_sources(source, tmp_path):
    before = fingerprint(source)
    dest = tmp_path / "dest"
    summary = prepare(source, dest, SETTINGS, workers=2)
    assert (summary["files"], summary["prepared"], summary["skipped"], summary["failed"]) == (8, 5, 0, 3)
    assert {f["path"]: f["reason"] for f in summary["failures"]}.keys() == BAD.keys()
    for failure in summary["failures"]:
        assert BAD[failure["path"]] in failure["reason"]
        assert not (dest / failure["path"]).exists()
    assert fingerprint(source) == before  # --src is only read
    assert leftovers(dest) == []

    manifest = read_manifest(dest / MANIFEST)
    assert set(manifest) == set(GOOD) | set(BAD)
    for relative, (frames, (height, width)) in GOOD.items():
        entry = manifest[relative]
        assert entry["status"] == "ok" and entry["source_frames"] == entry["output_frames"] == frames
        assert (entry["size"], entry["mtime_ns"]) == (
            (source / relative).stat().st_size,
            (source / relative).stat().st_mtime_ns,
        )
        output = decode_video(str(dest / relative), lambda n: np.arange(n))  # every frame, as training reads them
        assert output.shape == (frames, height, width, 3)
        assert frame_indices(output) == [i % 32 for i in range(frames)]  # same frames, same order
    assert all(manifest[relative]["status"] == "failed" for relative in BAD)


def test_outputs_are_h264_with_short_groups_of_pictures_in_containers_that_hold_it(source, tmp_path):
    import av

    dest = tmp_path / "dest"
    prepare(source, dest, SETTINGS, workers=2, lists=[_list(tmp_path, ["a/v1.mp4", "b/v2.webm", "c/v3.avi"])])
    formats = {}
    for relative in ("a/v1.mp4", "b/v2.webm", "c/v3.avi"):
        with av.open(str(dest / relative)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.format.name) == ("h264", "yuv420p")
            assert stream.average_rate == 25
            keys = [i for i, p in enumerate(container.demux(stream)) if p.size and p.is_keyframe]
            formats[relative] = container.format.name
        assert keys[0] == 0 and max(np.diff(keys)) <= SETTINGS.keyint
    assert formats["a/v1.mp4"].startswith("mov,mp4") and "matroska" in formats["b/v2.webm"]
    assert "matroska" in formats["c/v3.avi"]  # AVI cannot hold B-frames' presentation timestamps


def test_a_rerun_skips_what_is_up_to_date_and_redoes_what_changed(source, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(source, src)
    dest = tmp_path / "dest"
    prepare(src, dest, SETTINGS, workers=2)
    first = fingerprint(dest)

    again = prepare(src, dest, SETTINGS, workers=2)
    assert (again["prepared"], again["skipped"], again["failed"]) == (0, 5, 3)  # failed ones are retried
    assert {k: v for k, v in fingerprint(dest).items() if k != MANIFEST} == {
        k: v for k, v in first.items() if k != MANIFEST
    }

    os.utime(src / "a/v1.mp4", ns=(time.time_ns(), time.time_ns()))  # a changed source...
    (dest / "small/tiny.mp4").unlink()  # ...and a lost output are redone
    redo = prepare(src, dest, SETTINGS, workers=2)
    assert (redo["prepared"], redo["skipped"]) == (2, 3)
    assert read_manifest(dest / MANIFEST)["a/v1.mp4"]["mtime_ns"] == (src / "a/v1.mp4").stat().st_mtime_ns

    changed = prepare(src, dest, Settings(short_side=24, keyint=4), workers=2)  # new settings: everything
    assert (changed["prepared"], changed["skipped"]) == (5, 0)
    assert VideoFile(str(dest / "a/v1.mp4")).height == 24
    lines = (dest / MANIFEST).read_text().splitlines()
    assert len(lines) == 8  # compacted: one entry per file


def test_lists_select_videos_and_paths_outside_src_fail(source, tmp_path):
    dest = tmp_path / "dest"
    paths = ["a/v1.mp4", "a/v1.mp4", "missing/none.mp4", "../outside.mp4", "/etc/hostname", "a"]
    summary = prepare(source, dest, SETTINGS, workers=1, lists=[_list(tmp_path, paths)])
    assert (summary["files"], summary["prepared"], summary["failed"]) == (5, 1, 4)
    reasons = {f["path"]: f["reason"] for f in summary["failures"]}
    assert "No such file" in reasons["missing/none.mp4"]
    assert reasons["a"] == "a folder without img_<n>.jpg frames"  # a folder of videos named by mistake...
    assert reasons["../outside.mp4"] == reasons["/etc/hostname"] == "not a relative path inside --src"
    # ...does not cost the prepared videos inside it
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [MANIFEST, "a/v1.mp4"]
    assert not (tmp_path / "outside.mp4").exists()


def test_leftovers_of_a_killed_run_are_deleted_and_a_cut_manifest_line_ignored(source, tmp_path):
    dest = tmp_path / "dest"
    (dest / "a").mkdir(parents=True)
    (dest / "a" / f".v1.mp4.999{TEMPORARY}").write_bytes(b"half a video")
    (dest / "frames" / f".f1.999{TEMPORARY}").mkdir(parents=True)
    (dest / MANIFEST).write_text('{"path": "a/v1.mp4", "status": "ok", "size": 1\n')  # cut off by a kill
    summary = prepare(source, dest, SETTINGS, workers=1, lists=[_list(tmp_path, ["a/v1.mp4", "frames/f1"])])
    assert (summary["prepared"], summary["failed"]) == (2, 0)
    assert leftovers(dest) == [] and set(read_manifest(dest / MANIFEST)) == {"a/v1.mp4", "frames/f1"}


def test_a_killed_run_never_leaves_a_half_written_file_under_its_name(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    for i in range(6):
        make_video(src / f"v{i}.mp4", num_frames=150, width=320, height=240, textured=True)
    command = [sys.executable, "-m", "ezclip.cli", "data", "prepare", "--src", str(src), "--dest", str(dest)]
    command += ["--short-side", "128", "--workers", "2", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not leftovers(dest) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        assert leftovers(dest), "no file was being written"
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the command and its workers, mid-write
        process.wait()
    for path in dest.glob("*.mp4"):  # whatever has its final name is complete
        assert prep.count_frames(path) == 150
    summary = prepare(src, dest, Settings(short_side=128), workers=2)
    assert summary["prepared"] + summary["skipped"] == 6 and summary["failed"] == 0 and leftovers(dest) == []


def test_an_output_with_a_different_frame_count_is_deleted_and_recorded(source, tmp_path, monkeypatch):
    dest = tmp_path / "dest"
    monkeypatch.setattr(prep, "count_frames", lambda path: 23)  # one frame short
    entry = prep.prepare_file(source, dest, "a/v1.mp4", SETTINGS)
    assert entry["status"] == "failed" and entry["reason"] == "the output decodes to 23 frames, the source to 24"
    assert list(dest.rglob("*.mp4")) == [] and leftovers(dest) == []


def test_a_worker_that_dies_fails_only_its_own_file(tmp_path):
    jobs = [(tmp_path, tmp_path, name, SETTINGS, 60.0) for name in ("a.mp4", "crash.mp4", "b.mp4", "c.mp4")]
    entries = []
    prep._run(jobs, 2, entries.append, work_or_crash)
    status = {e["path"]: e["status"] for e in entries}
    assert status == {"a.mp4": "ok", "crash.mp4": "failed", "b.mp4": "ok", "c.mp4": "ok"}
    assert "died on it twice" in next(e["reason"] for e in entries if e["path"] == "crash.mp4")


def test_the_command_prints_a_summary_and_fails_when_a_file_failed(source, tmp_path, capsys):
    dest = tmp_path / "dest"
    args = ["data", "prepare", "--src", str(source), "--dest", str(dest), "--short-side", "32", "--keyint", "4"]
    assert main([*args, "--workers", "2", "--no-progress"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["prepared"], summary["failed"]) == (5, 3) and summary["seconds"] >= 0
    good = _list(tmp_path, ["a/v1.mp4"])
    assert main([*args, "--list", str(good), "--no-progress"]) == 0  # up to date: skipped
    assert json.loads(capsys.readouterr().out)["skipped"] == 1
    assert main(["data", "prepare", "--src", str(source), "--dest", str(source / "out")]) == 2  # inside --src
    assert "overlap" in capsys.readouterr().err
    assert main([*args, "--short-side", "31"]) == 2  # H.264 yuv420p needs even sides


def _list(folder: Path, paths: list[str]) -> Path:
    path = folder / f"list{len(list(folder.glob('list*.txt')))}.txt"
    path.write_text("".join(f"{p} 0\n" for p in paths))
    return path
