"""`ezclip train`: train EZ-CLIP, then test the last epoch on every configured test set.

ezclip train experiment=demo_tvp_motion
ezclip train -m model.tvp=deep,off model.motion_loss=true,false
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import numpy as np
from omegaconf import DictConfig, OmegaConf

from ezclip.config import CONFIG_DIR, instantiate_callbacks, instantiate_loggers, register_resolvers, resolve_ckpt_path
from ezclip.lit.loggers import ablation_factors, run_name
from ezclip.lit.module import EZCLIPModule
from ezclip.models import save_checkpoint
from ezclip.results import write_results

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit, export the trainable weights, test; returns (metrics, objects). Writes results.json."""
    started = time.time()
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)

    datamodule = hydra.utils.instantiate(datamodule_config(cfg.data), _convert_="all")
    model: EZCLIPModule = hydra.utils.instantiate(cfg.model, _convert_="all")
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    loggers = instantiate_loggers(cfg.get("logger"), name=run_name(cfg), tags=tags(cfg), group=sweep_group())
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    metrics: dict[str, Any] = {}
    if cfg.get("train"):
        trainer.fit(model, datamodule=datamodule, ckpt_path=resolve_ckpt_path(cfg.get("ckpt_path"), output_dir))
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        if trainer.is_global_zero:
            save_checkpoint(model.net, output_dir / "checkpoints" / "model.pt", extra={"epoch": trainer.current_epoch})
    val_metrics = {k.removeprefix("val/"): v for k, v in metrics.items() if k.startswith("val/")}

    if cfg.get("test") and datamodule_has_tests(cfg):
        ckpt = _test_checkpoint(cfg, trainer)
        trainer.test(model, datamodule=datamodule, ckpt_path=ckpt)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})

    if trainer.is_global_zero:
        record_run(cfg, trainer, model, loggers, started, epochs_trained=trainer.current_epoch, val=val_metrics)
    return metrics, {"cfg": cfg, "datamodule": datamodule, "model": model, "trainer": trainer}


def record_run(
    cfg: DictConfig, trainer: L.Trainer, model: EZCLIPModule, loggers: list, started: float, **extra: Any
) -> None:
    """On rank 0: the test predictions, results.json (common fields + `extra`) and the W&B table."""
    output_dir = Path(cfg.paths.output_dir)
    save_predictions(model, output_dir)
    write_results(
        output_dir / "results.json",
        {
            "task": cfg.task_name,
            "run_name": run_name(cfg),
            "factors": ablation_factors(cfg),
            "config": OmegaConf.to_container(cfg, resolve=True),
            "world_size": trainer.world_size,
            "precision": str(trainer.precision),
            **extra,
            "test": dict(model.test_results),
            "skipped_videos": sorted(model.skipped_paths),
            "wall_seconds": round(time.time() - started, 1),
        },
    )
    log_results_table(loggers, model.test_results, output_dir)


def datamodule_has_tests(cfg: DictConfig) -> bool:
    return bool(cfg.data.get("test_sets"))


def _test_checkpoint(cfg: DictConfig, trainer: L.Trainer) -> str | None:
    # "last": the weights in memory at the end of fit (the last epoch), never chosen on a test set.
    if cfg.get("test_ckpt", "last") == "best":
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            raise ValueError("test_ckpt=best needs callbacks.model_checkpoint.monitor=val/top1 and save_top_k>=1")
        return best
    return None


def save_predictions(model: EZCLIPModule, output_dir: Path) -> None:
    for name in model.test_results:
        predictions = model.gathered_predictions(name)
        if predictions is not None:
            path = output_dir / "predictions" / f"{name}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(path, **predictions)


def log_results_table(loggers: list, test_results: dict[str, dict[str, float]], output_dir: Path) -> None:
    """The per-test-set results as a W&B table and a bar chart image, where a W&B logger is present."""
    from lightning.pytorch.loggers import WandbLogger

    wandb_loggers = [logger for logger in loggers if isinstance(logger, WandbLogger)]
    if not wandb_loggers or not test_results:
        return
    columns = ["test_set", "top1", "top5", "mean_class_acc", "num_videos", "num_skipped"]
    rows = [[name] + [r.get(c) for c in columns[1:]] for name, r in test_results.items()]
    chart = plot_test_results(test_results, output_dir / "test_results.png")
    for logger in wandb_loggers:
        logger.log_table(key="test/results", columns=columns, data=rows)
        logger.log_image(key="test/results_chart", images=[str(chart)])


def plot_test_results(test_results: dict[str, dict[str, float]], path: Path) -> Path:
    """Bar chart of top-1 / top-5 / mean class accuracy per test set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(test_results)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(4, 1.5 * len(names) + 2), 3.5))
    for offset, metric in zip((-0.25, 0.0, 0.25), ("top1", "top5", "mean_class_acc"), strict=True):
        ax.bar(x + offset, [100 * test_results[n][metric] for n in names], 0.25, label=metric)
    ax.set_xticks(x, names)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# Data config keys that describe the dataset (its name, where the protocols find their files)
# rather than configure the DataModule.
DATA_DESCRIPTION_KEYS = ("name", "files")


def datamodule_config(data_cfg: DictConfig) -> DictConfig:
    """The resolved data config without its description keys: the DataModule's arguments."""
    resolved = OmegaConf.to_container(data_cfg, resolve=True)
    for key in DATA_DESCRIPTION_KEYS:
        resolved.pop(key, None)
    return OmegaConf.create(resolved)


def tags(cfg: DictConfig) -> list[str]:
    return list(cfg.get("tags") or []) + list(ablation_factors(cfg).values())


def sweep_group() -> str | None:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode is not None and hydra_cfg.mode.name == "MULTIRUN":
        return Path(hydra_cfg.sweep.dir).name
    return None


register_resolvers()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics, _ = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
