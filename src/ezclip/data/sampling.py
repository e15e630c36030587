"""TSN frame sampling: split a video into T equal segments and take one frame from each.

Indices are 0-based frame numbers. Videos with fewer than T frames repeat frames (segments of
less than one frame map to the frame they start in). This module must stay free of torch: it is
imported by the decoder subprocess, whose start-up time it would add to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _segment_edges(num_video_frames: int, num_segments: int) -> np.ndarray:
    """Float segment boundaries, shape (num_segments + 1,), from 0 to num_video_frames."""
    if num_video_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_video_frames}")
    if num_segments < 1:
        raise ValueError(f"num_segments must be >= 1, got {num_segments}")
    return np.linspace(0.0, num_video_frames, num_segments + 1)


def sample_train(num_video_frames: int, num_segments: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random frame inside each segment.

    Returns:
        int64 (num_segments,), non-decreasing, each in [floor(start_i), max(ceil(end_i) - 1, floor(start_i))].
    """
    edges = _segment_edges(num_video_frames, num_segments)
    starts = np.floor(edges[:-1]).astype(np.int64)
    # A segment [start, end) holds the frames start..ceil(end)-1; at least its start frame.
    ends = np.maximum(np.ceil(edges[1:]).astype(np.int64), starts + 1)
    return np.minimum(rng.integers(starts, ends), num_video_frames - 1)


def sample_test(num_video_frames: int, num_segments: int, n_clips: int = 1) -> np.ndarray:
    """Deterministic views: clip k takes the frame at fraction (k + 0.5) / n_clips of every segment.

    With n_clips = 1 that is the middle frame of each segment (the TSN test protocol); more clips
    are evenly spaced offsets inside the segment, so the same inputs always give the same views.

    Returns:
        int64 (n_clips, num_segments).
    """
    if n_clips < 1:
        raise ValueError(f"n_clips must be >= 1, got {n_clips}")
    edges = _segment_edges(num_video_frames, num_segments)
    length = edges[1] - edges[0]  # frames per segment, may be < 1
    offsets = (np.arange(n_clips) + 0.5) / n_clips * length  # (n_clips,)
    positions = edges[None, :-1] + offsets[:, None]  # (n_clips, num_segments)
    return np.minimum(np.floor(positions).astype(np.int64), num_video_frames - 1)


@dataclass(frozen=True)
class ClipSampler:
    """Picklable ``frame count -> indices`` rule, sent to the decoder so it opens the video once.

    ``train=True``: ``sample_train`` with a Generator seeded by ``seed`` (a tuple of ints), shape (T,).
    ``train=False``: ``sample_test`` flattened clip-major, shape (n_clips * T,).
    """

    num_frames: int
    train: bool
    n_clips: int = 1
    seed: tuple[int, ...] = (0,)

    def __call__(self, num_video_frames: int) -> np.ndarray:
        if self.train:
            return sample_train(num_video_frames, self.num_frames, np.random.default_rng(list(self.seed)))
        return sample_test(num_video_frames, self.num_frames, self.n_clips).reshape(-1)
