"""Parameter, FLOP and throughput accounting (the paper's Table 7 columns)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ezclip.models import backbone
from ezclip.models.ezclip import EZCLIP, build_ezclip
from ezclip.models.losses import contrastive_loss, motion_loss


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


def benchmark_steps(
    model: EZCLIP,
    batch_size: int,
    num_texts: int = 10,
    text_words: int = 0,
    autocast_dtype: torch.dtype | None = None,
    torch_compile: bool = False,
) -> dict[str, Callable[[], None]]:
    """One step of each kind the benchmarks time, on random inputs on the model's device.

    - ``plain``: open_clip ``encode_image`` on the B*T frames + mean over T (eval, no grad): CLIP
      used as a video model, the reference of the ratios;
    - ``ezclip``: ``encode_video`` (eval, no grad);
    - ``train``: a training step: forward of the video and of ``num_texts`` class texts (each
      lengthened by ``4 * text_words`` words), contrastive (ce) + motion loss, backward, AdamW on the
      trainable set (train mode).
    Each step sets the model's mode itself, so the kinds can be interleaved. ``autocast_dtype``:
    run under ``torch.autocast`` with it (None: the model's own dtype). ``torch_compile``: each kind's
    computation (not the optimizer step) goes through ``torch.compile``; the first calls compile it, so
    time only after warm-ups. Callers synchronise CUDA.
    """
    device = next(model.parameters()).device
    frames, size = model.num_frames, model.image_size
    video = torch.randn(batch_size, frames, 3, size, size, device=device)
    texts = [f"action number {i}" + " with a longer description" * text_words for i in range(num_texts)]
    tokens = model.tokenize(texts).to(device)
    labels = torch.arange(batch_size, device=device) % num_texts
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def autocast():
        return torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)

    def maybe_compiled(function: Callable) -> Callable:
        return torch.compile(function) if torch_compile else function

    @maybe_compiled
    def plain_forward(video: torch.Tensor) -> torch.Tensor:
        return model.clip.encode_image(video.flatten(0, 1)).view(batch_size, frames, -1).mean(1)  # (B, E)

    @maybe_compiled
    def training_loss(video: torch.Tensor) -> torch.Tensor:
        frame_embeddings = model.encode_frames(video)  # (B, T, E)
        logits = model.similarity_logits(frame_embeddings.mean(1), model.encode_text(tokens))  # (B, texts)
        return contrastive_loss(logits, labels) + motion_loss(frame_embeddings)

    video_forward = maybe_compiled(model.encode_video)

    def plain() -> None:
        model.eval()
        with torch.no_grad(), autocast():
            plain_forward(video)

    def ezclip() -> None:
        model.eval()
        with torch.no_grad(), autocast():
            video_forward(video)

    def train() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = training_loss(video)
        loss.backward()
        optimizer.step()

    return {"plain": plain, "ezclip": ezclip, "train": train}


def measure_throughput(
    backbone: str,
    frames: int,
    batch_size: int,
    device: str,
    repeats: int = 10,
    autocast_dtype: torch.dtype | None = torch.float16,
    **options,
) -> dict:
    """Inference throughput in views per second (one view = one clip of ``frames`` frames), Table 7's TP.

    EZ-CLIP's ``encode_video`` and, for reference, plain open_clip frame encoding + temporal mean, on
    ``batch_size`` random views; ``autocast_dtype`` autocast on CUDA (None: fp32), fp32 on CPU. Median over
    ``repeats`` after two warm-up batches. Random weights: the cost does not depend on their values.
    ``options`` go to ``build_ezclip`` (tvp, adapters, ...).
    """
    torch.manual_seed(0)
    model = build_ezclip(backbone, num_frames=frames, device=device, **options)
    cuda = device.startswith("cuda")
    autocast_dtype = autocast_dtype if cuda else None
    steps = benchmark_steps(model, batch_size, autocast_dtype=autocast_dtype)
    result = {"backbone": backbone, "frames": frames, "batch_size": batch_size, "device": device,
              "dtype": f"{str(autocast_dtype).removeprefix('torch.')} autocast" if autocast_dtype else "float32",
              "repeats": repeats}  # fmt: skip
    if cuda:
        result["device_name"] = torch.cuda.get_device_name(torch.device(device))
    for name in ("ezclip", "plain"):
        times = [time_step(steps[name], device) for _ in range(repeats + 2)][2:]
        result[f"{name}_views_per_s"] = batch_size / statistics.median(times)
    return result


def time_step(
    step: Callable[[], None], device: str | torch.device, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds one call of ``step`` takes by ``clock`` (wall time by default), CUDA work included."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    start = clock()
    step()
    if cuda:
        torch.cuda.synchronize(device)
    return clock() - start
