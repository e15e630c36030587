"""Parameter and FLOP accounting (the paper's Table 7 columns)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ezclip.models import backbone
from ezclip.models.ezclip import EZCLIP


def _numel(params) -> int:
    return sum(p.numel() for p in params)


def count_parameters(model: EZCLIP) -> dict[str, int]:
    """Parameter counts: total, trainable, frozen, prompts, adapters, and the backbone's towers.

    `vision_total` = the frozen vision tower + prompts + vision adapters (what one view runs).
    """
    prompts = _numel(model.prompts.parameters()) if model.prompts is not None else 0
    vision_adapters = _numel(model.vision_adapters.parameters()) if model.vision_adapters is not None else 0
    text_adapters = _numel(model.text_adapters.parameters()) if model.text_adapters is not None else 0
    backbone_vision = _numel(backbone.vision_parameters(model.clip))
    return {
        "total": _numel(model.parameters()),
        "trainable": _numel(p for p in model.parameters() if p.requires_grad),
        "frozen": _numel(p for p in model.parameters() if not p.requires_grad),
        "prompts": prompts,
        "vision_adapters": vision_adapters,
        "text_adapters": text_adapters,
        "backbone": _numel(model.clip.parameters()),
        "backbone_vision": backbone_vision,
        "vision_total": backbone_vision + prompts + vision_adapters,
    }


def count_flops(model: EZCLIP, batch_size: int = 1) -> dict[str, float]:
    """Multiply-accumulates of `encode_video` for `batch_size` videos (one view each), in GMACs.

    Runs on the meta device (no memory, no time): build the model with `device="meta"`.
    - `full_gmacs`: every matmul, conv and attention product of the model as described (all tokens
      through all blocks), counted by torch.utils.flop_counter; comparable to other papers' counts.
    - `linear_conv_gmacs`: the same model, nn.Linear and nn.Conv2d modules only, as module-hook
      counters (fvcore, thop) count: they miss the attention projections and products.
    - `executed_gmacs`: what ezclip actually runs; its last block computes only the class token,
      the only token the pool reads, so this is below `full_gmacs`.
    `full_gflops` = 2 * `full_gmacs` (one multiply-accumulate = two floating-point operations).
    """
    device = next(model.parameters()).device
    size = model.image_size
    video = torch.zeros(batch_size, model.num_frames, 3, size, size, device=device)
    linear_conv_macs = 0

    def count_module(module: nn.Module, inputs, output) -> None:
        nonlocal linear_conv_macs
        if isinstance(module, nn.Linear):
            linear_conv_macs += inputs[0].numel() // module.in_features * module.in_features * module.out_features
        elif isinstance(module, nn.Conv2d):
            kernel = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            linear_conv_macs += output.numel() * kernel

    def count(all_tokens: bool, hooks: bool) -> float:
        handles = (
            [m.register_forward_hook(count_module) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
            if hooks
            else []
        )
        pooled_tokens = model.pooled_tokens
        was_training = model.training
        model.eval()
        if all_tokens:
            model.pooled_tokens = None
        counter = FlopCounterMode(display=False)
        try:
            with counter:
                model.encode_video(video)
        finally:
            model.pooled_tokens = pooled_tokens
            model.train(was_training)
            for handle in handles:
                handle.remove()
        return counter.get_total_flops() / 2

    full_macs = count(all_tokens=True, hooks=True)
    executed_macs = count(all_tokens=False, hooks=False)
    return {
        "full_gmacs": full_macs / 1e9,
        "full_gflops": 2 * full_macs / 1e9,
        "linear_conv_gmacs": linear_conv_macs / 1e9,
        "executed_gmacs": executed_macs / 1e9,
    }
