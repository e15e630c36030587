"""A run's record: results.json (what it measured and how), per-video predictions, the W&B table."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

PACKAGES = (
    "ezclip",
    "torch",
    "torchvision",
    "open_clip_torch",
    "lightning",
    "hydra-core",
    "torchmetrics",
    "decord",
    "av",
    "numpy",
    "wandb",
)


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(directory: str | Path | None = None) -> dict[str, Any]:
    """The commit of the code that ran, and whether the work tree had uncommitted changes."""
    directory = Path(directory or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(dirty) if commit else None}


def device_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "host": platform.node(),
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def write_results(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write results.json atomically, with provenance added to `payload`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {**payload, "git": git_state(), "packages": package_versions(), "device": device_info()}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(full, indent=2, default=str))
    tmp.replace(path)
    return path


def record_run(cfg, trainer, module, loggers: list, started: float, **extra: Any) -> None:
    """On rank 0: the test predictions, results.json (common fields + `extra`) and the W&B table."""
    from omegaconf import OmegaConf

    from ezclip.runs.naming import ablation_factors, cell_name, run_name

    output_dir = Path(cfg.paths.output_dir)
    save_predictions(module, output_dir)
    write_results(
        output_dir / "results.json",
        {
            "task": cfg.task_name,
            "run_name": run_name(cfg),
            "cell": cell_name(cfg),
            "factors": ablation_factors(cfg),
            "recipe": (cfg.get("recipe") or {}).get("name", "custom"),
            "train_list": list_identity(cfg.data.get("train_list")),
            "config": OmegaConf.to_container(cfg, resolve=True),
            "world_size": trainer.world_size,
            "precision": str(trainer.precision),
            **extra,
            "test": dict(module.test_results),
            "skipped_videos": sorted(module.skipped_paths),
            "wall_seconds": round(time.time() - started, 1),
        },
    )
    log_results_table(loggers, module.test_results, output_dir)
    log_figures(loggers, output_dir)


def list_identity(path: str | None) -> dict[str, Any] | None:
    """What tells a training list apart from another: its path, its number of videos and its sha256."""
    if not path or not Path(path).is_file():
        return None
    data = Path(path).read_bytes()
    videos = sum(1 for line in data.decode("utf-8-sig", "replace").splitlines() if line.strip())
    return {"path": str(path), "videos": videos, "sha256": hashlib.sha256(data).hexdigest()}


def save_predictions(module, output_dir: Path) -> None:
    """<run>/predictions/<test set>.npz: index, label, top-1 class, class probabilities and video embedding
    of every test video."""
    for name in module.test_results:
        predictions = module.gathered_predictions(name)
        if predictions is not None:
            path = output_dir / "predictions" / f"{name}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(path, **predictions)


RESULT_METRICS = ("top1", "top5", "mean_class_acc")


def log_results_table(loggers: list, test_results: dict[str, dict[str, float]], output_dir: Path) -> None:
    """The per-test-set results as a W&B table and a bar chart image, where a W&B logger is present."""
    from ezclip.runs.plots import grouped_bars

    wandb_loggers = _wandb_loggers(loggers)
    if not wandb_loggers or not test_results:
        return
    columns = ["test_set", *RESULT_METRICS, "num_videos", "num_skipped"]
    rows = [[name] + [r.get(c) for c in columns[1:]] for name, r in test_results.items()]
    names = list(test_results)
    chart = grouped_bars(
        output_dir / "test_results.png",
        names,
        {metric: [100 * test_results[n][metric] for n in names] for metric in RESULT_METRICS},
    )
    for logger in wandb_loggers:
        logger.log_table(key="test/results", columns=columns, data=rows)
        logger.log_image(key="test/results_chart", images=[str(chart)])


def log_figures(loggers: list, output_dir: Path) -> None:
    """The run's figures (`ezclip viz`, written to <run>/viz) as W&B images, where a W&B logger is present."""
    wandb_loggers = _wandb_loggers(loggers)
    if not wandb_loggers:
        return
    from ezclip.runs.figures import write_figures

    for path in write_figures(output_dir):
        for logger in wandb_loggers:
            logger.log_image(key=f"viz/{path.stem}", images=[str(path)])


def _wandb_loggers(loggers: list) -> list:
    from lightning.pytorch.loggers import WandbLogger

    return [logger for logger in loggers if isinstance(logger, WandbLogger)]
