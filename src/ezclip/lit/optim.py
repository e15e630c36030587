"""Optimizer and schedule helpers shared by every training loop of the project."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def decay_groups(parameters: Iterable[torch.nn.Parameter], decay_1d: bool = False) -> list[dict]:
    """Parameter groups of the trainable tensors: matrices decay; 1-D tensors (biases, norms) only if `decay_1d`.

    The second group carries `weight_decay=0.0`; the first takes the optimizer's own setting.
    Empty groups are left out.
    """
    decay, no_decay = [], []
    for param in parameters:
        if param.requires_grad:
            (decay if param.ndim >= 2 or decay_1d else no_decay).append(param)
    groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_fraction: float = 0.1,
    warmup_steps: int | None = None,
    warmup_epochs: float | None = None,
    steps_per_epoch: float | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup, then cosine decay to 0 at `total_steps`, stepped per optimizer step.

    The warmup lasts `warmup_steps` steps when given; else `warmup_epochs` epochs of
    `steps_per_epoch` steps (the authors' 5 epochs); else `warmup_fraction` of `total_steps` (the
    paper's 10%).
    """
    if total_steps < 1:
        raise ValueError(f"a schedule needs at least one optimizer step, got total_steps={total_steps}")
    if warmup_steps is None and warmup_epochs is not None:
        if steps_per_epoch is None:
            raise ValueError("warmup_epochs needs steps_per_epoch")
        warmup_steps = int(round(warmup_epochs * steps_per_epoch))
    if warmup_steps is None:
        warmup_steps = max(1, int(round(total_steps * warmup_fraction))) if warmup_fraction > 0 else 0

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
