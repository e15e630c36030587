"""`ezclip eval`: test a model on the configured test sets; writes results.json.

`ckpt` is any checkpoint ezclip reads, recognised by its content: ezclip's own
(`<run>/checkpoints/model.pt`), a Lightning one (`<run>/checkpoints/last.ckpt`), or the
authors' release. The model is rebuilt from the checkpoint (its backbone, T, prompts and
adapters), and the checkpoint must fill it completely. With `ckpt=null` the model is the
configured one (e.g. the frozen backbone zero-shot with `model.tvp=off`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from ezclip.runs.config import hydra_main

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Test the checkpoint `cfg.ckpt` (or the configured model); returns (metrics, objects). Writes results.json."""
    # Imported here, not at the top: `ezclip eval --help` then answers without torch's import time.
    import hydra
    import lightning as L

    from ezclip.lit.module import EZCLIPModule
    from ezclip.models import read_checkpoint
    from ezclip.models.checkpoint import IDENTITY_KEYS, load_trainable_state
    from ezclip.runs.checks import check_run_config, check_run_dir
    from ezclip.runs.config import distributed_job, instantiate_loggers
    from ezclip.runs.loggers import finish_wandb, start_wandb
    from ezclip.runs.naming import cell_name, run_name, tags
    from ezclip.runs.records import record_run

    started = time.time()
    check_run_dir(cfg.paths.output_dir, resuming=False)
    weights = read_checkpoint(cfg.ckpt) if cfg.get("ckpt") else None
    with open_dict(cfg):
        if weights is not None and weights.format == "authors":
            cfg.model.official_checkpoint = weights.source
        elif weights is not None:
            # The checkpoint fixes the architecture and the frozen weights it was trained on.
            for key in ("pretrained", *IDENTITY_KEYS):
                saved = getattr(weights.config, key)
                if cfg.model.get(key) != saved:
                    log.warning(
                        "model.%s=%r ignored: %s was trained with %r", key, cfg.model.get(key), weights.source, saved
                    )
                cfg.model[key] = saved
    if weights is not None and weights.config is not None and cfg.data.num_frames != weights.config.num_frames:
        raise ValueError(
            f"{weights.source} was trained with T={weights.config.num_frames} frames; "
            f"set data.num_frames={weights.config.num_frames}"
        )
    check_run_config(cfg)
    L.seed_everything(cfg.seed, workers=True)
    with distributed_job():
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        model: EZCLIPModule = hydra.utils.instantiate(cfg.model, _convert_="all")
        if weights is not None and weights.config is not None:
            load_trainable_state(model.net, weights)
        loggers = instantiate_loggers(
            cfg.get("logger"), name=run_name(cfg), tags=tags(cfg), group=cell_name(cfg), job_type="eval"
        )
        trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=loggers or False, callbacks=[])
        failed = True
        try:
            for logger in loggers:
                logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
            start_wandb(loggers)
            trainer.test(model, datamodule=datamodule)
            if trainer.is_global_zero:
                checkpoint = {"path": weights.source, "format": weights.format, **weights.extra} if weights else None
                record_run(cfg, trainer, model, loggers, started, checkpoint=checkpoint)
            failed = False
        finally:
            finish_wandb(loggers, failed)  # one W&B run per job, also when the job fails
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return metrics, {"cfg": cfg, "datamodule": datamodule, "model": model, "trainer": trainer}


def _main(cfg: DictConfig) -> None:
    evaluate(cfg)


def main() -> None:
    hydra_main(_main, "eval")


if __name__ == "__main__":
    main()
