"""Logger factories: W&B online when logged in, offline otherwise, never a prompt."""

from __future__ import annotations

import logging
import netrc
import os
from typing import Any

from lightning.pytorch.loggers import WandbLogger

log = logging.getLogger(__name__)


def wandb_logged_in() -> bool:
    """True when W&B credentials exist locally (environment or ~/.netrc); asks no server."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_logger(offline: bool = False, **kwargs: Any) -> WandbLogger:
    """A Lightning WandbLogger that goes offline by itself when nobody is logged in."""
    mode = os.environ.get("WANDB_MODE")
    if not offline and mode not in ("offline", "disabled") and not wandb_logged_in():
        log.info("W&B: not logged in, logging offline (sync later with `wandb sync <run>/wandb/offline-*`)")
        offline = True
    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(offline=offline or mode == "offline", **kwargs)


def ablation_factors(cfg) -> dict[str, str]:
    """The factors a run differs by in the paper's ablations, as short strings."""
    model, data = cfg.model, cfg.data
    text = data.get("text", {}) or {}
    protocol = cfg.get("protocol") or {}
    # The variant (e.g. all_base_samples, authors_split1_k600_232) tells apart runs of one protocol name.
    setting = [str(protocol["variant"])] if "variant" in protocol else []
    setting += [f"{k}{protocol[k]}" for k in ("seed", "shots", "split") if k in protocol]
    return {
        "backbone": str(model.get("backbone")),
        "frames": f"T{model.get('num_frames')}",
        "tvp": f"tvp-{model.get('tvp')}",
        "motion": "motion" if model.get("motion_loss") else "no-motion",
        "text": f"text-{text.get('source', 'names')}",
        "protocol": "-".join([str(protocol.get("name", "custom")), *setting]),
        "dataset": str(data.get("name", "videos")),
        "seed": f"seed{cfg.get('seed')}",
    }


def run_name(cfg) -> str:
    return "_".join(ablation_factors(cfg).values())
