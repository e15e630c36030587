"""The video dataset, its collate function and samplers that never duplicate evaluation videos.

A dataset item is a dict ``{"video": uint8, "label": int, "index": int}`` (training items also
carry ``"colour"``, the clip's colour parameters, applied on the device by
``ezclip.data.transforms.apply_colour``) or, for a video that cannot be read, a ``Skipped`` marker;
``VideoCollate`` drops the markers, logs each bad path once per process and counts them in the
batch, so one corrupt file never stops an epoch. In training an
unreadable video is replaced by another one of the list (drawn from a seeded generator; the item
carries the replaced ``Skipped`` markers under ``replaced``), so training batches stay full.

Randomness: a training item's frames and augmentation come from a numpy Generator seeded with
``(seed, epoch, index)``, so a run is reproducible whatever the number of workers or the order in
which they fetch items. The epoch reaches the workers inside the sampler's keys ``(index, epoch)``
(a ``set_epoch`` on the main process alone would not reach persistent workers).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

from ezclip.data.decoding import SafeDecoder, VideoReadError
from ezclip.data.lists import VideoEntry
from ezclip.data.sampling import ClipSampler
from ezclip.data.transforms import TestTransform, TrainTransform

log = logging.getLogger(__name__)
_warned: set[str] = set()  # bad paths already logged by this process
TRAIN_SAMPLING = ("random", "middle")
# Training draws at most this many other videos in place of an unreadable one.
MAX_REPLACEMENTS = 8


@dataclass(frozen=True)
class Skipped:
    """Marker for an unreadable video: which one and why."""

    path: str
    reason: str
    index: int


class VideoDataset(Dataset):
    """Videos of a list, decoded and transformed.

    Args:
        root: folder the entries' paths are relative to.
        entries: the list's (path, label) entries.
        num_frames: T, frames per clip (one per TSN segment).
        transform: ``TrainTransform`` (training: one random clip) or ``TestTransform`` (evaluation:
            ``n_clips`` temporal x ``transform.n_crops`` spatial views).
        decoder: decodes ``(path, ClipSampler)`` -> uint8 (N, H, W, 3) or raises ``VideoReadError``.
        n_clips: temporal views for evaluation.
        seed: base seed of training randomness.
        train_sampling: training frames: ``random`` (a random frame in each TSN segment) or ``middle`` (each
            segment's middle frame, as the authors' base-to-novel and few-shot configs train).
    Items:
        train: ``video`` uint8 (T, 3, S, S); eval: ``video`` uint8 (V, T, 3, S, S), V = n_clips * n_crops,
        clip-major (view v = clip v // n_crops, crop v % n_crops). Keys ``(index, epoch)`` or ``index``.
    """

    def __init__(
        self,
        root: str,
        entries: list[VideoEntry],
        num_frames: int,
        transform: TrainTransform | TestTransform,
        decoder: SafeDecoder,
        n_clips: int = 1,
        seed: int = 0,
        train_sampling: str = "random",
    ):
        if train_sampling not in TRAIN_SAMPLING:
            raise ValueError(f"train_sampling must be one of {TRAIN_SAMPLING}, got {train_sampling!r}")
        self.root = str(root)
        self.entries = list(entries)
        self.num_frames = num_frames
        self.transform = transform
        self.decoder = decoder
        self.n_clips = n_clips
        self.seed = seed
        self.train = isinstance(transform, TrainTransform)
        self.random_frames = self.train and train_sampling == "random"

    def __len__(self) -> int:
        return len(self.entries)

    def path(self, index: int) -> str:
        return os.path.join(self.root, self.entries[index].path)

    @property
    def video_shape(self) -> tuple[int, ...]:
        """Shape of one item's video: (T, 3, S, S) for training, (V, T, 3, S, S) for evaluation."""
        size = self.transform.image_size
        if self.train:
            return (self.num_frames, 3, size, size)
        return (self.n_clips * self.transform.n_crops, self.num_frames, 3, size, size)

    def __getitem__(self, key: int | tuple[int, int]) -> dict | Skipped:
        index, epoch = (int(key[0]), int(key[1])) if isinstance(key, tuple | list) else (int(key), 0)
        item = self._load(index, epoch)
        if not self.train or not isinstance(item, Skipped):
            return item
        # Training: an unreadable video is replaced by another of the list (a seeded draw), so the
        # batch stays full and DDP ranks keep stepping together; the bad one is still reported.
        rng = np.random.default_rng([self.seed, epoch, index, 2])
        unreadable = [item]
        for _ in range(MAX_REPLACEMENTS):
            replacement = self._load(int(rng.integers(len(self))), epoch)
            if not isinstance(replacement, Skipped):
                return {**replacement, "replaced": unreadable}
            unreadable.append(replacement)
        return item

    def _load(self, index: int, epoch: int) -> dict | Skipped:
        entry, path = self.entries[index], self.path(index)
        sampler = ClipSampler(self.num_frames, self.random_frames, self.n_clips, seed=(self.seed, epoch, index, 0))
        try:
            frames = self.decoder(path, sampler)  # (N, H, W, 3), N = T or n_clips * T
        except VideoReadError as e:
            return Skipped(path, e.reason, index)
        if self.train:
            video, colour = self.transform(frames, np.random.default_rng([self.seed, epoch, index, 1]))  # (T, 3, S, S)
            return {"video": video.contiguous(), "colour": colour, "label": entry.label, "index": index}
        views = self.transform(frames)  # (n_crops, n_clips * T, 3, S, S)
        n_crops = views.shape[0]
        views = views.unflatten(1, (self.n_clips, self.num_frames))  # (n_crops, n_clips, T, 3, S, S)
        video = views.transpose(0, 1).flatten(0, 1)  # (n_clips * n_crops, T, 3, S, S)
        assert video.shape[0] == self.n_clips * n_crops
        return {"video": video.contiguous(), "label": entry.label, "index": index}


class VideoCollate:
    """Stack good items, drop ``Skipped`` ones (and report those a training item replaced).

    Returns ``{"video": uint8 (B, *video_shape), "label": long (B,), "index": long (B,),
    "num_skipped": int, "skipped": list[str]}``, and ``"colour": (B, COLOUR_PARAMS)`` for training
    items; B may be 0 (every video failed).
    """

    def __init__(self, video_shape: tuple[int, ...]):
        self.video_shape = tuple(video_shape)

    def __call__(self, items: list[dict | Skipped]) -> dict:
        good = [item for item in items if not isinstance(item, Skipped)]
        bad = [item for item in items if isinstance(item, Skipped)]
        bad += [skipped for item in good for skipped in item.get("replaced", [])]
        for item in bad:
            if item.path not in _warned:
                _warned.add(item.path)
                log.warning("skipping unreadable video %s: %s", item.path, item.reason)
        if good:
            video = torch.stack([item["video"] for item in good])
        else:
            video = torch.empty((0, *self.video_shape), dtype=torch.uint8)
        batch = {
            "video": video,
            "label": torch.tensor([item["label"] for item in good], dtype=torch.long),
            "index": torch.tensor([item["index"] for item in good], dtype=torch.long),
            "num_skipped": len(bad),
            "skipped": [item.path for item in bad],
        }
        if good and "colour" in good[0]:
            batch["colour"] = torch.stack([item["colour"] for item in good])  # (B, COLOUR_PARAMS)
        return batch


def _rank_world(rank: int | None, world: int | None) -> tuple[int, int]:
    """Explicit values, else those of the initialised process group, else (0, 1)."""
    initialized = dist.is_available() and dist.is_initialized()
    if world is None:
        world = dist.get_world_size() if initialized else 1
    if rank is None:
        rank = dist.get_rank() if initialized else 0
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside world size {world}")
    return rank, world


class TrainSampler(DistributedSampler):
    """Shuffled ``(index, epoch)`` keys; under DDP rank r takes ``perm[r::world]`` cut to ``n // world``.

    Every rank gets the same count (DDP steps in lockstep); at most ``world - 1`` videos per epoch
    are left out, a different few each epoch. A ``DistributedSampler`` subclass, so Lightning
    keeps it as it is instead of wrapping it in a second distributed sampler.
    """

    def __init__(self, num_samples: int, seed: int = 0, rank: int | None = None, world: int | None = None):
        rank, world = _rank_world(rank, world)
        # The parent's state is set by hand: its __init__ insists on a dataset and a process group.
        self.num_replicas, self.rank, self.seed, self.epoch = world, rank, seed, 0
        self.size, self.shuffle, self.drop_last = num_samples, True, True
        self.num_samples = num_samples // world
        self.total_size = self.num_samples * world

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        for index in order[self.rank :: self.num_replicas][: self.num_samples]:
            yield int(index), self.epoch

    def __len__(self) -> int:
        return self.num_samples


class EvalSampler(DistributedSampler):
    """Indices ``rank, rank + world, ...``: every video exactly once over all ranks, no padding.

    Ranks may get counts that differ by one; with ``world == 1`` this is ``range(n)``. A
    ``DistributedSampler`` subclass, so Lightning does not replace it with one that pads.
    """

    def __init__(self, num_samples: int, rank: int | None = None, world: int | None = None):
        rank, world = _rank_world(rank, world)
        self.num_replicas, self.rank, self.seed, self.epoch = world, rank, 0, 0
        self.size, self.shuffle, self.drop_last = num_samples, False, False
        self.num_samples = math.ceil(max(num_samples - rank, 0) / world)
        self.total_size = num_samples

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.size, self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples
