"""nano-CLIP: a tiny open_clip ViT CLIP pretrained in CPU minutes on SynthMotion frames + captions.

The demo has no network and no CLIP weights, so it makes its own: `ezclip-nano` (an open_clip
JSON config in `models/configs/`) trained from scratch with open_clip's contrastive loss on
single frames from `ezclip.data.synth.sample_frame`, whose captions use the words of the
SynthMotion class descriptions (position, size, mark direction, visibility). The weights are an
open_clip state dict, so `open_clip.create_model("ezclip-nano", pretrained=path)` and
`build_ezclip("ezclip-nano", pretrained=path)` load them. They are cached, keyed by every
setting that changes them, so later runs reuse them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from ezclip.data import synth

NANO = "ezclip-nano"
CONFIG_PATH = Path(__file__).parent / "models" / "configs" / f"{NANO}.json"
# Training is counted in steps (same seed -> same weights); `minutes` only caps the wall time on
# slow or busy machines (the weights then depend on the machine, and the JSON says so).
DEFAULTS = {
    "steps": 160,
    "minutes": 4.0,
    "seed": 0,
    "batch_size": 256,
    "lr": 1e-3,
    "weight_decay": 0.05,
    "warmup_steps": 10,
}
RETRIEVAL_CAPTIONS = 64  # candidates per retrieval round (chance = 1/64)
RETRIEVAL_ROUNDS = 8
# Captions name colour and shape too: they give the contrastive loss its first, easy signal. With
# position/size/mark words only, the loss stayed at chance (ln batch) for 200 steps (measured).
APPEARANCE_WORDS = True


def default_cache_dir() -> Path:
    """$EZCLIP_CACHE/nano, else ~/.cache/ezclip/nano."""
    root = os.environ.get("EZCLIP_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "ezclip") / "nano"


def settings_key(settings: dict) -> str:
    """Short hash of everything that changes the weights: settings, architecture, renderer version."""
    blob = json.dumps(
        {
            "settings": settings,
            "config": json.loads(CONFIG_PATH.read_text()),
            "synth": synth.VERSION,
            "appearance": APPEARANCE_WORDS,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def image_size() -> int:
    return int(json.loads(CONFIG_PATH.read_text())["vision_cfg"]["image_size"])


def to_model_input(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float normalized with CLIP's mean/std."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _create(seed: int):
    import open_clip

    import ezclip.models.backbone  # noqa: F401  (registers the project's configs with open_clip)

    torch.manual_seed(seed)
    model = open_clip.create_model(NANO)
    return model, open_clip.get_tokenizer(NANO)


@torch.no_grad()
def retrieval_top1(model, tokenizer, seed: int = 12345, rounds: int = RETRIEVAL_ROUNDS) -> float:
    """Held-out image -> text top-1 among RETRIEVAL_CAPTIONS captions (a hit if the caption text matches)."""
    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    hits = total = 0
    for _ in range(rounds):
        images, captions = synth.sample_frames(rng, image_size(), RETRIEVAL_CAPTIONS, APPEARANCE_WORDS)
        image_features = torch.nn.functional.normalize(model.encode_image(to_model_input(images)), dim=-1)
        text_features = torch.nn.functional.normalize(model.encode_text(tokenizer(captions)), dim=-1)
        best = (image_features @ text_features.t()).argmax(dim=1)
        hits += sum(captions[int(j)] == captions[i] for i, j in enumerate(best))
        total += len(captions)
    model.train(was_training)
    return hits / total


def _param_groups(model, weight_decay: float) -> list[dict]:
    # nanoGPT's split: decay matrices, not biases, norms, embeddings-as-vectors or the logit scale.
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def pretrain(
    out_path: str | Path,
    steps: int = DEFAULTS["steps"],
    minutes: float = DEFAULTS["minutes"],
    seed: int = DEFAULTS["seed"],
    batch_size: int = DEFAULTS["batch_size"],
    lr: float = DEFAULTS["lr"],
    weight_decay: float = DEFAULTS["weight_decay"],
    warmup_steps: int = DEFAULTS["warmup_steps"],
    progress: bool = True,
) -> dict:
    """Train nano-CLIP from scratch for `steps` steps (at most `minutes` of wall time); save its
    open_clip state dict to `out_path`.

    Each step renders `batch_size` fresh captioned frames. The learning rate warms up for
    `warmup_steps` steps, then follows a cosine to zero at `steps`. Returns the metrics also
    written beside the weights (`<out_path>.json`), with `stopped_early` if the time cap hit.
    """
    from open_clip.loss import ClipLoss

    model, tokenizer = _create(seed)
    model.train()
    optimizer = torch.optim.AdamW(_param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.98), eps=1e-6)
    loss_fn = ClipLoss()
    rng = np.random.default_rng(seed)
    budget = minutes * 60.0
    start = time.perf_counter()
    step, loss_value, curve = 0, float("nan"), []
    with _progress(progress) as bar:
        task = bar.add_task("pretraining nano-CLIP", total=steps)
        while step < steps and (time.perf_counter() - start < budget or step == 0):
            scale = min(1.0, (step + 1) / warmup_steps) * 0.5 * (1 + math.cos(math.pi * step / steps))
            for group in optimizer.param_groups:
                group["lr"] = lr * scale
            images, captions = synth.sample_frames(rng, image_size(), batch_size, APPEARANCE_WORDS)
            image_features, text_features, logit_scale = model(to_model_input(images), tokenizer(captions))
            loss = loss_fn(image_features, text_features, logit_scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():  # CLIP's clamp: temperature at most 100
                model.logit_scale.clamp_(0, math.log(100))
            step, loss_value = step + 1, float(loss.detach())
            if step % 10 == 0 or step == 1:
                curve.append([step, round(loss_value, 3)])
            bar.update(task, completed=step, description=f"nano-CLIP loss {loss_value:.3f}")
    train_seconds = time.perf_counter() - start
    metrics = {
        "model": NANO,
        "retrieval_top1": retrieval_top1(model, tokenizer),
        "retrieval_candidates": RETRIEVAL_CAPTIONS,
        "chance": 1 / RETRIEVAL_CAPTIONS,
        "train_seconds": round(train_seconds, 1),
        "steps": step,
        "stopped_early": step < steps,
        "images_seen": step * batch_size,
        "final_loss": round(loss_value, 4),
        "loss_curve": curve,  # [step, loss]; chance is ln(batch_size)
        "logit_scale": round(float(model.logit_scale.detach().exp()), 2),
        "settings": {
            "steps": steps,
            "minutes": minutes,
            "seed": seed,
            "batch_size": batch_size,
            "lr": lr,
            "weight_decay": weight_decay,
            "warmup_steps": warmup_steps,
        },
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out_path)
    out_path.with_suffix(".json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def ensure_nano(
    cache_dir: str | Path | None = None,
    steps: int = DEFAULTS["steps"],
    minutes: float = DEFAULTS["minutes"],
    seed: int = DEFAULTS["seed"],
    batch_size: int = DEFAULTS["batch_size"],
    lr: float = DEFAULTS["lr"],
    force: bool = False,
    progress: bool = True,
    verbose: bool = True,
) -> Path:
    """Path to nano-CLIP weights for these settings: reused from the cache, else pretrained now."""
    # The time cap is not part of the key: it only matters on machines too slow to finish.
    settings = {"steps": steps, "seed": seed, "batch_size": batch_size, "lr": lr}
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"{NANO}-{settings_key(settings)}.pt"
    info = path.with_suffix(".json")
    if path.is_file() and info.is_file() and not force:
        metrics = json.loads(info.read_text())
        _say(verbose, f"reusing nano-CLIP weights {path} (retrieval top-1 {metrics['retrieval_top1']:.1%})")
        return path
    _say(verbose, f"pretraining nano-CLIP: {steps} steps of {batch_size} frames (seed {seed}) -> {path}")
    metrics = pretrain(path, steps=steps, minutes=minutes, seed=seed, batch_size=batch_size, lr=lr, progress=progress)
    _say(
        verbose,
        f"nano-CLIP: retrieval top-1 {metrics['retrieval_top1']:.1%} among {RETRIEVAL_CAPTIONS} captions "
        f"(chance {1 / RETRIEVAL_CAPTIONS:.1%}), {metrics['steps']} steps in {metrics['train_seconds']:.0f} s",
    )
    return path


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(message, flush=True)


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=Console(stderr=True), disable=not enabled)


# --- command line ------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", default=None, help="default: $EZCLIP_CACHE/nano or ~/.cache/ezclip/nano")
    parser.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="training steps")
    parser.add_argument("--minutes", type=float, default=DEFAULTS["minutes"], help="wall-clock cap on training")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="captioned frames per step")
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    parser.add_argument("--force", action="store_true", help="retrain even if cached weights exist")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.minutes <= 0 or args.steps < 1:
        raise ValueError(f"need --minutes > 0 and --steps >= 1, got {args.minutes} and {args.steps}")
    path = ensure_nano(
        args.cache_dir,
        steps=args.steps,
        minutes=args.minutes,
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        force=args.force,
        progress=args.progress,
    )
    print(path)
    return 0
