"""TSN sampling and clip transforms (same random parameters for every frame of a clip)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F

from ezclip.data.sampling import ClipSampler, sample_test, sample_train
from ezclip.data.transforms import (
    COLOUR_PARAMS,
    TestTransform,
    TrainTransform,
    apply_colour,
    crop_offsets,
    multiscale_crop_box,
    normalize_video,
)

# -- sampling ------------------------------------------------------------------------------------


def test_train_indices_fall_in_their_segments_and_vary():
    rng = np.random.default_rng(0)
    draws = np.stack([sample_train(80, 8, rng) for _ in range(200)])  # (200, 8)
    assert draws.dtype == np.int64
    segment = draws // 10  # 80 frames / 8 segments
    assert (segment == np.arange(8)).all()
    assert all(len(set(draws[:, k])) == 10 for k in range(8))  # every frame of a segment gets drawn


def test_train_same_generator_seed_same_indices():
    a = sample_train(301, 8, np.random.default_rng(5))
    b = sample_train(301, 8, np.random.default_rng(5))
    assert (a == b).all()


def test_test_indices_are_segment_centres():
    assert sample_test(80, 8).tolist() == [[5, 15, 25, 35, 45, 55, 65, 75]]
    assert sample_test(32, 8).tolist() == [[2, 6, 10, 14, 18, 22, 26, 30]]


def test_multi_view_offsets_are_evenly_spaced_and_deterministic():
    views = sample_test(80, 8, n_clips=4)  # (4, 8): offsets 1.25, 3.75, 6.25, 8.75 in each segment
    assert views.shape == (4, 8)
    assert views[:, 0].tolist() == [1, 3, 6, 8]
    assert (views[:, 1:] - views[:, :-1] == 10).all()
    assert (views == sample_test(80, 8, n_clips=4)).all()


@pytest.mark.parametrize("frames", [1, 3, 7])
def test_short_videos_repeat_frames(frames):
    train = sample_train(frames, 8, np.random.default_rng(0))
    test = sample_test(frames, 8, n_clips=2)
    for indices in (train, test.reshape(-1)):
        assert indices.min() >= 0 and indices.max() < frames
    assert (np.diff(train) >= 0).all() and (np.diff(test[0]) >= 0).all()
    assert set(test.reshape(-1).tolist()) == set(range(frames))  # 16 views cover every frame


def test_clip_sampler_is_picklable_and_shapes():
    import pickle

    sampler = pickle.loads(pickle.dumps(ClipSampler(8, train=False, n_clips=3)))
    assert sampler(100).shape == (24,)
    train = ClipSampler(8, train=True, seed=(1, 2, 3))
    assert (train(100) == train(100)).all() and train(100).shape == (8,)


# -- transforms ----------------------------------------------------------------------------------


def gradient_clip(frames: int = 4, height: int = 60, width: int = 80) -> torch.Tensor:
    """uint8 (T, 3, H, W): red grows left to right, green top to bottom, blue = frame index * 20."""
    x = torch.linspace(0, 255, width).expand(height, width)
    y = torch.linspace(0, 255, height)[:, None].expand(height, width)
    frame = torch.stack([x, y, torch.zeros_like(x)])
    video = frame.expand(frames, 3, height, width).clone()
    video[:, 2] = (torch.arange(frames) * 20.0)[:, None, None]
    return video.round().to(torch.uint8)


def test_train_transform_shapes_dtype_and_numpy_input():
    transform = TrainTransform(image_size=32)
    video = gradient_clip()
    out, colour = transform(video, np.random.default_rng(0))
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.uint8
    assert colour.shape == (COLOUR_PARAMS,) and colour.dtype == torch.float32
    out_np, colour_np = transform(video.permute(0, 2, 3, 1).numpy(), np.random.default_rng(0))
    assert torch.equal(out, out_np) and torch.equal(colour, colour_np)  # same generator seed, same result


def test_flip_applies_to_every_frame():
    transform = TrainTransform(image_size=32, scales=(1.0,), color_jitter=0.0, grayscale=0.0)
    video = gradient_clip()
    flips = []
    for seed in range(12):
        out = transform(video, np.random.default_rng(seed))[0].float()
        slope = out[:, 0, :, -1].mean(-1) - out[:, 0, :, 0].mean(-1)  # (T,) red right minus left
        assert (slope > 0).all() or (slope < 0).all()  # never mixed within a clip
        flips.append(bool(slope[0] < 0))
    assert any(flips) and not all(flips)
    no_flip = TrainTransform(image_size=32, scales=(1.0,), horizontal_flip=False, color_jitter=0.0, grayscale=0.0)
    for seed in range(12):
        out = no_flip(video, np.random.default_rng(seed))[0].float()
        assert (out[:, 0, :, -1].mean(-1) > out[:, 0, :, 0].mean(-1)).all()


def test_crop_and_jitter_parameters_shared_across_frames():
    # All frames identical except the blue channel's constant: any per-frame parameter would show
    # as differences in the red and green channels.
    transform = TrainTransform(image_size=32, color_jitter=1.0, grayscale=0.0, hue=0.0, saturation=0.0)
    video = gradient_clip()
    video[:, 2] = 0
    for seed in range(8):
        out, colour = transform(video, np.random.default_rng(seed))
        out = apply_colour(out[None], colour[None])[0]
        assert (out == out[:1]).all()


def test_grayscale_makes_channels_equal_on_all_frames():
    transform = TrainTransform(image_size=32, color_jitter=0.0, grayscale=1.0)
    out, colour = transform(gradient_clip(), np.random.default_rng(0))
    out = apply_colour(out[None], colour[None])[0]
    assert (out[:, 0] == out[:, 1]).all() and (out[:, 1] == out[:, 2]).all()


def per_clip_torchvision_colour(clip: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The reference: torchvision's functional colour ops on one clip, one op at a time."""
    ops = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)
    if params[0]:
        for k in params[5:9].long().tolist():
            clip = ops[k](clip, float(params[1 + k]))
    if params[9]:
        clip = F.rgb_to_grayscale(clip, num_output_channels=3)
    return clip


def test_batched_colour_matches_torchvision_clip_by_clip():
    transform = TrainTransform(image_size=24, color_jitter=0.8, grayscale=0.3)
    generator = torch.Generator().manual_seed(0)
    video = torch.randint(0, 256, (24, 3, 3, 24, 24), dtype=torch.uint8, generator=generator)  # (B, T, 3, S, S)
    video[:4] = video[:4, :, :1]  # some grey clips: hue and saturation meet value == min there
    rng = np.random.default_rng(0)
    params = torch.stack([transform.colour_parameters(rng) for _ in range(len(video))])  # (B, COLOUR_PARAMS)
    assert 0 < params[:, 0].sum() < len(video) and 0 < params[:, 9].sum() < len(video)
    assert len({tuple(order) for order in params[params[:, 0] > 0, 5:9].tolist()}) > 3  # several orders
    batched = apply_colour(video, params)
    reference = torch.stack([per_clip_torchvision_colour(clip, p) for clip, p in zip(video, params, strict=True)])
    difference = (batched.int() - reference.int()).abs()
    assert difference.max() <= 2 and (difference == 0).float().mean() > 0.999  # float rounding only
    untouched = (params[:, 0] == 0) & (params[:, 9] == 0)
    assert untouched.any() and torch.equal(batched[untouched], video[untouched])
    assert not torch.equal(batched[~untouched], video[~untouched])
    with pytest.raises(AssertionError, match="colour parameters"):
        apply_colour(video, params[:3])


def test_multiscale_crop_box_limits():
    rng = np.random.default_rng(0)
    sizes = {int(240 * s) for s in (1.0, 0.875, 0.75, 0.66)}
    for _ in range(200):
        top, left, h, w = multiscale_crop_box(240, 320, (1.0, 0.875, 0.75, 0.66), rng)
        assert h in sizes and w in sizes and 0 <= top <= 240 - h and 0 <= left <= 320 - w


def test_test_transform_centre_and_three_crops():
    video = gradient_clip(frames=2, height=60, width=120)
    one = TestTransform(image_size=32, resize_size=36, n_crops=1)(video)
    assert one.shape == (1, 2, 3, 32, 32) and one.dtype == torch.uint8
    three = TestTransform(image_size=32, resize_size=36, n_crops=3)(video)  # resized to 36 x 72
    assert three.shape == (3, 2, 3, 32, 32)
    red = three[:, 0, 0].float().mean(dim=(1, 2))  # left < centre < right
    assert red[0] < red[1] < red[2]
    assert torch.equal(three[1], one[0])
    portrait = TestTransform(image_size=32, resize_size=36, n_crops=3)(video.transpose(-1, -2))
    green = portrait[:, 0, 0].float().mean(dim=(1, 2))  # red became vertical: top < centre < bottom
    assert green[0] < green[1] < green[2]
    assert crop_offsets(100, 32, 3) == [0, 34, 68]
    with pytest.raises(ValueError):
        crop_offsets(100, 32, 2)


def test_normalize_video():
    video = torch.full((2, 4, 3, 5, 5), 255, dtype=torch.uint8)
    out = normalize_video(video, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))
    assert out.dtype == torch.float32 and out.shape == video.shape
    assert torch.allclose(out[:, :, 0], torch.tensor(1.0)) and torch.allclose(out[:, :, 1], torch.tensor(2.0))
    clip = normalize_video(torch.zeros(3, 2, 2, dtype=torch.uint8))  # CLIP defaults
    assert torch.allclose(
        clip[:, 0, 0],
        -torch.tensor([0.48145466, 0.4578275, 0.40821073]) / torch.tensor([0.26862954, 0.26130258, 0.27577711]),
    )
