"""Bottleneck adapters placed between a block's attention and MLP residuals."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Adapter(nn.Module):
    """x + up(GELU(down(x))), D -> D*ratio -> D, exact GELU.

    `up` starts at zero, so a fresh adapter is the identity.
    """

    def __init__(self, width: int, ratio: float = 0.25):
        super().__init__()
        hidden = int(width * ratio)
        assert hidden >= 1, f"adapter ratio {ratio} leaves no hidden units for width {width}"
        self.down = nn.Linear(width, hidden)
        self.up = nn.Linear(hidden, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(F.gelu(self.down(x)))
