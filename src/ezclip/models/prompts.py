"""Temporal visual prompts: one learnable vector per (layer, frame index)."""

from __future__ import annotations

import math

import torch
from torch import nn

# The authors' VPT-style init constant uses a 16x16 patch whatever the backbone's patch size.
_INIT_PATCH = 16


class TemporalPrompts(nn.Module):
    """P with shape (L, T, D): row l holds the T prompts that enter vision block l.

    Init uniform in [-a, a], a = sqrt(6 / (3 * 16 * 16 + D)); dropout on the vectors in training.
    """

    def __init__(self, num_layers: int, num_frames: int, width: int, dropout: float = 0.1):
        super().__init__()
        assert num_layers >= 1 and num_frames >= 1, "temporal prompts need at least one layer and one frame"
        self.num_layers = num_layers
        self.num_frames = num_frames
        self.embeddings = nn.Parameter(torch.empty(num_layers, num_frames, width))  # (L, T, D)
        bound = math.sqrt(6.0 / (3 * _INIT_PATCH * _INIT_PATCH + width))
        nn.init.uniform_(self.embeddings, -bound, bound)
        self.dropout = nn.Dropout(dropout)

    def forward(self, layer: int) -> torch.Tensor:
        """The prompts of one layer, (T, D), with dropout applied in training."""
        return self.dropout(self.embeddings[layer])
