"""Checkpoints: ezclip's own format, and one reader that recognises every format by its content.

ezclip's own file (`<run>/checkpoints/model.pt`) is a plain dict of the trainable tensors plus
the build arguments (loadable with `weights_only=True`), a few MB instead of a backbone copy; the
frozen backbone is rebuilt from its recorded identity (open_clip name + pretrained tag or file).

`read_checkpoint` also reads a Lightning training checkpoint (`last.ckpt`, `epoch_*.ckpt`: the
module's trainable tensors under `net.`) and recognises the authors' released files, so that
every command takes any of the three through one path. Loading is strict: the checkpoint must
have been made for the model it goes into (backbone, T, tvp, adapters) and hold every trainable
tensor of it, or the error names the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ezclip.models.ezclip import EZCLIP, EZCLIPConfig, build_from_config

FORMAT = "ezclip-trainable"
FORMAT_VERSION = 1
# Build arguments that change the architecture or the frozen weights: they must match to load.
IDENTITY_KEYS = ("backbone", "num_frames", "tvp", "adapters", "adapter_ratio", "force_quick_gelu")
# What `read_checkpoint` recognises, for error messages.
FORMATS = {
    "ezclip": "ezclip's own checkpoint (<run>/checkpoints/model.pt)",
    "lightning": "a Lightning training checkpoint of ezclip (<run>/checkpoints/last.ckpt)",
    "authors": "the EZ-CLIP authors' release ({'epoch', 'model_state_dict', 'optimizer_state_dict'})",
}
# A Lightning checkpoint keeps the EZCLIP module under this attribute name of the LightningModule.
LIGHTNING_PREFIX = "net."
BACKBONE_PREFIX = "clip."


@dataclass
class TrainedWeights:
    """What a checkpoint holds for EZ-CLIP.

    `format`: a key of FORMATS. `config`: the model it was made for (None for the authors' format,
    whose file is the whole model: load it with `load_model`). `state_dict`: trainable tensors
    under EZCLIP's own names. `extra`: the format's other fields (epoch, ...).
    """

    format: str
    source: str
    config: EZCLIPConfig | None = None
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


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


def _torch_load(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """`torch.load` with weights_only=True always (an environment variable cannot turn pickled code on)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{path} is not a checkpoint ezclip can read safely ({type(error).__name__}: {str(error)[:200]}); "
            f"readable formats: {'; '.join(FORMATS.values())}"
        ) from None


def detect_format(payload: Any) -> str | None:
    """The FORMATS key of a loaded checkpoint dict, or None if it is none of them."""
    if not isinstance(payload, dict):
        return None
    if payload.get("format") == FORMAT:
        return "ezclip"
    if "state_dict" in payload and "pytorch-lightning_version" in payload:
        return "lightning"
    if "model_state_dict" in payload:
        return "authors"
    return None


def read_checkpoint(path: str | Path) -> TrainedWeights:
    """Read any checkpoint format ezclip knows; an unknown file is an error naming the formats."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    payload = _torch_load(path)
    kind = detect_format(payload)
    source = str(path)
    if kind == "ezclip":
        if payload.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: checkpoint format version {payload.get('format_version')}, expected {FORMAT_VERSION}"
            )
        config = EZCLIPConfig.from_dict(payload["config"])
        return TrainedWeights(kind, source, config, dict(payload["state_dict"]), dict(payload.get("extra") or {}))
    if kind == "lightning":
        return _from_lightning(payload, source)
    if kind == "authors":
        return TrainedWeights(kind, source, extra={"epoch": payload.get("epoch")})
    keys = sorted(payload)[:8] if isinstance(payload, dict) else type(payload).__name__
    raise ValueError(
        f"{path} is none of the checkpoint formats ezclip reads ({'; '.join(FORMATS.values())}); got {keys}"
    )


def _from_lightning(payload: dict[str, Any], source: str) -> TrainedWeights:
    # The module records its network's config (ezclip_config); older files only have its hyperparameters.
    settings = payload.get("ezclip_config") or {
        k: v for k, v in (payload.get("hyper_parameters") or {}).items() if k in EZCLIPConfig.field_names()
    }
    if "backbone" not in settings:
        raise ValueError(f"{source}: a Lightning checkpoint without the model's settings (not made by ezclip?)")
    state = {
        k.removeprefix(LIGHTNING_PREFIX): v
        for k, v in payload["state_dict"].items()
        if k.startswith(LIGHTNING_PREFIX) and not k.startswith(LIGHTNING_PREFIX + BACKBONE_PREFIX)
    }
    extra = {"epoch": payload.get("epoch"), "global_step": payload.get("global_step")}
    return TrainedWeights("lightning", source, EZCLIPConfig.from_dict(settings), state, extra)


def load_model(path: str | Path, *, pretrained: str | None = None, device: str | torch.device = "cpu") -> EZCLIP:
    """The model a checkpoint of any known format holds, rebuilt and loaded (train mode off).

    `pretrained` overrides the recorded weights source of the frozen backbone (e.g. the same
    open_clip weights stored at another path on this machine).
    """
    weights = read_checkpoint(path)
    if weights.format == "authors":
        from ezclip.models.official import load_official_checkpoint

        return load_official_checkpoint(path).to(device)
    config = weights.config
    if pretrained is not None:
        config.pretrained = pretrained
    if config.pretrained and Path(config.pretrained).is_file() and checkpoint_format(config.pretrained) == "authors":
        # Fine-tuned from the authors' release: that file is the frozen backbone (and the architecture).
        from ezclip.models.official import load_official_checkpoint

        model = load_official_checkpoint(config.pretrained).to(device)
    else:
        model = build_from_config(config, device=device)
    load_trainable_state(model, weights)
    return model.eval()


def checkpoint_format(path: str | Path) -> str | None:
    """The FORMATS key of the file at `path`, None for other content (e.g. a plain open_clip state dict).

    Reads without materialising the tensors where the file allows it.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="meta", weights_only=True, mmap=True)
    except Exception:
        payload = _torch_load(path)
    return detect_format(payload)


def load_trainable_state(model: EZCLIP, checkpoint: str | Path | TrainedWeights) -> None:
    """Load a checkpoint's trainable tensors into `model`, strictly.

    The checkpoint must be made for this model (IDENTITY_KEYS) and hold exactly its trainable
    tensors with their shapes; otherwise a ValueError names every difference.
    """
    weights = checkpoint if isinstance(checkpoint, TrainedWeights) else read_checkpoint(checkpoint)
    if weights.config is None:
        raise ValueError(
            f"{weights.source} is the authors' whole model: load it with load_model or official_checkpoint"
        )
    check_same_model(weights.config, model.config, weights.source)
    state = dict(weights.state_dict)
    temporal_embedding = state.pop("temporal_embedding", None)
    expected = {k: v for k, v in model.trainable_state_dict().items() if k != "temporal_embedding"}
    missing, unknown = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unknown:
        raise ValueError(f"{weights.source}: tensors do not match the model: missing {missing}, unknown {unknown}")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise ValueError(
                f"{weights.source}: {name} has shape {tuple(tensor.shape)}, model has {tuple(expected[name].shape)}"
            )
    model.load_state_dict(state, strict=False)  # strict on the trainable set (checked above); the backbone is rebuilt
    if temporal_embedding is not None:
        model.temporal_embedding = temporal_embedding.to(next(model.parameters()).device)


def check_same_model(saved: EZCLIPConfig, ours: EZCLIPConfig, source: str) -> None:
    """A ValueError naming every identity setting in which `saved` differs from `ours`."""
    saved_d, ours_d = saved.to_dict(), ours.to_dict()
    differences = [
        f"{k}: checkpoint {saved_d[k]!r} vs model {ours_d[k]!r}" for k in IDENTITY_KEYS if saved_d[k] != ours_d[k]
    ]
    if differences:
        raise ValueError(f"{source} was trained for another model: " + "; ".join(differences))
