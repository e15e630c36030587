"""The one progress bar of the project's long jobs (rendering, pretraining, preparing videos)."""

from __future__ import annotations

import os


def progress_bar(enabled: bool = True):
    """A rich Progress on stderr (stdout carries the commands' JSON): description, bar, done/total,
    elapsed time and an ETA. Disabled, or with EZCLIP_NO_PROGRESS set (batch jobs' logs), it draws
    nothing."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())  # fmt: skip
    enabled = enabled and os.environ.get("EZCLIP_NO_PROGRESS") is None
    return Progress(*columns, console=Console(stderr=True), disable=not enabled)
