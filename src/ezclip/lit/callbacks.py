"""Checkpoints written at the end of every training epoch, atomically.

Lightning's ModelCheckpoint saves at validation ends (so a validation interval of 4 epochs left
nothing to resume after a kill in epoch 2) and relinks `last.ckpt` after deleting older files
(a kill in between left a dangling link). `EpochCheckpoint` writes `epoch_<N>.ckpt` through a
temporary file and a rename, then points `last.ckpt` at the same bytes with another rename: at
every instant each name is either absent, the previous complete file, or the new complete file.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import lightning as L

log = logging.getLogger(__name__)

EPOCH_FILE = re.compile(r"^epoch_(\d+)\.ckpt$")
LAST = "last.ckpt"


class EpochCheckpoint(L.Callback):
    """After every training epoch: `<dirpath>/epoch_<NNN>.ckpt` and `<dirpath>/last.ckpt` (newest `keep` epochs stay).

    Args:
        dirpath: the run's checkpoint folder (created, and checked writable, when fitting starts).
        keep: how many epoch files to keep (>= 1); `last.ckpt` is always the newest.
    """

    def __init__(self, dirpath: str | Path, keep: int = 2):
        super().__init__()
        if keep < 1:
            raise ValueError(f"EpochCheckpoint keeps at least one epoch file, got keep={keep}")
        self.dirpath, self.keep = Path(dirpath), keep

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
            if not os.access(self.dirpath, os.W_OK):
                raise PermissionError(f"checkpoint folder {self.dirpath} is not writable")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        path = self.dirpath / f"epoch_{trainer.current_epoch:03d}.ckpt"
        tmp = path.with_name(f".{path.name}.tmp")
        trainer.save_checkpoint(tmp)  # every rank calls it; rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, path)
            last_tmp = self.dirpath / f".{LAST}.tmp"
            last_tmp.unlink(missing_ok=True)
            try:
                os.link(path, last_tmp)  # the same bytes under a second name, no copy
            except OSError:  # a file system without hard links
                shutil.copyfile(path, last_tmp)
            os.replace(last_tmp, self.dirpath / LAST)
            for old in epoch_files(self.dirpath)[: -self.keep]:
                old.unlink(missing_ok=True)


def epoch_files(dirpath: Path) -> list[Path]:
    """The folder's `epoch_<N>.ckpt` files, oldest first."""
    found = [(int(m.group(1)), p) for p in Path(dirpath).glob("epoch_*.ckpt") if (m := EPOCH_FILE.match(p.name))]
    return [p for _, p in sorted(found)]
