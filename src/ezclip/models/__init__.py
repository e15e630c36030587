"""EZ-CLIP on open_clip: the model, its losses, checkpoints and accounting."""

from ezclip.models.accounting import count_flops, count_parameters
from ezclip.models.checkpoint import load_checkpoint, load_trainable_state, save_checkpoint
from ezclip.models.ezclip import EZCLIP, EZCLIPConfig, build_ezclip, build_from_config
from ezclip.models.losses import contrastive_loss, motion_loss
from ezclip.models.official import load_official_checkpoint

__all__ = [
    "EZCLIP",
    "EZCLIPConfig",
    "build_ezclip",
    "build_from_config",
    "contrastive_loss",
    "count_flops",
    "count_parameters",
    "load_checkpoint",
    "load_official_checkpoint",
    "load_trainable_state",
    "motion_loss",
    "save_checkpoint",
]
