"""Hydra plumbing shared by the entry points: the config folder, resolvers, object builders."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# conf/ at the repository root (ezclip is used from a clone); EZCLIP_CONF points elsewhere.
CONFIG_DIR = Path(os.environ.get("EZCLIP_CONF", Path(__file__).resolve().parents[2] / "conf"))


def _nano_weights(cache_dir: str) -> str:
    from ezclip.nano import ensure_nano

    return str(ensure_nano(cache_dir=Path(cache_dir) / "nano"))


def register_resolvers() -> None:
    """`${nano_weights:<cache dir>}`: the cached nano-CLIP weights, pretrained on first use."""
    if not OmegaConf.has_resolver("nano_weights"):
        OmegaConf.register_new_resolver("nano_weights", _nano_weights, use_cache=True)


def instantiate_callbacks(callbacks_cfg: DictConfig | None) -> list:
    callbacks = []
    for name, cb_cfg in (callbacks_cfg or {}).items():
        if isinstance(cb_cfg, DictConfig) and "_target_" in cb_cfg:
            callbacks.append(hydra.utils.instantiate(cb_cfg))
        else:
            raise ValueError(f"callbacks.{name} has no _target_")
    return callbacks


def instantiate_loggers(logger_cfg: DictConfig | None, **wandb_kwargs: Any) -> list:
    """Every logger of the config; the W&B one also gets the run name, tags and group."""
    loggers = []
    for name, lg_cfg in (logger_cfg or {}).items():
        if not (isinstance(lg_cfg, DictConfig) and "_target_" in lg_cfg):
            raise ValueError(f"logger.{name} has no _target_")
        extra = {k: v for k, v in wandb_kwargs.items() if v is not None} if "wandb" in lg_cfg._target_ else {}
        loggers.append(hydra.utils.instantiate(lg_cfg, **extra))
    return loggers


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    """`last` -> <run dir>/checkpoints/last.ckpt (must exist); a path must exist too."""
    if not ckpt_path:
        return None
    path = output_dir / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if not path.is_file():
        hint = " (resume needs the run's folder: hydra.run.dir=<run dir> ckpt_path=last)" if ckpt_path == "last" else ""
        raise FileNotFoundError(f"checkpoint to resume from not found: {path}{hint}")
    log.info("resuming from %s", path)
    return str(path)
