"""Clip transforms on uint8 frames: one set of random parameters per clip, applied to all its frames.

Frames stay uint8 (T, 3, H, W) through the loader (4x less memory and host-to-device traffic
than float32); ``normalize_video`` converts and normalises on the device.

Train (TSN / ViFi-CLIP recipe): multi-scale crop -> resize to S x S -> horizontal flip (p=0.5,
off for SSv2, whose labels say left/right) -> colour jitter (p=0.8) -> grayscale (p=0.2).
Test: resize the short side to ``resize_size`` -> S x S crops (centre, or 3 along the long side).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

DEFAULT_SCALES = (1.0, 0.875, 0.75, 0.66)


def to_tensor_video(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (T, H, W, 3) numpy (as decoded) or (T, 3, H, W) tensor -> uint8 tensor (T, 3, H, W)."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W)
    if frames.ndim != 4 or frames.shape[1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"expected uint8 (T, 3, H, W) or (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    return frames


def multiscale_crop_box(
    height: int, width: int, scales: Sequence[float], rng: np.random.Generator, max_distort: int = 1
) -> tuple[int, int, int, int]:
    """A random (top, left, crop_h, crop_w): each side is a scale of the short side, the two scales at
    most ``max_distort`` steps apart in ``scales`` (the TSN rule that limits aspect distortion), and the
    position uniform in the frame."""
    short = min(height, width)
    sizes = [max(1, int(short * s)) for s in scales]
    pairs = [(h, w) for i, h in enumerate(sizes) for j, w in enumerate(sizes) if abs(i - j) <= max_distort]
    crop_h, crop_w = pairs[rng.integers(len(pairs))]
    top = int(rng.integers(height - crop_h + 1))
    left = int(rng.integers(width - crop_w + 1))
    return top, left, crop_h, crop_w


@dataclass(frozen=True)
class TrainTransform:
    """Random augmentation of one clip, uint8 (T, 3, H, W) -> uint8 (T, 3, S, S), same parameters per frame.

    Args:
        image_size: S.
        scales: crop sides as fractions of the short side.
        horizontal_flip: flip with p=0.5 (False for SSv2).
        color_jitter: probability of colour jitter (brightness .4, contrast .4, saturation .2, hue .1,
            in random order); 0 turns it off.
        grayscale: probability of converting to grayscale (kept 3-channel).
    """

    image_size: int = 224
    scales: tuple[float, ...] = DEFAULT_SCALES
    horizontal_flip: bool = True
    color_jitter: float = 0.8
    grayscale: float = 0.2
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1

    @property
    def decode_short_side(self) -> int:
        """The smallest short side from which even the smallest crop is scaled down, never up, to S.

        Decoding at this size (``decode_video(short_side=...)``) gives the crops full-size frames give
        (sides are fractions of the short side, positions scale with it), up to the rounding of the
        random box to the decoded pixel grid: under two decoded pixels."""
        side = math.ceil(self.image_size / min(self.scales))
        while int(side * min(self.scales)) < self.image_size:  # multiscale_crop_box rounds sides down
            side += 1
        return side

    def __call__(self, video: np.ndarray | torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        video = to_tensor_video(video)
        top, left, h, w = multiscale_crop_box(video.shape[-2], video.shape[-1], self.scales, rng)
        video = F.resized_crop(video, top, left, h, w, [self.image_size, self.image_size], antialias=True)
        if self.horizontal_flip and rng.random() < 0.5:
            video = F.horizontal_flip(video)
        if rng.random() < self.color_jitter:
            video = self._jitter(video, rng)
        if rng.random() < self.grayscale:
            video = F.rgb_to_grayscale(video, num_output_channels=3)
        return video

    def _jitter(self, video: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """torchvision's ColorJitter with our generator: factors drawn once, applied in random order."""
        ops = [
            (F.adjust_brightness, rng.uniform(1 - self.brightness, 1 + self.brightness)),
            (F.adjust_contrast, rng.uniform(1 - self.contrast, 1 + self.contrast)),
            (F.adjust_saturation, rng.uniform(1 - self.saturation, 1 + self.saturation)),
            (F.adjust_hue, rng.uniform(-self.hue, self.hue)),
        ]
        for k in rng.permutation(len(ops)):
            op, factor = ops[k]
            video = op(video, float(factor))
        return video


def crop_offsets(length: int, size: int, n_crops: int) -> list[int]:
    """Start offsets of ``n_crops`` windows of ``size`` along a side of ``length``: centre, or start/centre/end."""
    if n_crops == 1:
        return [(length - size) // 2]
    if n_crops == 3:
        return [0, (length - size) // 2, length - size]
    raise ValueError(f"n_crops must be 1 or 3, got {n_crops}")


@dataclass(frozen=True)
class TestTransform:
    """Deterministic views of one clip: uint8 (T, 3, H, W) -> uint8 (n_crops, T, 3, S, S).

    The short side is resized to ``resize_size``; crops are S x S, centred on the short side and at
    the centre (n_crops=1) or start/centre/end (n_crops=3: left/centre/right for landscape video,
    top/centre/bottom for portrait) of the long side.
    """

    __test__ = False  # not a pytest class

    image_size: int = 224
    resize_size: int = 256
    n_crops: int = 1

    @property
    def decode_short_side(self) -> int:
        """The short side this transform resizes to: decoding at it makes the resize a no-op."""
        return max(self.resize_size, self.image_size)

    def __call__(self, video: np.ndarray | torch.Tensor) -> torch.Tensor:
        video = to_tensor_video(video)
        video = F.resize(video, [self.decode_short_side], antialias=True)  # short side
        height, width = video.shape[-2:]
        size = self.image_size
        if width >= height:
            top = (height - size) // 2
            crops = [video[..., top : top + size, x : x + size] for x in crop_offsets(width, size, self.n_crops)]
        else:
            left = (width - size) // 2
            crops = [video[..., y : y + size, left : left + size] for y in crop_offsets(height, size, self.n_crops)]
        return torch.stack(crops)  # (n_crops, T, 3, S, S)


def normalize_video(
    video: torch.Tensor,
    mean: Sequence[float] = OPENAI_DATASET_MEAN,
    std: Sequence[float] = OPENAI_DATASET_STD,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 (..., 3, H, W) on any device -> ``dtype`` (..., 3, H, W), (x / 255 - mean) / std per channel."""
    if video.shape[-3] != 3:
        raise ValueError(f"expected channels at dim -3, got shape {tuple(video.shape)}")
    mean_t = torch.as_tensor(mean, dtype=dtype, device=video.device).view(3, 1, 1)
    std_t = torch.as_tensor(std, dtype=dtype, device=video.device).view(3, 1, 1)
    return (video.to(dtype) / 255 - mean_t) / std_t
