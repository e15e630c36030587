"""`ezclip eval ckpt=PATH`: test a trained model on the configured test sets; writes results.json.

`ckpt` is an ezclip checkpoint (`<run>/checkpoints/model.pt`, the model is rebuilt from it),
a Lightning checkpoint (`*.ckpt`, with the model config it was trained with), or null: the model
as configured (e.g. the frozen backbone zero-shot with `model.tvp=off`, or
`model.official_checkpoint=<authors' file>`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig, open_dict

from ezclip.config import CONFIG_DIR, instantiate_loggers, register_resolvers
from ezclip.lit.loggers import run_name
from ezclip.lit.module import EZCLIPModule
from ezclip.models.checkpoint import IDENTITY_KEYS, load_trainable_state, read_checkpoint
from ezclip.train import datamodule_config, record_run, sweep_group, tags

log = logging.getLogger(__name__)

# EZCLIPModule arguments that an ezclip checkpoint fixes: its architecture and its frozen weights.
_FROM_CHECKPOINT = ("pretrained", *IDENTITY_KEYS)


def evaluate(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    started = time.time()
    L.seed_everything(cfg.seed, workers=True)
    ckpt = cfg.get("ckpt")
    payload = None
    if ckpt and not str(ckpt).endswith(".ckpt"):
        payload = read_checkpoint(ckpt)
        with open_dict(cfg):
            for key in _FROM_CHECKPOINT:
                cfg.model[key] = payload["config"][key]
        if cfg.data.num_frames != cfg.model.num_frames:
            raise ValueError(
                f"{ckpt} was trained with T={cfg.model.num_frames} frames; set data.num_frames={cfg.model.num_frames}"
            )

    datamodule = hydra.utils.instantiate(datamodule_config(cfg.data), _convert_="all")
    model: EZCLIPModule = hydra.utils.instantiate(cfg.model, _convert_="all")
    if payload is not None:
        load_trainable_state(model.net, payload, source=str(ckpt))
    loggers = instantiate_loggers(cfg.get("logger"), name=run_name(cfg), tags=tags(cfg), group=sweep_group())
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=loggers or False, callbacks=[])
    lightning_ckpt = str(ckpt) if ckpt and str(ckpt).endswith(".ckpt") else None
    trainer.test(model, datamodule=datamodule, ckpt_path=lightning_ckpt)

    if trainer.is_global_zero:
        record_run(cfg, trainer, model, loggers, started, checkpoint=str(ckpt) if ckpt else None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return metrics, {"cfg": cfg, "datamodule": datamodule, "model": model, "trainer": trainer}


register_resolvers()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
