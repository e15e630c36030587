"""`ezclip train`: train EZ-CLIP, then test the last epoch on every configured test set.

ezclip train experiment=demo
ezclip train -m model.tvp=deep,off model.motion_loss=true,false
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from ezclip.runs.config import hydra_main

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit, export the trainable weights, test; returns (metrics, objects). Writes results.json."""
    # Imported here, not at the top: `ezclip train --help` then answers without torch's import time.
    import hydra
    import lightning as L
    from omegaconf import OmegaConf

    from ezclip.lit.module import EZCLIPModule
    from ezclip.runs.checks import check_run_config, check_run_dir
    from ezclip.runs.config import distributed_job, instantiate_callbacks, instantiate_loggers
    from ezclip.runs.loggers import finish_wandb, start_wandb
    from ezclip.runs.naming import cell_name, run_name, tags
    from ezclip.runs.records import record_run

    started = time.time()
    output_dir = Path(cfg.paths.output_dir)
    check_run_dir(output_dir, resuming=bool(cfg.get("ckpt_path")))
    check_run_config(cfg, training=bool(cfg.get("train")))
    L.seed_everything(cfg.seed, workers=True)
    with distributed_job():
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        model: EZCLIPModule = hydra.utils.instantiate(cfg.model, _convert_="all")
        callbacks = instantiate_callbacks(cfg.get("callbacks"))
        loggers = instantiate_loggers(
            cfg.get("logger"), name=run_name(cfg), tags=tags(cfg), group=cell_name(cfg), job_type="train"
        )
        trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
        failed = True
        try:
            for logger in loggers:
                logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
            start_wandb(loggers)
            metrics = _fit_and_test(cfg, trainer, model, datamodule, output_dir)
            if trainer.is_global_zero:
                val = {k.removeprefix("val/"): v for k, v in metrics.items() if k.startswith("val/")}
                extra = {"epochs_trained": trainer.current_epoch, "val": val, "batch": datamodule.batch_layout()}
                if datamodule.carved_validation:
                    extra["validation"] = _record_carved_validation(datamodule, output_dir)
                record_run(cfg, trainer, model, loggers, started, **extra)
            failed = False
        finally:
            finish_wandb(loggers, failed)  # one W&B run per job, also when the job fails
    return metrics, {"cfg": cfg, "datamodule": datamodule, "model": model, "trainer": trainer}


def _fit_and_test(cfg: DictConfig, trainer: L.Trainer, model, datamodule, output_dir: Path) -> dict[str, float]:
    from ezclip.models import save_checkpoint
    from ezclip.runs.config import resolve_ckpt_path

    metrics: dict[str, float] = {}
    if cfg.get("train"):
        ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
        # weights_only explicitly: no environment variable can turn pickled code execution back on.
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        if trainer.is_global_zero:
            save_checkpoint(model.net, output_dir / "checkpoints" / "model.pt", extra={"epoch": trainer.current_epoch})
    if cfg.get("test") and cfg.data.get("test_sets"):
        trainer.test(model, datamodule=datamodule, ckpt_path=_test_checkpoint(cfg, trainer), weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    return metrics


def _record_carved_validation(datamodule, output_dir: Path) -> dict[str, Any]:
    """Write the videos val_from_train held out to <run>/val_from_train.txt; what results.json says of them."""
    path = output_dir / "val_from_train.txt"
    path.write_text("".join(f"{video}\n" for video in datamodule.carved_validation))
    share = datamodule.hparams.val_from_train
    return {"from_train": share, "seed": datamodule.hparams.seed, "videos": len(datamodule.carved_validation),
            "list": path.name}  # fmt: skip


def _test_checkpoint(cfg: DictConfig, trainer: L.Trainer) -> str | None:
    # "last": the weights in memory at the end of fit (the last epoch), never chosen on a test set.
    if cfg.get("test_ckpt", "last") == "best":
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            raise ValueError("test_ckpt=best needs callbacks.model_checkpoint.monitor=val/top1 and save_top_k>=1")
        return best
    return None


def _main(cfg: DictConfig) -> float | None:
    metrics, _ = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))


def main() -> None:
    hydra_main(_main, "train")


if __name__ == "__main__":
    main()
