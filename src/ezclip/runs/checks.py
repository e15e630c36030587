"""Checks of a composed run config that take seconds, run before anything is built or downloaded.

A run that cannot work (a value of the wrong type or range, a backbone whose input size differs
from the data's, weights or lists that are not on disk, a training list shorter than one batch,
a folder that already holds another run) stops here with a message that names the key and says
what to choose, instead of after a 600 MB download or half an hour of training.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

# Files a command of this project makes, by file-name stem: the command to run when one is missing.
MADE_BY = {"ezclip-nano": "`ezclip pretrain-nano` (or `make demo`)"}


class ConfigError(ValueError):
    """A composed config that cannot run; the message names the key."""


def check_run_config(cfg: DictConfig, training: bool = False) -> None:
    """Raise ConfigError for the first problem of `cfg` found without building anything.

    `training`: also check that the run would do at least one optimizer step.
    """
    check_values(cfg, training)
    check_model_files(cfg.model)
    check_image_size(cfg)
    check_data_files(cfg)
    if training:
        check_training_steps(cfg)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _rule(kind: str, test: Callable[[Any], bool] = lambda v: True) -> tuple[str, Callable[[Any], bool]]:
    checks = {"integer": _integer, "number": _number, "boolean": lambda v: isinstance(v, bool)}
    return kind, lambda v: checks[kind](v) and test(v)


def _one_of(*choices: Any) -> tuple[str, Callable[[Any], bool]]:
    return f"one of {list(choices)}", lambda v: v in choices


# The project's own keys: what each must be. Keys a config does not have are not checked.
VALUE_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "seed": _rule("integer"),
    "data.num_frames": _rule("integer", lambda v: v >= 1),
    "data.image_size": _rule("integer", lambda v: v >= 1),
    "data.resize_size": _rule("integer", lambda v: v >= 1),
    "data.batch_size": _rule("integer", lambda v: v >= 1),
    "data.eval_batch_size": ("null or an integer", lambda v: v is None or (_integer(v) and v >= 1)),
    "data.num_workers": _rule("integer", lambda v: v >= 0),
    "data.n_clips": _rule("integer", lambda v: v >= 1),
    "data.n_crops": _one_of(1, 3),
    "data.train_sampling": _one_of("random", "middle"),
    "data.decode_timeout": _rule("number"),
    "data.color_jitter": _rule("number", lambda v: 0 <= v <= 1),
    "data.grayscale": _rule("number", lambda v: 0 <= v <= 1),
    "data.horizontal_flip": _rule("boolean"),
    "data.allow_images": _rule("boolean"),
    "model.tvp": _one_of("deep", "first", "off"),
    "model.adapters": _rule("boolean"),
    "model.adapter_ratio": _rule("number", lambda v: 0 < v <= 1),
    "model.prompt_dropout": _rule("number", lambda v: 0 <= v < 1),
    "model.drop_path": _rule("number", lambda v: 0 <= v < 1),
    "model.attn_dropout": _rule("number", lambda v: 0 <= v < 1),
    "model.contrastive": _one_of("ce", "inbatch_kl"),
    "model.contrastive_weight": _rule("number", lambda v: v >= 0),
    "model.motion_loss": _rule("boolean"),
    "model.motion_weight": _rule("number", lambda v: v >= 0),
    "model.central_diff": _one_of("abs", "l2"),
    "model.train_text": _one_of("sample", "mean"),
    "model.eval_text": _one_of("embedding", "softmax"),
    "model.optimizer.lr": _rule("number", lambda v: v > 0),
    "model.optimizer.weight_decay": _rule("number", lambda v: v >= 0),
    "trainer.accumulate_grad_batches": _rule("integer", lambda v: v >= 1),
}
# Only when training: the schedule needs a finite number of epochs.
TRAINING_RULES = {"trainer.max_epochs": _rule("integer", lambda v: v >= 1)}
_ABSENT = object()


def check_values(cfg: DictConfig, training: bool = False) -> None:
    """Each of the project's keys holds a value of its type and range (VALUE_RULES), or ConfigError names it."""
    rules = {**VALUE_RULES, **(TRAINING_RULES if training else {})}
    for key, (expected, test) in rules.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is not _ABSENT and not test(value):
            raise ConfigError(f"{key}={value!r}: expected {expected}")


def check_model_files(model: DictConfig) -> None:
    """The backbone's JSON config and a local weights file must exist."""
    from ezclip.models.backbone import is_weights_path

    for key in ("backbone", "pretrained", "official_checkpoint"):
        value = model.get(key)
        if not value:
            continue
        value = str(value)
        local = value.endswith(".json") if key == "backbone" else key == "official_checkpoint" or is_weights_path(value)
        if local and not Path(value).is_file():
            made_by = MADE_BY.get(Path(value).stem)
            hint = f": make it with {made_by}" if made_by else ""
            raise ConfigError(f"model.{key}={value} does not exist{hint}")


def check_image_size(cfg: DictConfig) -> None:
    """data.image_size must be the backbone's input size (read from its config, nothing built)."""
    if cfg.model.get("official_checkpoint"):
        return  # the authors' file fixes the architecture; checked when it is read
    from ezclip.models.backbone import image_size

    size = image_size(str(cfg.model.backbone))
    if int(cfg.data.image_size) != size:
        raise ConfigError(
            f"data.image_size={cfg.data.image_size} but the backbone {cfg.model.backbone} takes {size}x{size} "
            f"frames. Choose a matching pair: the synthetic demo setup is `experiment=demo` (64 px nano-CLIP); "
            f"a real dataset is e.g. `data=ucf101 protocol=few_shot` with the default ViT-B/16 (224 px), or an "
            f"`experiment=table<N>_...` config."
        )


def check_training_steps(cfg: DictConfig) -> None:
    """Training must make at least one optimizer step: the list (after exclusions) holds one batch or more."""
    from ezclip.data.lists import apply_exclusions, read_exclusions, read_labels, read_list
    from ezclip.lit.datamodule import device_batch

    data = cfg.data
    if not data.get("train_list"):
        raise ConfigError("training needs data.train_list (the protocol or data config sets it)")
    labels = data.get("train_labels") or data.labels
    entries = read_list(data.train_list, num_classes=len(read_labels(labels)))
    excluded = 0
    if data.get("exclude"):
        entries, excluded = apply_exclusions(entries, read_exclusions(data.exclude))
    world, accumulate = _world_size(cfg.trainer), cfg.trainer.get("accumulate_grad_batches", 1)
    try:
        device_batch(data.batch_size, world, accumulate)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if len(entries) < data.batch_size:
        after = f" ({excluded} excluded by {data.exclude})" if excluded else ""
        raise ConfigError(
            f"data.train_list={data.train_list} has {len(entries)} videos{after}, fewer than one batch of "
            f"data.batch_size={data.batch_size}: training drops the last partial batch, so no optimizer step would run"
        )


def _world_size(trainer: DictConfig) -> int:
    """devices x nodes when the config says them as numbers (`auto` and device lists are checked at setup)."""
    devices, nodes = trainer.get("devices", 1), trainer.get("num_nodes", 1)
    if isinstance(devices, list | ListConfig):
        devices = len(devices)
    return devices * nodes if _integer(devices) and _integer(nodes) else 1


def check_run_dir(output_dir: str | Path, resuming: bool) -> None:
    """A run folder that already holds a run (results.json, checkpoints) is only reused to resume it."""
    folder = Path(output_dir)
    held = [p.name for p in (folder / "results.json", folder / "checkpoints") if p.exists() and _not_empty(p)]
    if held and not resuming:
        raise ConfigError(
            f"{folder} already holds a run ({', '.join(held)}): resume it with ckpt_path=last, or choose another "
            "folder (the default run folder is new for every run)"
        )


def _not_empty(path: Path) -> bool:
    return path.is_file() or any(path.iterdir())


def check_data_files(cfg: DictConfig) -> None:
    """Every label and list file the data config names must exist."""
    data = cfg.data
    files = {"data.labels": data.get("labels")}
    for key in ("train_list", "val_list", "train_labels", "val_labels"):
        files[f"data.{key}"] = data.get(key)
    for name, spec in (data.get("test_sets") or {}).items():
        spec = {"list": spec} if isinstance(spec, str) else spec
        files[f"data.test_sets.{name}.list"] = spec.get("list")
        files[f"data.test_sets.{name}.labels"] = spec.get("labels")
    missing = {key: str(path) for key, path in files.items() if path and not Path(str(path)).is_file()}
    if missing:
        dataset = cfg.get("dataset") or {}
        made_by = dataset.get("made_by")
        hint = f" ({dataset.get('name')} files come from {made_by})" if made_by else ""
        listed = "; ".join(f"{key}={path}" for key, path in missing.items())
        raise ConfigError(f"{len(missing)} data file(s) not found: {listed}{hint}")
