"""Loggers: W&B online when logged in (to whichever host), offline otherwise, never a prompt; one W&B run per job.

A Hydra multirun is one process, and Lightning's WandbLogger reuses an open W&B run: every job
therefore finishes its own run at its end (`finish_wandb`, also when the job fails), so the next
job starts a new one.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from lightning.pytorch.loggers import WandbLogger

log = logging.getLogger(__name__)

# How each kind of metric summarises in W&B: the final value, never the best (that would select on a test set).
METRIC_SUMMARIES = {"test/*": "last", "val/*": "last", "train/*": "last"}


def wandb_host() -> str:
    """The W&B server runs go to: $WANDB_BASE_URL, else what `wandb login --host` saved, else W&B's default."""
    from wandb.sdk import wandb_setup

    return os.environ.get("WANDB_BASE_URL") or wandb_setup.singleton().settings.base_url


def wandb_logged_in() -> bool:
    """True when W&B credentials for `wandb_host()` exist locally ($WANDB_API_KEY or ~/.netrc); asks no server."""
    from wandb.sdk.lib import wbauth

    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return wbauth.read_netrc_auth(host=wandb_host()) is not None
    except Exception:  # an unreadable .netrc is the same as none
        return False


def wandb_logger(offline: bool = False, **kwargs: Any) -> WandbLogger:
    """A Lightning WandbLogger that goes offline by itself when nobody is logged in to the W&B host."""
    mode = os.environ.get("WANDB_MODE")
    if not offline and mode not in ("offline", "disabled") and not wandb_logged_in():
        log.info(
            "W&B: not logged in to %s, logging offline (sync later with `wandb sync <run>/wandb/offline-*`)",
            wandb_host(),
        )
        offline = True
    os.environ.setdefault("WANDB_SILENT", "true")
    offline = offline or mode == "offline"
    if offline:
        # Said to wandb.init itself: W&B's settings may already be loaded (wandb_host), so the
        # WANDB_MODE that Lightning sets for offline runs would come too late.
        kwargs["mode"] = "offline"
    return WandbLogger(offline=offline, **kwargs)


def wandb_loggers(loggers: list) -> list[WandbLogger]:
    return [logger for logger in loggers if isinstance(logger, WandbLogger)]


def start_wandb(loggers: list) -> None:
    """Tell every W&B run how its metrics summarise (METRIC_SUMMARIES)."""
    for logger in wandb_loggers(loggers):
        for pattern, summary in METRIC_SUMMARIES.items():
            logger.experiment.define_metric(pattern, summary=summary)


def finish_wandb(loggers: list, failed: bool) -> None:
    """End this job's W&B run (exit code 1 when it failed), so the next job of a multirun opens its own."""
    for logger in wandb_loggers(loggers):
        if logger._experiment is not None:  # never create a run only to finish it
            logger._experiment.finish(exit_code=1 if failed else 0)
            logger._experiment = None
