"""EZ-CLIP on open_clip: the model, its losses, checkpoints and accounting."""

from ezclip.models.accounting import count_flops, count_parameters
from ezclip.models.checkpoint import (
    TrainedWeights,
    checkpoint_format,
    load_model,
    load_trainable_state,
    read_checkpoint,
    save_checkpoint,
)
from ezclip.models.ezclip import EZCLIP, EZCLIPConfig, build_ezclip, build_from_config
from ezclip.models.losses import contrastive_loss, motion_loss
from ezclip.models.official import load_official_checkpoint

__all__ = [
    "EZCLIP",
    "EZCLIPConfig",
    "TrainedWeights",
    "build_ezclip",
    "build_from_config",
    "checkpoint_format",
    "contrastive_loss",
    "count_flops",
    "count_parameters",
    "load_model",
    "load_official_checkpoint",
    "load_trainable_state",
    "motion_loss",
    "read_checkpoint",
    "save_checkpoint",
]
