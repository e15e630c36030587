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
    from ezclip.models import save_checkpoint
    from ezclip.runs.checks import check_run_config, check_run_dir
    from ezclip.runs.config import instantiate_callbacks, instantiate_loggers, resolve_ckpt_path
    from ezclip.runs.naming import run_name, sweep_group, tags
    from ezclip.runs.records import record_run

    started = time.time()
    output_dir = Path(cfg.paths.output_dir)
    check_run_dir(output_dir, resuming=bool(cfg.get("ckpt_path")))
    check_run_config(cfg, training=bool(cfg.get("train")))
    L.seed_everything(cfg.seed, workers=True)

    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model: EZCLIPModule = hydra.utils.instantiate(cfg.model, _convert_="all")
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    loggers = instantiate_loggers(cfg.get("logger"), name=run_name(cfg), tags=tags(cfg), group=sweep_group())
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    metrics: dict[str, Any] = {}
    if cfg.get("train"):
        ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
        # weights_only explicitly: no environment variable can turn pickled code execution back on.
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        if trainer.is_global_zero:
            save_checkpoint(model.net, output_dir / "checkpoints" / "model.pt", extra={"epoch": trainer.current_epoch})
    val_metrics = {k.removeprefix("val/"): v for k, v in metrics.items() if k.startswith("val/")}

    if cfg.get("test") and cfg.data.get("test_sets"):
        trainer.test(model, datamodule=datamodule, ckpt_path=_test_checkpoint(cfg, trainer), weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})

    if trainer.is_global_zero:
        record_run(cfg, trainer, model, loggers, started, epochs_trained=trainer.current_epoch, val=val_metrics)
    return metrics, {"cfg": cfg, "datamodule": datamodule, "model": model, "trainer": trainer}


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
