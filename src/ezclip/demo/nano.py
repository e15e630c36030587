"""`ezclip pretrain-nano`: a tiny open_clip ViT CLIP pretrained in CPU minutes on SynthMotion frames.

The demo has no network and no CLIP weights, so it makes its own: `ezclip-nano` (the open_clip
JSON config beside this file) trained from scratch with open_clip's contrastive loss on single
frames from `ezclip.demo.synth.sample_frames`, captioned in the words of the SynthMotion class
descriptions. It writes `ezclip-nano.pt` (an open_clip state dict), `ezclip-nano.json` (the
architecture) and `ezclip-nano.metrics.json` into one folder, by default the one
`conf/model/backbone/nano.yaml` reads, so `build_ezclip("<folder>/ezclip-nano.json",
pretrained="<folder>/ezclip-nano.pt")` loads them. A rerun with the same settings reuses them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ezclip.demo import synth
from ezclip.runs.progress import progress_bar

if TYPE_CHECKING:
    import torch

NANO = "ezclip-nano"
ARCHITECTURE = Path(__file__).with_name(f"{NANO}.json")  # the open_clip config, copied beside the weights
# Training is counted in steps: same seed and settings -> same weights. `minutes` is only a guard
# against a machine far too slow: reaching it stops pretraining with an error, never with other weights.
DEFAULTS = {
    "steps": 160,
    "minutes": 30.0,
    "seed": 0,
    "batch_size": 256,
    "lr": 1e-3,
    "weight_decay": 0.05,
    "warmup_steps": 10,
}
# The settings that change the weights (`minutes` does not: it can only stop a run).
WEIGHT_SETTINGS = ("steps", "seed", "batch_size", "lr", "weight_decay", "warmup_steps")
RETRIEVAL_CAPTIONS = 64  # candidates per retrieval round (chance = 1/64)
RETRIEVAL_ROUNDS = 8
# Captions name colour and shape: the words of the demo's classes (colour changes), and the contrastive
# loss's first, easy signal. With position/size/mark words only, the loss stayed at chance (ln batch)
# for 200 steps (measured).
APPEARANCE_WORDS = True


class PretrainingStopped(TimeoutError):
    """The wall-clock guard stopped pretraining before its last step; nothing was written."""


@dataclass(frozen=True)
class NanoFiles:
    """Where `ezclip pretrain-nano` writes: the weights, their architecture and the metrics."""

    folder: Path

    @property
    def weights(self) -> Path:
        return self.folder / f"{NANO}.pt"

    @property
    def architecture(self) -> Path:
        return self.folder / f"{NANO}.json"

    @property
    def metrics(self) -> Path:
        return self.folder / f"{NANO}.metrics.json"


def default_folder() -> Path:
    """$EZCLIP_CACHE/nano, else ~/.cache/ezclip/nano (what conf/model/backbone/nano.yaml reads)."""
    root = os.environ.get("EZCLIP_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "ezclip") / "nano"


def weight_settings(**settings) -> dict:
    """Every setting that changes the weights, plus the architecture and the renderer's version."""
    return {
        **{key: settings[key] for key in WEIGHT_SETTINGS},
        "architecture": json.loads(ARCHITECTURE.read_text()),
        "synth": synth.VERSION,
        "appearance": APPEARANCE_WORDS,
    }


def image_size() -> int:
    return int(json.loads(ARCHITECTURE.read_text())["vision_cfg"]["image_size"])


def to_model_input(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 frames -> (N, 3, H, W) float normalized with CLIP's mean/std."""
    from ezclip.data.transforms import normalize_video, to_tensor_video

    return normalize_video(to_tensor_video(images))


def _create(seed: int):
    import open_clip
    import torch

    from ezclip.models.backbone import register_model_config

    register_model_config(ARCHITECTURE)
    torch.manual_seed(seed)
    model = open_clip.create_model(NANO)
    return model, open_clip.get_tokenizer(NANO)


def retrieval_top1(model, tokenizer, seed: int = 12345, rounds: int = RETRIEVAL_ROUNDS) -> float:
    """Held-out image -> text top-1 among RETRIEVAL_CAPTIONS captions (a hit if the caption text matches)."""
    import torch

    with torch.no_grad():
        return _retrieval_top1(model, tokenizer, seed, rounds)


def _retrieval_top1(model, tokenizer, seed: int, rounds: int) -> float:
    import torch

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


def pretrain(
    files: NanoFiles,
    steps: int = DEFAULTS["steps"],
    minutes: float = DEFAULTS["minutes"],
    seed: int = DEFAULTS["seed"],
    batch_size: int = DEFAULTS["batch_size"],
    lr: float = DEFAULTS["lr"],
    weight_decay: float = DEFAULTS["weight_decay"],
    warmup_steps: int = DEFAULTS["warmup_steps"],
    progress: bool = True,
) -> dict:
    """Train nano-CLIP from scratch for exactly `steps` steps; write `files` (weights, architecture, metrics).

    Each step renders `batch_size` fresh captioned frames. The learning rate warms up for
    `warmup_steps` steps, then follows a cosine to zero at `steps`. Raises PretrainingStopped (and
    writes nothing) if `minutes` of wall time pass first. Returns the metrics.
    """
    import torch
    from open_clip.loss import ClipLoss

    from ezclip.lit.optim import decay_groups, warmup_cosine

    model, tokenizer = _create(seed)
    model.train()
    optimizer = torch.optim.AdamW(
        decay_groups(model.parameters()), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98), eps=1e-6
    )
    schedule = warmup_cosine(optimizer, steps, warmup_steps=warmup_steps)
    loss_fn = ClipLoss()
    rng = np.random.default_rng(seed)
    budget = minutes * 60.0
    start = time.perf_counter()
    loss_value, curve = float("nan"), []
    with progress_bar(progress) as bar:
        task = bar.add_task("pretraining nano-CLIP", total=steps)
        for step in range(1, steps + 1):
            if time.perf_counter() - start > budget:
                raise PretrainingStopped(
                    f"nano-CLIP pretraining reached its {minutes:g}-minute guard after {step - 1} of {steps} steps; "
                    "nothing was written (weights from fewer steps would differ). Raise --minutes or lower --steps."
                )
            images, captions = synth.sample_frames(rng, image_size(), batch_size, APPEARANCE_WORDS)
            image_features, text_features, logit_scale = model(to_model_input(images), tokenizer(captions))
            loss = loss_fn(image_features, text_features, logit_scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():  # CLIP's clamp: temperature at most 100
                model.logit_scale.clamp_(0, math.log(100))
            loss_value = float(loss.detach())
            if step % 10 == 0 or step == 1:
                curve.append([step, round(loss_value, 3)])
            bar.update(task, completed=step, description=f"nano-CLIP loss {loss_value:.3f}")
    settings = {"steps": steps, "seed": seed, "batch_size": batch_size, "lr": lr,
                "weight_decay": weight_decay, "warmup_steps": warmup_steps}  # fmt: skip
    metrics = {
        "model": NANO,
        "retrieval_top1": retrieval_top1(model, tokenizer),
        "retrieval_candidates": RETRIEVAL_CAPTIONS,
        "chance": 1 / RETRIEVAL_CAPTIONS,
        "train_seconds": round(time.perf_counter() - start, 1),
        "steps": steps,
        "images_seen": steps * batch_size,
        "final_loss": round(loss_value, 4),
        "loss_curve": curve,  # [step, loss]; chance is ln(batch_size)
        "logit_scale": round(float(model.logit_scale.detach().exp()), 2),
        "settings": weight_settings(**settings),
    }
    files.folder.mkdir(parents=True, exist_ok=True)
    tmp = files.weights.with_name(files.weights.name + ".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(files.weights)
    files.architecture.write_text(ARCHITECTURE.read_text())
    files.metrics.write_text(json.dumps(metrics, indent=2) + "\n")  # last: its presence marks a finished run
    return metrics


def ensure_nano(
    folder: str | Path | None = None,
    steps: int = DEFAULTS["steps"],
    minutes: float = DEFAULTS["minutes"],
    seed: int = DEFAULTS["seed"],
    batch_size: int = DEFAULTS["batch_size"],
    lr: float = DEFAULTS["lr"],
    force: bool = False,
    progress: bool = True,
    verbose: bool = True,
) -> NanoFiles:
    """nano-CLIP files in `folder` (default: `default_folder()`) for these settings.

    Files made with the same settings are reused; other settings (or `force`) pretrain again and
    replace them.
    """
    files = NanoFiles(Path(folder) if folder is not None else default_folder())
    settings = {**DEFAULTS, "steps": steps, "seed": seed, "batch_size": batch_size, "lr": lr}
    wanted = weight_settings(**settings)
    if not force and files.weights.is_file() and files.architecture.is_file() and files.metrics.is_file():
        metrics = json.loads(files.metrics.read_text())
        if metrics.get("settings") == wanted:
            _say(verbose, f"reusing nano-CLIP {files.weights} (retrieval top-1 {metrics['retrieval_top1']:.1%})")
            return files
        _say(verbose, f"{files.weights} was pretrained with other settings: pretraining again")
    _say(verbose, f"pretraining nano-CLIP: {steps} steps of {batch_size} frames (seed {seed}) -> {files.weights}")
    metrics = pretrain(
        files, **{k: v for k, v in settings.items() if k != "minutes"}, minutes=minutes, progress=progress
    )
    _say(
        verbose,
        f"nano-CLIP: retrieval top-1 {metrics['retrieval_top1']:.1%} among {RETRIEVAL_CAPTIONS} captions "
        f"(chance {1 / RETRIEVAL_CAPTIONS:.1%}), {steps} steps in {metrics['train_seconds']:.0f} s",
    )
    return files


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(message, flush=True)


# --- command line ------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="where to write ezclip-nano.{pt,json}; default $EZCLIP_CACHE/nano or ~/.cache/ezclip/nano",
    )
    parser.add_argument(
        "--steps", type=int, default=DEFAULTS["steps"], help="optimizer steps (the weights depend on it)"
    )
    parser.add_argument(
        "--minutes", type=float, default=DEFAULTS["minutes"], help="wall-clock guard: stop with an error, write nothing"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULTS["seed"], help="seed of the weights and the rendered frames"
    )
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="captioned frames per step")
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="peak learning rate (AdamW)")
    parser.add_argument("--force", action="store_true", help="retrain even if cached weights exist")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.minutes <= 0 or args.steps < 1:
        raise ValueError(f"need --minutes > 0 and --steps >= 1, got {args.minutes} and {args.steps}")
    files = ensure_nano(
        args.cache_dir,
        steps=args.steps,
        minutes=args.minutes,
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        force=args.force,
        progress=args.progress,
    )
    print(files.weights)
    return 0
