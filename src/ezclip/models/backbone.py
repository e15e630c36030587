"""The one module that touches open_clip internals.

EZ-CLIP runs its own loop over the frozen CLIP blocks (it inserts a prompt token per frame and
an adapter per block), so it needs the pieces of open_clip's towers rather than their
`forward`. Everything that depends on open_clip's attribute names and call conventions is in
this file and covered by `tests/test_backbone.py`: an open_clip upgrade that moves these
pieces breaks here, loudly, and nowhere else.

Pinned to open_clip 3.3.x (its main branch is a breaking 4.x refactor).
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from open_clip.model import CLIP, CustomTextCLIP
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer, text_global_pool
from torch import nn

SUPPORTED_OPEN_CLIP = "3.3."
if not open_clip.__version__.startswith(SUPPORTED_OPEN_CLIP):
    raise ImportError(
        f"ezclip is pinned to open_clip_torch {SUPPORTED_OPEN_CLIP}x, found {open_clip.__version__}: "
        "ezclip.models.backbone reads open_clip internals that other versions move. "
        "Install 'open_clip_torch>=3.3,<3.4'."
    )

# Tags whose weights were trained with QuickGELU: the backbone MLPs must use it too.
QUICK_GELU_TAGS = ("openai",)


@dataclass(frozen=True)
class TowerDims:
    width: int
    layers: int
    heads: int


@dataclass(frozen=True)
class VisionDims(TowerDims):
    patch_size: int
    image_size: int
    num_patches: int


class UnsupportedBackbone(ValueError):
    """The open_clip model has a tower EZ-CLIP cannot adapt."""


def register_model_config(path: str | Path) -> str:
    """Register an open_clip JSON architecture config; return the name it is registered under."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"open_clip model config not found: {path}")
    open_clip.add_model_config(path)
    return path.stem


def is_registered(name: str) -> bool:
    return name in open_clip.list_models()


def architecture(backbone: str) -> dict[str, Any]:
    """The open_clip architecture config of a model name or a JSON config file, without building it."""
    if backbone.endswith(".json"):
        path = Path(backbone)
        if not path.is_file():
            raise FileNotFoundError(f"open_clip model config not found: {path}")
        return json.loads(path.read_text())
    config = open_clip.get_model_config(backbone)
    if config is None:
        raise ValueError(
            f"unknown backbone {backbone!r}: not an open_clip model name and not a .json config. "
            f"Examples: ViT-B-16, ViT-B-32, ViT-L-14 (see open_clip.list_models())."
        )
    return config


def image_size(backbone: str) -> int:
    """The input side length in pixels of a backbone's vision tower (read from its config)."""
    size = architecture(backbone)["vision_cfg"]["image_size"]
    return int(size[0] if isinstance(size, list | tuple) else size)


def create_clip(
    backbone: str,
    pretrained: str | None = None,
    *,
    device: str | torch.device = "cpu",
    force_quick_gelu: bool = False,
) -> nn.Module:
    """Build an open_clip CLIP (fp32 weights) and check that EZ-CLIP can adapt it.

    `backbone`: an open_clip model name or a path to a JSON architecture config.
    `pretrained`: an open_clip tag (downloaded and cached by open_clip) or a local file.
    """
    architecture(backbone)  # an unknown name or a missing file fails here, naming it
    if backbone.endswith(".json"):
        backbone = register_model_config(backbone)
    if pretrained in QUICK_GELU_TAGS and not backbone.endswith("-quickgelu"):
        force_quick_gelu = True
    if pretrained is not None and not pretrained.strip():
        pretrained = None
    if pretrained is not None and is_weights_path(pretrained) and not Path(pretrained).is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {pretrained}")
    clip = open_clip.create_model(
        backbone,
        pretrained=pretrained,
        device=device,
        force_quick_gelu=force_quick_gelu,
        require_pretrained=pretrained is not None,
    )
    check_supported(clip, backbone)
    return clip


def is_weights_path(pretrained: str) -> bool:
    """True when `pretrained` names a local file rather than an open_clip tag (`openai`, `hf-hub:org/name`)."""
    if pretrained.startswith("hf-hub:"):
        return False
    return (
        "/" in pretrained or os.sep in pretrained or Path(pretrained).suffix in (".pt", ".pth", ".bin", ".safetensors")
    )


def get_tokenizer(backbone: str, context_length: int | None = None):
    if backbone.endswith(".json"):
        backbone = Path(backbone).stem
    return open_clip.get_tokenizer(backbone, context_length=context_length)


def check_supported(clip: nn.Module, name: str = "this backbone") -> None:
    """Refuse towers whose blocks EZ-CLIP cannot rewire, saying why."""
    visual = getattr(clip, "visual", None)
    if not isinstance(visual, VisionTransformer):
        raise UnsupportedBackbone(
            f"{name} has a {type(visual).__name__} vision tower: EZ-CLIP's temporal prompts are extra "
            "tokens in ViT residual blocks, so only open_clip ViT towers (VisionTransformer) are supported."
        )
    if visual.attn_pool is not None:
        raise UnsupportedBackbone(
            f"{name}'s vision tower pools with attention (CoCa-style): EZ-CLIP needs the class-token pool."
        )
    if isinstance(clip, CustomTextCLIP):
        text = clip.text
        if not hasattr(getattr(text, "transformer", None), "resblocks"):
            raise UnsupportedBackbone(
                f"{name} has a {type(text).__name__} text tower (e.g. a Hugging Face model): text "
                "adapters go into open_clip TextTransformer residual blocks, which it does not have."
            )
        if getattr(text, "cls_emb", None) is not None:
            raise UnsupportedBackbone(f"{name}'s text tower appends a class token (CoCa): not supported.")
    elif not isinstance(clip, CLIP):
        raise UnsupportedBackbone(f"{name} is a {type(clip).__name__}, not an open_clip CLIP model.")
    for tower, blocks in (("vision", vision_blocks(clip)), ("text", text_blocks(clip))):
        for block in blocks:
            if type(block) is not ResidualAttentionBlock:
                raise UnsupportedBackbone(
                    f"{name}'s {tower} tower uses {type(block).__name__} blocks: EZ-CLIP supports "
                    "open_clip's default ResidualAttentionBlock (ln_1, attn, ls_1, ln_2, mlp, ls_2)."
                )
            if not block.attn.batch_first:
                raise UnsupportedBackbone(f"{name}'s {tower} attention is not batch-first.")


# --- the pieces of the two towers -------------------------------------------------------------


def _text_tower(clip: nn.Module) -> nn.Module:
    # CLIP flattens its text tower onto the model; CustomTextCLIP keeps it as `clip.text`.
    return clip.text if isinstance(clip, CustomTextCLIP) else clip


def vision_blocks(clip: nn.Module) -> nn.ModuleList:
    return clip.visual.transformer.resblocks


def text_blocks(clip: nn.Module) -> nn.ModuleList:
    return _text_tower(clip).transformer.resblocks


def vision_dims(clip: nn.Module) -> VisionDims:
    visual = clip.visual
    blocks = vision_blocks(clip)
    patch_h, patch_w = visual.patch_size
    image_h, image_w = visual.image_size
    assert patch_h == patch_w and image_h == image_w, "EZ-CLIP expects square patches and images"
    grid_h, grid_w = visual.grid_size
    return VisionDims(
        width=visual.transformer.width,
        layers=len(blocks),
        heads=blocks[0].attn.num_heads,
        patch_size=patch_h,
        image_size=image_h,
        num_patches=grid_h * grid_w,
    )


def text_dims(clip: nn.Module) -> TowerDims:
    tower = _text_tower(clip)
    blocks = text_blocks(clip)
    return TowerDims(width=tower.transformer.width, layers=len(blocks), heads=blocks[0].attn.num_heads)


def embed_dim(clip: nn.Module) -> int:
    return clip.visual.output_dim


def context_length(clip: nn.Module) -> int:
    return _text_tower(clip).context_length


def logit_scale(clip: nn.Module) -> torch.Tensor:
    return clip.logit_scale


def vision_parameters(clip: nn.Module):
    return clip.visual.parameters()


def embed_frames(clip: nn.Module, images: torch.Tensor, frame_bias: torch.Tensor | None = None) -> torch.Tensor:
    """Patch + class + positional embedding, then ln_pre, as open_clip's `VisionTransformer._embeds`.

    images: (B*T, 3, H, W). frame_bias: None or (B*T, 1, D), added to every token of each frame
    before ln_pre (the authors' `temporal_embedding`). Returns (B*T, 1+N, D).
    """
    visual = clip.visual
    x = visual.conv1(images)  # (B*T, D, grid, grid)
    x = x.flatten(2).transpose(1, 2)  # (B*T, N, D)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)  # (B*T, 1, D)
    x = torch.cat([cls, x], dim=1)  # (B*T, 1+N, D)
    x = x + visual.positional_embedding.to(x.dtype)
    if frame_bias is not None:
        x = x + frame_bias.to(x.dtype)
    x = visual.patch_dropout(x)
    return visual.ln_pre(x)


def pool_frames(clip: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B*T, 1+N, D) tokens after the last block -> (B*T, E) frame embeddings (ln_post, CLS, proj)."""
    visual = clip.visual
    pooled, _ = visual._pool(x)  # (B*T, D)
    if visual.proj is not None:
        pooled = pooled @ visual.proj  # (B*T, E)
    return pooled


def embed_text(clip: nn.Module, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(N, L) token ids -> ((N, L', W) embeddings, the attention mask for them).

    For open_clip's plain causal text tower, L' = 1 + the last end-of-text position in the batch:
    under a causal mask no position before it sees the padding after it, so dropping that
    padding is exact (and a class name needs ~8 of the 77 positions).
    """
    tower = _text_tower(clip)
    if isinstance(clip, CustomTextCLIP):
        return tower._embeds(tokens)
    length = tokens.shape[1]
    if tower.text_pool_type == "argmax" and tower.attn_mask is not None:
        length = int(tokens.argmax(dim=-1).max()) + 1
    cast_dtype = tower.transformer.get_cast_dtype()
    x = tower.token_embedding(tokens[:, :length]).to(cast_dtype)  # (N, L', W)
    x = x + tower.positional_embedding[:length].to(cast_dtype)
    mask = tower.attn_mask[:length, :length] if tower.attn_mask is not None else None
    return x, mask


def pool_text(clip: nn.Module, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(N, L', W) tokens after the last block -> (N, E): ln_final, pool at end-of-text, projection."""
    tower = _text_tower(clip)
    x = tower.ln_final(x)
    pool_type = tower.pool_type if isinstance(clip, CustomTextCLIP) else tower.text_pool_type
    eos_id = getattr(tower, "eos_id" if isinstance(clip, CustomTextCLIP) else "text_eos_id", None)
    pooled = text_global_pool(x, tokens[:, : x.shape[1]], pool_type, eos_token_id=eos_id)  # (N, W)
    projection = tower.text_projection
    if projection is None:
        return pooled
    if isinstance(projection, nn.Linear):
        return projection(pooled)
    return pooled @ projection  # (N, E)


def self_attention(
    block: nn.Module, x: torch.Tensor, attn_mask: torch.Tensor | None = None, num_queries: int | None = None
) -> torch.Tensor:
    """The block's multi-head attention over (B, L, D), computed from its own frozen weights.

    Same math as the block's nn.MultiheadAttention, but the projections run on contiguous rows
    and the product is one `scaled_dot_product_attention` call (on CPU its backward is ~30%
    faster than nn.MultiheadAttention's batch-first path). `num_queries`: only the first Q
    tokens ask (all L still answer); returns (B, Q, D), or (B, L, D) when None.
    """
    dropout = block.attn.dropout if block.attn.training else 0.0
    if dropout and x.device.type == "cpu":
        # No CPU kernel fuses attention with dropout: SDPA falls back to a math path that adds masking
        # passes; the same product written out costs ~20-35% less there (forward + backward, measured).
        return self_attention_weights(block, x, attn_mask, num_queries)[0]
    q, k, v, attn_mask = _project(block, x, attn_mask, num_queries)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)  # (B, H, Q, D/H)
    return _merge_heads(block, out)


def self_attention_weights(
    block: nn.Module, x: torch.Tensor, attn_mask: torch.Tensor | None = None, num_queries: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`self_attention` with the weights spelled out: softmax(Q K^T / sqrt(d) + mask), for figures.

    Returns the same (B, Q, D) output and the attention weights (B, H, Q, L) before dropout: row q
    of head h says how much query token q takes from each of the L tokens.
    """
    attn = block.attn
    q, k, v, attn_mask = _project(block, x, attn_mask, num_queries)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, Q, L)
    if attn_mask is not None:
        scores = scores + attn_mask
    weights = scores.softmax(dim=-1)  # (B, H, Q, L)
    dropped = F.dropout(weights, attn.dropout, training=attn.training)
    return _merge_heads(block, dropped @ v), weights  # (B, Q, D), (B, H, Q, L)


def _project(
    block: nn.Module, x: torch.Tensor, attn_mask: torch.Tensor | None, num_queries: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(B, L, D) tokens -> per-head queries (B, H, Q, D/H), keys and values (B, H, L, D/H), the mask's Q rows."""
    attn = block.attn
    B, L, D = x.shape
    heads = attn.num_heads
    queries = x if num_queries is None else x[:, :num_queries]
    Q = queries.shape[1]
    weight, bias = attn.in_proj_weight, attn.in_proj_bias
    # As (B*Q, D) rows: a strided slice of x would make F.linear a batched matmul with the weight
    # repeated per item (measured: ~6% of a ViT-B/32 forward on CPU); the copy costs far less.
    q = F.linear(queries.reshape(B * Q, D), weight[:D], bias[:D]).view(B, Q, D)  # (B, Q, D)
    kv = F.linear(x, weight[D:], bias[D:])  # (B, L, 2D)
    q = q.view(B, Q, heads, D // heads).transpose(1, 2)  # (B, H, Q, D/H)
    k, v = kv.view(B, L, 2, heads, D // heads).permute(2, 0, 3, 1, 4)  # 2 x (B, H, L, D/H)
    if attn_mask is not None:
        attn_mask = attn_mask[:Q].to(q.dtype)
    return q, k, v, attn_mask


def _merge_heads(block: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """(B, H, Q, D/H) per-head outputs -> (B, Q, D) through the block's output projection."""
    B, H, Q, head_dim = out.shape
    out = out.transpose(1, 2).reshape(B, Q, H * head_dim)  # (B, Q, D)
    return F.linear(out, block.attn.out_proj.weight, block.attn.out_proj.bias)


def attention_branch(
    block: nn.Module, x: torch.Tensor, attn_mask: torch.Tensor | None = None, num_queries: int | None = None
) -> torch.Tensor:
    """The block's residual attention branch ls_1(attn(ln_1(x))), without the residual add."""
    return block.ls_1(self_attention(block, block.ln_1(x), attn_mask, num_queries))


def attention_branch_weights(
    block: nn.Module, x: torch.Tensor, attn_mask: torch.Tensor | None = None, num_queries: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`attention_branch` through `self_attention_weights`: (its output, the weights (B, H, Q, L))."""
    out, weights = self_attention_weights(block, block.ln_1(x), attn_mask, num_queries)
    return block.ls_1(out), weights


def prompt_attention(block: nn.Module, prompts: torch.Tensor) -> torch.Tensor:
    """attn(ln_1(prompts)) with the block's own frozen weights: (B, T, D) -> (B, T, D)."""
    return self_attention(block, block.ln_1(prompts))


def pooled_prefix_tokens(clip: nn.Module) -> int | None:
    """How many leading tokens the vision pool reads (1: the class token), None if it reads all.

    After the last block's attention only these tokens matter, so the rest can skip its MLP.
    """
    visual = clip.visual
    return 1 if visual.pool_type == "tok" and visual.attn_pool is None else None


def mlp_branch(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The block's residual MLP branch ls_2(mlp(ln_2(x))), without the residual add."""
    return block.ls_2(block.mlp(block.ln_2(x)))


def set_attention_dropout(block: nn.Module, rate: float) -> None:
    """Dropout on the attention weights of a block (active only in train mode)."""
    block.attn.dropout = float(rate)


# --- OpenAI-format state dicts (the authors' checkpoints) --------------------------------------


def openai_config_from_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Infer an open_clip architecture config from an OpenAI-CLIP state dict (ViT only).

    Same rules as OpenAI's `build_model`: widths from weight shapes, heads = width // 64, layer
    counts from block indices, patch size from conv1, image size from the positional embedding.
    """
    if "visual.proj" not in state_dict or "visual.conv1.weight" not in state_dict:
        found = sorted(k for k in state_dict if k.startswith("visual."))[:3]
        raise UnsupportedBackbone(
            "not a ViT CLIP state dict: 'visual.proj' and 'visual.conv1.weight' are missing "
            f"(visual keys start with {found}); ResNet CLIP towers cannot take temporal prompts."
        )

    def block_count(prefix: str) -> int:
        ids = {int(k[len(prefix) :].split(".")[0]) for k in state_dict if k.startswith(prefix)}
        return max(ids) + 1 if ids else 0

    vision_width = state_dict["visual.conv1.weight"].shape[0]
    patch_size = state_dict["visual.conv1.weight"].shape[-1]
    grid = round((state_dict["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    text_width = state_dict["ln_final.weight"].shape[0]
    return {
        "embed_dim": state_dict["text_projection"].shape[1],
        "quick_gelu": True,  # OpenAI CLIP weights were trained with QuickGELU
        "vision_cfg": {
            "image_size": patch_size * grid,
            "layers": block_count("visual.transformer.resblocks."),
            "width": vision_width,
            "head_width": 64,
            "patch_size": patch_size,
        },
        "text_cfg": {
            "context_length": state_dict["positional_embedding"].shape[0],
            "vocab_size": state_dict["token_embedding.weight"].shape[0],
            "width": text_width,
            "heads": text_width // 64,
            "layers": block_count("transformer.resblocks."),
        },
    }


def registered_name_for(config: dict[str, Any]) -> str | None:
    """The open_clip model name whose architecture equals `config`, if one is registered."""
    for name in open_clip.list_models():
        registered = open_clip.get_model_config(name)
        if registered is None or "timm_model_name" in registered.get("vision_cfg", {}):
            continue
        if _same_architecture(registered, config):
            return name
    return None


def _same_architecture(registered: dict[str, Any], config: dict[str, Any]) -> bool:
    if registered.get("embed_dim") != config["embed_dim"]:
        return False
    if bool(registered.get("quick_gelu", False)) != config["quick_gelu"]:
        return False
    if set(registered) - {"embed_dim", "quick_gelu", "vision_cfg", "text_cfg"}:
        return False
    vision, text = registered["vision_cfg"], registered["text_cfg"]
    wanted_v = config["vision_cfg"]
    vision_keys = {"image_size", "layers", "width", "patch_size", "head_width"}
    if set(vision) - vision_keys or set(text) - set(config["text_cfg"]):
        return False
    return all(vision.get(k, 64 if k == "head_width" else None) == wanted_v[k] for k in vision_keys) and all(
        text[k] == config["text_cfg"][k] for k in text
    )


def clip_from_openai_state_dict(state_dict: dict[str, torch.Tensor], config: dict[str, Any]) -> nn.Module:
    """Build a float32 open_clip CLIP for `config` and load `state_dict` into it strictly.

    Unlike open_clip's `build_model_from_openai_state_dict`, the caller's dict is not modified
    and the weights are not passed through fp16 (fp32 tensors in the file stay exact).
    """
    clip = CLIP(
        config["embed_dim"],
        vision_cfg=copy.deepcopy(config["vision_cfg"]),
        text_cfg=copy.deepcopy(config["text_cfg"]),
        quick_gelu=config["quick_gelu"],
    )
    expected = set(clip.state_dict())
    given = {k: v for k, v in state_dict.items() if k not in ("input_resolution", "context_length", "vocab_size")}
    missing, unknown = sorted(expected - set(given)), sorted(set(given) - expected)
    if missing or unknown:
        raise ValueError(f"checkpoint does not match the CLIP it describes: {format_key_problem(missing, unknown)}")
    clip.load_state_dict({k: v.float() for k, v in given.items()}, strict=True)
    check_supported(clip, "the checkpoint's CLIP")
    return clip.float().eval()


def format_key_problem(missing: list[str], unknown: list[str], shown: int = 8) -> str:
    parts = []
    for label, keys in (("missing", missing), ("unknown", unknown)):
        if keys:
            more = f" ... and {len(keys) - shown} more" if len(keys) > shown else ""
            parts.append(f"{len(keys)} {label} key(s): {', '.join(keys[:shown])}{more}")
    return "; ".join(parts)
