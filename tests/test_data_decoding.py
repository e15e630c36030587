"""Decoding real mp4 files and frame folders, and never hanging or crashing on bad ones."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from data_helpers import (
    crashing_decoder,
    frame_indices,
    hanging_decoder,
    make_frame_folder,
    make_garbage,
    make_truncated,
    make_video,
)
from ezclip.data.decoding import (
    SafeDecoder,
    VideoReadError,
    decode_decord,
    decode_pyav,
    decode_video,
)
from ezclip.data.sampling import ClipSampler

CENTRES = ClipSampler(8, train=False)  # 32 frames -> [2, 6, ..., 30]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    good = make_video(root / "good.mp4")
    return {
        "good": good,
        "short": make_video(root / "short.mp4", num_frames=3),
        "truncated": make_truncated(good, root / "truncated.mp4"),
        "truncated_faststart": make_truncated(
            make_video(root / "faststart.mp4", faststart=True), root / "truncated_faststart.mp4"
        ),
        "garbage": make_garbage(root / "garbage.mp4"),
        "empty": make_garbage(root / "empty.mp4", size=0),
        "missing": root / "missing.mp4",
        "folder": make_frame_folder(root / "folder"),
        "empty_folder": make_frame_folder(root / "empty_folder", num_frames=0),
        "hang": make_video(root / "hang.mp4", num_frames=8),
        "crash": make_video(root / "crash.mp4", num_frames=8),
    }


@pytest.mark.parametrize("decode", [decode_decord, decode_pyav, decode_video])
def test_reads_exactly_the_sampled_frames(videos, decode):
    frames = decode(str(videos["good"]), CENTRES)
    assert frames.shape == (8, 48, 64, 3) and frames.dtype == np.uint8
    assert frame_indices(frames) == [2, 6, 10, 14, 18, 22, 26, 30]
    multi = decode(str(videos["good"]), ClipSampler(4, train=False, n_clips=2))  # repeats and order kept
    assert frame_indices(multi) == [2, 10, 18, 26, 6, 14, 22, 30]


def test_frame_count_comes_from_the_container(videos):
    seen = []
    decode_video(str(videos["good"]), lambda n: seen.append(n) or np.array([0]))
    decode_pyav(str(videos["good"]), lambda n: seen.append(n) or np.array([0]))
    decode_video(str(videos["folder"]), lambda n: seen.append(n) or np.array([0]))
    assert seen == [32, 32, 20]


def test_short_video_repeats_frames(videos):
    frames = decode_video(str(videos["short"]), CENTRES)
    assert frames.shape[0] == 8 and sorted(set(frame_indices(frames))) == [0, 1, 2]


def test_frame_folder_is_one_indexed(videos):
    frames = decode_video(str(videos["folder"]), ClipSampler(4, train=False))  # 20 frames -> 2, 7, 12, 17
    assert frames.shape == (4, 30, 40, 3)
    assert frame_indices(frames) == [2, 7, 12, 17]


@pytest.mark.parametrize(
    "name, reason",
    [
        ("truncated", "decord: cannot open"),
        ("truncated_faststart", "PyAV: cannot decode"),
        ("garbage", "PyAV: cannot decode"),
        ("empty", "decord"),
        ("missing", "no such file"),
        ("empty_folder", "no frames"),
    ],
)
def test_bad_videos_raise_with_path_and_reason(videos, name, reason):
    with pytest.raises(VideoReadError, match=reason) as info:
        decode_video(str(videos[name]), CENTRES)
    assert info.value.path == str(videos[name])


def test_sampler_out_of_range_is_an_error(videos):
    with pytest.raises(VideoReadError, match="outside"):
        decode_video(str(videos["good"]), lambda n: np.array([n]))


def test_safe_decoder_matches_direct_decoding_and_passes_errors(videos):
    decoder = SafeDecoder(timeout=20)
    try:
        assert (decoder(str(videos["good"]), CENTRES) == decode_video(str(videos["good"]), CENTRES)).all()
        with pytest.raises(VideoReadError, match="no such file") as info:
            decoder(str(videos["missing"]), CENTRES)
        assert info.value.path == str(videos["missing"])
        assert decoder.restarts == 1  # a decode error does not cost the helper
        copy = pickle.loads(pickle.dumps(decoder))  # as a spawned DataLoader worker gets it
        assert copy._proc is None and copy(str(videos["good"]), CENTRES).shape == (8, 48, 64, 3)
        assert copy._proc.pid != decoder._proc.pid
        copy.close()
    finally:
        decoder.close()


def test_safe_decoder_kills_a_hanging_decoder_and_recovers(videos):
    decoder = SafeDecoder(hanging_decoder, timeout=1.5)
    try:
        decoder(str(videos["good"]), CENTRES)  # start the helper outside the timed part
        start = time.monotonic()
        with pytest.raises(VideoReadError, match="timed out after 1.5 s"):
            decoder(str(videos["hang"]), CENTRES)
        assert time.monotonic() - start < 3.0
        assert frame_indices(decoder(str(videos["good"]), CENTRES))[0] == 2  # a fresh helper
        assert decoder.restarts == 2
    finally:
        decoder.close()


def test_safe_decoder_survives_a_crashing_decoder(videos):
    decoder = SafeDecoder(crashing_decoder, timeout=20)
    try:
        with pytest.raises(VideoReadError, match="decoder process died"):
            decoder(str(videos["crash"]), CENTRES)
        assert decoder(str(videos["good"]), CENTRES).shape == (8, 48, 64, 3)
    finally:
        decoder.close()


def test_in_process_mode_without_timeout(videos):
    decoder = SafeDecoder(timeout=0)
    assert decoder(str(videos["good"]), CENTRES).shape == (8, 48, 64, 3)
    assert decoder._proc is None
    with pytest.raises(VideoReadError):
        decoder(str(videos["garbage"]), CENTRES)
