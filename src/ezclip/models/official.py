"""Import of the authors' released EZ-CLIP checkpoints.

Their files are `torch.save`d dicts {'epoch', 'model_state_dict', 'optimizer_state_dict'} whose
`model_state_dict` is an OpenAI-CLIP state dict plus the keys below (docs/design.md §3).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ezclip.models import backbone
from ezclip.models.ezclip import EZCLIP, EZCLIPConfig

PROMPTS_KEY = "visual.transformer.T_prompt_embeddings"  # (L, T, D) or (1, T, D)
TEMPORAL_EMBEDDING_KEY = "visual.temporal_embedding"  # (1, T, D), zero in their code
_ADAPTER_KEY = re.compile(
    r"^(?P<tower>visual\.transformer|transformer)\.resblocks\.(?P<layer>\d+)\.Adapter\."
    r"(?P<fc>D_fc1|D_fc2)\.(?P<kind>weight|bias)$"
)
_OUR_ADAPTER_NAME = {"D_fc1": "down", "D_fc2": "up"}
_OUR_ADAPTER_LIST = {"visual.transformer": "vision_adapters", "transformer": "text_adapters"}


def load_official_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> EZCLIP:
    """Load an authors'-format checkpoint into an EZCLIP (float32, eval mode).

    Architecture, `tvp` (deep / first / off), T and the adapter ratio are inferred from the state
    dict; a non-zero `temporal_embedding` is applied. Keys that are neither OpenAI-CLIP keys nor
    the EZ-CLIP keys above are refused by name, and so are missing ones.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"official checkpoint not found: {path}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    state_dict = payload.get("model_state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state_dict, dict):
        raise ValueError(f"{path}: expected a dict with 'model_state_dict' (the authors' format)")
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    return model_from_official_state_dict(state_dict, source=str(path))


def model_from_official_state_dict(state_dict: dict[str, torch.Tensor], source: str = "<state dict>") -> EZCLIP:
    state_dict = dict(state_dict)
    prompts = state_dict.pop(PROMPTS_KEY, None)
    temporal_embedding = state_dict.pop(TEMPORAL_EMBEDDING_KEY, None)
    adapters = {k: state_dict.pop(k) for k in list(state_dict) if _ADAPTER_KEY.match(k)}

    config = backbone.openai_config_from_state_dict(state_dict)
    clip = backbone.clip_from_openai_state_dict(state_dict, config)
    vision_layers = config["vision_cfg"]["layers"]

    if prompts is None:
        tvp, num_frames = "off", None
    else:
        if prompts.ndim != 3:
            raise ValueError(f"{PROMPTS_KEY} must be (layers, T, width), got {tuple(prompts.shape)}")
        rows, num_frames = prompts.shape[:2]
        if rows == vision_layers:
            tvp = "deep"
        elif rows == 1:
            tvp = "first"
        else:
            raise ValueError(
                f"{PROMPTS_KEY} has {rows} layer rows; expected {vision_layers} (deep) or 1 (first layer only)"
            )
    if temporal_embedding is not None:
        frames_te = temporal_embedding.shape[1]
        if num_frames is not None and frames_te != num_frames:
            raise ValueError(
                f"{PROMPTS_KEY} is for T={num_frames} frames but {TEMPORAL_EMBEDDING_KEY} for T={frames_te}"
            )
        num_frames = frames_te
    if num_frames is None:
        raise ValueError(
            f"{source}: neither {PROMPTS_KEY} nor {TEMPORAL_EMBEDDING_KEY} is present, so the frame count "
            "cannot be inferred; this does not look like an EZ-CLIP checkpoint"
        )

    adapter_ratio = 0.25
    if adapters:
        down = next(v for k, v in adapters.items() if k.endswith("D_fc1.weight"))
        adapter_ratio = down.shape[0] / down.shape[1]
    config_ours = EZCLIPConfig(
        backbone=backbone.registered_name_for(config) or "openai-format",
        pretrained=source,
        num_frames=int(num_frames),
        tvp=tvp,
        adapters=bool(adapters),
        adapter_ratio=adapter_ratio,
    )
    tokenizer = backbone.get_tokenizer("ViT-B-16", context_length=config["text_cfg"]["context_length"])
    model = EZCLIP(clip, config_ours, tokenizer)

    ours = {}
    if prompts is not None:
        ours["prompts.embeddings"] = prompts
    for key, tensor in adapters.items():
        m = _ADAPTER_KEY.match(key)
        ours[f"{_OUR_ADAPTER_LIST[m['tower']]}.{m['layer']}.{_OUR_ADAPTER_NAME[m['fc']]}.{m['kind']}"] = tensor
    expected = {k for k in model.trainable_state_dict()}
    missing = sorted(expected - set(ours))
    unknown = sorted(set(ours) - expected)
    if missing or unknown:
        raise ValueError(
            f"{source}: adapter/prompt keys do not form a complete EZ-CLIP: "
            + backbone.format_key_problem(missing, unknown)
        )
    shapes = model.trainable_state_dict()
    for name, tensor in ours.items():
        if tuple(tensor.shape) != tuple(shapes[name].shape):
            raise ValueError(f"{source}: {name} has shape {tuple(tensor.shape)}, expected {tuple(shapes[name].shape)}")
    model.load_state_dict({k: v.float() for k, v in ours.items()}, strict=False)
    if temporal_embedding is not None and temporal_embedding.abs().max() > 0:
        model.temporal_embedding = temporal_embedding.float().reshape(1, num_frames, -1)
    return model.float().eval()
