"""results.json: what a run measured, and everything needed to say how."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

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
