"""The one progress bar of the project's long jobs (rendering, pretraining, preparing videos)."""

from __future__ import annotations


def progress_bar(enabled: bool = True):
    """A rich Progress on stderr (stdout carries the commands' JSON): description, bar, done/total,
    elapsed time and an ETA. Disabled, it draws nothing."""
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
    return Progress(*columns, console=Console(stderr=True), disable=not enabled)
