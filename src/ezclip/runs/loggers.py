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
