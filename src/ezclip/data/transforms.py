"""Clip transforms on uint8 frames: one set of random parameters per clip, applied to all its frames.

Frames stay uint8 (T, 3, H, W) through the loader (4x less memory and host-to-device traffic
than float32); ``normalize_video`` converts and normalises on the device.

Train (TSN / ViFi-CLIP recipe): multi-scale crop -> resize to S x S -> horizontal flip (p=0.5,
off for SSv2, whose labels say left/right) -> colour jitter (p=0.8) -> grayscale (p=0.2).
The loader worker crops and flips and only draws the colour parameters; ``apply_colour`` applies
them to the whole batch on the device, where they cost little: on one CPU core the hue shift
alone took longer than cropping, resizing and flipping together.
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
COLOUR_OPS = ("brightness", "contrast", "saturation", "hue")
# One clip's colour parameters: [jitter on, the four factors, the four ops' order, grayscale on].
COLOUR_PARAMS = 1 + 2 * len(COLOUR_OPS) + 1
NEUTRAL_FACTORS = (1.0, 1.0, 1.0, 0.0)


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
    """Random augmentation of one clip, uint8 (T, 3, H, W) -> uint8 (T, 3, S, S) cropped and flipped, and
    float32 (COLOUR_PARAMS,) colour parameters for ``apply_colour``; the same parameters for every frame.

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

    def __call__(self, video: np.ndarray | torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        video = to_tensor_video(video)
        top, left, h, w = multiscale_crop_box(video.shape[-2], video.shape[-1], self.scales, rng)
        video = F.resized_crop(video, top, left, h, w, [self.image_size, self.image_size], antialias=True)
        if self.horizontal_flip and rng.random() < 0.5:
            video = F.horizontal_flip(video)
        return video, self.colour_parameters(rng)

    def colour_parameters(self, rng: np.random.Generator) -> torch.Tensor:
        """torchvision's ColorJitter drawn with our generator (with probability ``color_jitter``: four
        factors and a random order of the ops), then grayscale with probability ``grayscale``."""
        params = torch.zeros(COLOUR_PARAMS)
        params[1:5] = torch.tensor(NEUTRAL_FACTORS)
        params[5:9] = torch.arange(len(COLOUR_OPS))
        if rng.random() < self.color_jitter:
            params[0] = 1.0
            params[1:5] = torch.tensor([
                rng.uniform(1 - self.brightness, 1 + self.brightness),
                rng.uniform(1 - self.contrast, 1 + self.contrast),
                rng.uniform(1 - self.saturation, 1 + self.saturation),
                rng.uniform(-self.hue, self.hue),
            ])  # fmt: skip
            params[5:9] = torch.from_numpy(rng.permutation(len(COLOUR_OPS)))
        params[9] = float(rng.random() < self.grayscale)
        return params


def apply_colour(video: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Each clip's colour augmentation (``TrainTransform.colour_parameters``) on a batch, on its device.

    uint8 (B, T, 3, H, W) and (B, COLOUR_PARAMS) -> uint8 (B, T, 3, H, W): the jittered clips' four ops in
    each clip's order, then grayscale (kept 3-channel). The arithmetic is torchvision's for uint8 images,
    a frame's contrast mean being that frame's own, so the result is the per-clip torchvision result up
    to float rounding: one or two grey levels on about one pixel in 50,000.
    """
    assert video.dtype == torch.uint8 and video.ndim == 5 and video.shape[2] == 3, (
        f"expected uint8 (B, T, 3, H, W), got {video.dtype} {tuple(video.shape)}"
    )
    assert params.shape == (video.shape[0], COLOUR_PARAMS), (
        f"expected ({video.shape[0]}, {COLOUR_PARAMS}) colour parameters, got {tuple(params.shape)}"
    )
    params = params.to(video.device)
    jitter, factors, order, gray = params[:, 0] > 0, params[:, 1:5], params[:, 5:9].long(), params[:, 9] > 0
    if not bool(jitter.any() or gray.any()):
        return video
    video = video.clone()
    for position in range(len(COLOUR_OPS)):
        for k, op in enumerate((_brightness, _contrast, _saturation, _hue)):
            chosen = jitter & (order[:, position] == k)  # (B,)
            if bool(chosen.any()):
                video[chosen] = op(video[chosen], factors[chosen, k].view(-1, 1, 1, 1, 1))
    if bool(gray.any()):
        video[gray] = _luma(video[gray]).to(torch.uint8).expand(-1, -1, 3, -1, -1)
    return video


def _luma(video: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> float32 (..., 1, H, W), ITU-R 601 weights as torchvision writes them."""
    r, g, b = video.unbind(dim=-3)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(-3)


def _blend(video: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (video * factor + other * (1 - factor)).clamp_(0, 255).to(torch.uint8)


def _brightness(video: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (video * factor).clamp_(0, 255).to(torch.uint8)


def _contrast(video: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = _luma(video).floor_().mean(dim=(-3, -2, -1), keepdim=True)  # (n, T, 1, 1, 1): per frame
    return _blend(video, mean, factor)


def _saturation(video: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(video, _luma(video).floor_(), factor)


def _hue(video: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``shift`` turns (HSV, as PIL and torchvision compute it)."""
    rgb = video.float().mul_(1 / 255)  # (n, T, 3, H, W)
    low, value = torch.aminmax(rgb, dim=-3)  # (n, T, H, W) each
    grey = value == low
    spread = value - low
    saturation = spread / torch.where(grey, 1.0, value)
    r, g, b = ((value.unsqueeze(-3) - rgb) / torch.where(grey, 1.0, spread).unsqueeze(-3)).unbind(dim=-3)
    red_max = value == rgb[..., 0, :, :]
    green_max = ~red_max & (value == rgb[..., 1, :, :])
    blue_max = ~red_max & ~green_max
    hue = (b - g) * red_max + (2.0 + r - b) * green_max + (4.0 + g - r) * blue_max
    hue = (hue * (1.0 / 6.0) + 1.0).fmod(1.0)
    hue = (hue + shift.view(-1, 1, 1, 1)).remainder(1.0)
    sector = hue * 6
    whole = sector.floor()
    fraction = sector - whole
    p = ((1.0 - saturation) * value).clamp(0.0, 1.0)
    q = ((1.0 - saturation * fraction) * value).clamp(0.0, 1.0)
    t = ((saturation * fraction + (1.0 - saturation)) * value).clamp(0.0, 1.0)
    candidates = torch.stack((value, p, q, t), dim=-3)  # (n, T, 4, H, W)
    # for each of the six sectors, which candidate is R, G and B
    pick = torch.tensor([[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]], device=video.device)
    index = pick[:, whole.long().remainder(6)].movedim(0, -3)  # (n, T, 3, H, W)
    return candidates.gather(-3, index).mul_(255 + 1 - 1e-3).to(torch.uint8)


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
