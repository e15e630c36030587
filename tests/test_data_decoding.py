"""Decoding real mp4 files and frame folders, and never hanging or crashing on bad ones."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from data_helpers import (
    Frames,
    crashing_decoder,
    damage_packet,
    frame_indices,
    hanging_decoder,
    make_frame_folder,
    make_garbage,
    make_truncated,
    make_video,
    write_still_image,
)
from ezclip.data.decoding import (
    SafeDecoder,
    VideoFile,
    VideoReadError,
    decode_decord,
    decode_pyav,
    decode_video,
    resized_size,
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
        ("truncated", "PyAV: cannot open .*; decord: cannot open"),
        ("truncated_faststart", "header lists 32 frames, the file holds 7 .truncated"),
        ("garbage", "PyAV: cannot open .*; decord: cannot open"),
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


def test_frame_count_and_index_of_a_matroska_file(tmp_path):
    # Matroska stores no frame count in its header: the packet index gives it.
    path = make_video(tmp_path / "v.webm", num_frames=20, keyint=4, container="matroska")
    with VideoFile(str(path)) as video:
        assert video.frame_count == 20 and video.rate == 25 and (video.height, video.width) == (48, 64)
    assert frame_indices(decode_video(str(path), lambda n: np.array([19, 3, 9, 9]))) == [19, 3, 9, 9]


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """32 frames, a keyframe every 8; frame 12's slice data zeroed (container index and NAL headers intact)."""
    root = tmp_path_factory.mktemp("damaged")
    good = make_video(root / "good.mp4", num_frames=32, width=128, height=96, keyint=8, textured=True)
    return damage_packet(good, root / "damaged.mp4", 12)  # ultrafast x264 has no B-frames: packet 12 = frame 12


def test_a_damaged_frame_and_the_frames_predicted_from_it_are_a_read_error(damaged):
    # Frames 12-15 depend on the damaged frame 12 (the next keyframe is 16): any of them sampled is an error...
    for indices in ([2, 12], [2, 10, 14], [15]):
        with pytest.raises(VideoReadError, match=f"frame {indices[-1]} cannot be decoded cleanly: frame 12 is"):
            decode_video(str(damaged), lambda n, indices=indices: np.array(indices))
    # ...while frames before it and after the next keyframe are what they should be, not neighbours.
    frames = decode_video(str(damaged), lambda n: np.array([2, 11, 16, 20, 31]))
    assert frame_indices(frames[:, 48:]) == [2, 11, 16, 20, 31]  # bottom half: the top quarter is noise


def test_a_damaged_video_is_skipped_through_the_helper(damaged):
    decoder = SafeDecoder(timeout=20)
    try:
        with pytest.raises(VideoReadError, match="frame 13 cannot be decoded cleanly") as info:
            decoder(str(damaged), Frames((13,)))
        assert info.value.path == str(damaged)
    finally:
        decoder.close()


def test_reading_every_frame_of_a_damaged_file_fails_at_the_damage(damaged):
    with VideoFile(str(damaged)) as video, pytest.raises(VideoReadError, match="frame 12 cannot be decoded cleanly"):
        assert [i for i, _ in video.frames()] == list(range(12))  # what is read before the error


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "GIF", "BMP", "WebP"])
def test_a_still_image_is_not_a_video_unless_allowed(tmp_path, kind):
    path = write_still_image(tmp_path / "clip.mp4", kind)
    with pytest.raises(VideoReadError, match=rf"a still image \({kind}\), not a video"):
        decode_video(str(path), CENTRES)
    decoder = SafeDecoder(timeout=20, allow_images=True)  # the option reaches the helper's decode_video
    try:
        frames = decoder(str(path), CENTRES)
    finally:
        decoder.close()
    assert frames.shape == (8, 16, 24, 3)  # one frame, sampled 8 times
    assert abs(frames[..., 0].mean() - 200) < 12


def test_a_video_is_not_taken_for_an_image(videos):
    from ezclip.data.decoding import still_image_kind

    assert still_image_kind(str(videos["good"])) is None and still_image_kind(str(videos["garbage"])) is None


@pytest.mark.parametrize(
    "size, side, expected",
    [((360, 480), 97, (97, 129)), ((480, 360), 97, (129, 97)), ((360, 480), 360, (360, 480)), ((48, 64), 97, (48, 64))],
)
def test_resized_size_rounds_like_torchvision_and_never_upscales(size, side, expected):
    import torch
    import torchvision.transforms.v2.functional as F

    assert resized_size(*size, side) == expected
    if min(size) > side:
        assert tuple(F.resize(torch.zeros(3, *size), [side]).shape[-2:]) == expected


@pytest.mark.parametrize("decode", [decode_pyav, decode_decord, decode_video])
def test_frames_are_scaled_down_in_the_decoder(tmp_path_factory, decode):
    path = make_video(tmp_path_factory.mktemp("big") / "big.mp4", num_frames=12, width=200, height=120)
    frames = decode(str(path), ClipSampler(4, train=False), short_side=60)
    assert frames.shape == (4, 60, 100, 3) and frame_indices(frames) == [1, 4, 7, 10]
    assert decode(str(path), ClipSampler(4, train=False), short_side=120).shape == (4, 120, 200, 3)  # no upscale


def test_frame_folders_are_scaled_down_too(videos):
    frames = decode_video(str(videos["folder"]), ClipSampler(4, train=False), short_side=15)
    assert frames.shape == (4, 15, 20, 3) and frame_indices(frames) == [2, 7, 12, 17]


def test_only_small_frames_cross_the_helpers_pipe(tmp_path):
    path = make_video(tmp_path / "v.mp4", num_frames=12, width=320, height=240)
    decoder = SafeDecoder(timeout=20, short_side=48)
    try:
        frames = decoder(str(path), ClipSampler(4, train=False))
    finally:
        decoder.close()
    # The array is a view of the bytes read from the pipe: their size is the small frames' size.
    payload = frames
    while isinstance(payload, np.ndarray):
        payload = payload.base
    assert frames.shape == (4, 48, 64, 3) and memoryview(payload).nbytes == 4 * 48 * 64 * 3
