"""Checks of a composed run config that take seconds, run before anything is built or downloaded.

A run that cannot work (a backbone whose input size differs from the data's, weights or lists
that are not on disk) stops here with a message that names the key and says what to choose,
instead of after a 600 MB download or half an hour of training.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

# Files a command of this project makes, by file-name stem: the command to run when one is missing.
MADE_BY = {"ezclip-nano": "`ezclip pretrain-nano` (or `make demo`)"}


class ConfigError(ValueError):
    """A composed config that cannot run; the message names the key."""


def check_run_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first problem of `cfg` found without building anything."""
    check_model_files(cfg.model)
    check_image_size(cfg)
    check_data_files(cfg)


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
