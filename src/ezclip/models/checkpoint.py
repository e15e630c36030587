"""The project's own checkpoint: the trainable tensors plus the build arguments.

A plain dict of tensors, strings and numbers (loadable with `weights_only=True`), a few MB
instead of a full backbone copy. The frozen backbone is rebuilt from its recorded identity
(open_clip name + pretrained tag or file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ezclip.models.ezclip import EZCLIP, EZCLIPConfig, build_from_config

FORMAT = "ezclip-trainable"
FORMAT_VERSION = 1
# Build arguments that change the architecture or the frozen weights: they must match to load.
IDENTITY_KEYS = ("backbone", "num_frames", "tvp", "adapters", "adapter_ratio", "force_quick_gelu")


def save_checkpoint(model: EZCLIP, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the trainable tensors and build arguments of `model` to `path` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.trainable_state_dict().items()},
        "extra": extra or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        hint = (
            " (an authors' checkpoint? use load_official_checkpoint)"
            if isinstance(payload, dict) and ("model_state_dict" in payload)
            else ""
        )
        raise ValueError(f"{path} is not an ezclip checkpoint{hint}")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format version {payload.get('format_version')}, expected {FORMAT_VERSION}"
        )
    return payload


def load_checkpoint(
    path: str | Path,
    *,
    pretrained: str | None = None,
    device: str | torch.device = "cpu",
) -> EZCLIP:
    """Rebuild the model a checkpoint was trained with and load its trainable tensors.

    `pretrained` overrides the recorded weights source (e.g. the same open_clip weights stored at
    another path on this machine).
    """
    payload = read_checkpoint(path)
    config = EZCLIPConfig.from_dict(payload["config"])
    if pretrained is not None:
        config.pretrained = pretrained
    if config.pretrained and _is_official_checkpoint(config.pretrained):
        from ezclip.models.official import load_official_checkpoint

        model = load_official_checkpoint(config.pretrained).to(device)
    else:
        model = build_from_config(config, device=device)
    load_trainable_state(model, payload, source=str(path))
    return model


def load_trainable_state(model: EZCLIP, checkpoint: str | Path | dict[str, Any], source: str | None = None) -> None:
    """Load a checkpoint's trainable tensors into `model`; a different architecture is an error."""
    payload = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(checkpoint)
    source = source or (str(checkpoint) if not isinstance(checkpoint, dict) else "checkpoint")
    saved, ours = payload["config"], model.config.to_dict()
    differences = [
        f"{k}: checkpoint {saved.get(k)!r} vs model {ours[k]!r}" for k in IDENTITY_KEYS if saved.get(k) != ours[k]
    ]
    if differences:
        raise ValueError(f"{source} was trained for another model: " + "; ".join(differences))
    state = dict(payload["state_dict"])
    temporal_embedding = state.pop("temporal_embedding", None)
    expected = {k: v for k, v in model.trainable_state_dict().items() if k != "temporal_embedding"}
    missing, unknown = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unknown:
        raise ValueError(f"{source}: tensors do not match the model: missing {missing}, unknown {unknown}")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise ValueError(
                f"{source}: {name} has shape {tuple(tensor.shape)}, model has {tuple(expected[name].shape)}"
            )
    model.load_state_dict(state, strict=False)
    if temporal_embedding is not None:
        model.temporal_embedding = temporal_embedding.to(next(model.parameters()).device)


def _is_official_checkpoint(pretrained: str) -> bool:
    path = Path(pretrained)
    if not path.is_file():
        return False
    try:
        payload = torch.load(path, map_location="meta", weights_only=True, mmap=True)
    except Exception:
        return False
    return isinstance(payload, dict) and "model_state_dict" in payload
