"""EZ-CLIP: a frozen open_clip CLIP with temporal visual prompts and adapters in both towers.

The vision tower encodes the B*T frames of a batch as images; the temporal prompts are the only
path between the frames of one video. docs/design.md §3 gives the exact block computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ezclip.models import backbone
from ezclip.models.adapters import Adapter
from ezclip.models.prompts import TemporalPrompts

TVP_MODES = ("deep", "first", "off")
# Each frame's sequence gets one extra token (its processed temporal prompt) in prompted blocks.
PROMPT_TOKENS_PER_FRAME = 1


@dataclass
class EZCLIPConfig:
    """Everything needed to rebuild a model: the backbone's identity and the EZ-CLIP switches."""

    backbone: str
    pretrained: str | None = None
    num_frames: int = 8
    tvp: Literal["deep", "first", "off"] = "deep"
    adapters: bool = True
    adapter_ratio: float = 0.25
    prompt_dropout: float = 0.1
    drop_path: float = 0.1
    attn_dropout: float = 0.1
    force_quick_gelu: bool = False

    def __post_init__(self):
        if self.tvp not in TVP_MODES:
            raise ValueError(f"tvp must be one of {TVP_MODES}, got {self.tvp!r}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        for name in ("prompt_dropout", "drop_path", "attn_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EZCLIPConfig:
        """The config of `values`; an unknown or missing key is an error naming the known ones."""
        known = cls.field_names()
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown EZ-CLIP setting(s): {unknown}; known: {list(known)}")
        if "backbone" not in values:
            raise ValueError(f"an EZ-CLIP config needs a backbone; known settings: {list(known)}")
        return cls(**values)


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch per sample with probability `rate` in training."""

    def __init__(self, rate: float = 0.0):
        super().__init__()
        self.rate = float(rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


def _linear_rates(top: float, layers: int) -> list[float]:
    """0 at the first block rising linearly to `top` at the last."""
    return [top * i / max(layers - 1, 1) for i in range(layers)]


class EZCLIP(nn.Module):
    """Frozen CLIP + TemporalPrompts + vision/text Adapters. Only prompts and adapters train."""

    def __init__(self, clip: nn.Module, config: EZCLIPConfig, tokenizer=None):
        super().__init__()
        backbone.check_supported(clip, config.backbone)
        self.config = config
        self.clip = clip
        self.clip.requires_grad_(False)
        self.tokenizer = tokenizer
        self.grad_checkpointing = False

        vision, text = backbone.vision_dims(clip), backbone.text_dims(clip)
        self.vision_dims, self.text_dims = vision, text
        self.pooled_tokens = backbone.pooled_prefix_tokens(clip)
        self.num_frames = config.num_frames
        prompt_layers = {"deep": vision.layers, "first": 1, "off": 0}[config.tvp]
        self.prompts = (
            TemporalPrompts(prompt_layers, config.num_frames, vision.width, config.prompt_dropout)
            if prompt_layers
            else None
        )
        self.vision_adapters = (
            nn.ModuleList(Adapter(vision.width, config.adapter_ratio) for _ in range(vision.layers))
            if config.adapters
            else None
        )
        self.text_adapters = (
            nn.ModuleList(Adapter(text.width, config.adapter_ratio) for _ in range(text.layers))
            if config.adapters
            else None
        )
        # The authors' code adds a (1, T, D) temporal embedding before ln_pre; it is zero in
        # their checkpoints, so it only exists here when an imported checkpoint has a non-zero one.
        self.register_buffer("temporal_embedding", None)

        self.vision_drop_paths = nn.ModuleList(DropPath(r) for r in _linear_rates(config.drop_path, vision.layers))
        self.text_drop_paths = nn.ModuleList(DropPath(r) for r in _linear_rates(config.drop_path, text.layers))
        for tower_blocks, rates in (
            (backbone.vision_blocks(clip), _linear_rates(config.attn_dropout, vision.layers)),
            (backbone.text_blocks(clip), _linear_rates(config.attn_dropout, text.layers)),
        ):
            for block, rate in zip(tower_blocks, rates, strict=False):
                backbone.set_attention_dropout(block, rate)

    # --- public API ---------------------------------------------------------------------------

    @property
    def image_size(self) -> int:
        return self.vision_dims.image_size

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Texts -> (N, context_length) token ids; over-long text is cut and keeps its end token."""
        assert self.tokenizer is not None, "this model was built without a tokenizer"
        if isinstance(texts, str):
            texts = [texts]
        return self.tokenizer(list(texts))

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in backward (less memory, same gradients)."""
        self.grad_checkpointing = enable

    def logit_scale(self) -> torch.Tensor:
        """exp(frozen logit_scale): 100 for OpenAI weights."""
        return backbone.logit_scale(self.clip).exp()

    def encode_frames(
        self, video: torch.Tensor, return_attention: Sequence[int] = ()
    ) -> torch.Tensor | tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """(B, T, 3, H, W) normalized float video -> (B, T, E) unnormalized frame embeddings.

        `return_attention`: vision layers (negative counts from the end) whose attention weights to
        return as well, as `(frames, {layer: (B, T, H, Q, L)})`: per frame and head, how much each
        of the Q query tokens takes from each of the L tokens. The rows are the class token and the
        N patches (Q = 1 in the last layer, which computes the class token only); the columns add
        the frame's prompt token last in prompted layers (L = 1+N+1, else 1+N). Those layers run
        the same attention with the weights spelled out (`backbone.attention_branch_weights`).
        """
        self._check_video(video)
        B, T = video.shape[:2]
        layers = self.vision_dims.layers
        recorded = {layer % layers: layer for layer in return_attention}
        attention: dict[int, torch.Tensor] = {}
        frame_bias = None
        if self.temporal_embedding is not None:
            frame_bias = self.temporal_embedding.expand(B, T, -1).reshape(B * T, 1, -1)  # (B*T, 1, D)
        x = backbone.embed_frames(self.clip, video.flatten(0, 1), frame_bias)  # (B*T, 1+N, D)
        for layer in range(layers):
            if layer in recorded:
                x, weights = self._vision_block(x, layer, B, need_weights=True)
                attention[recorded[layer]] = weights.unflatten(0, (B, T))  # (B, T, H, Q, L)
            else:
                x = self._maybe_checkpoint(self._vision_block, x, layer, B)
        frames = backbone.pool_frames(self.clip, x).view(B, T, -1)  # (B, T, E)
        return (frames, attention) if return_attention else frames

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, E): unnormalized mean of the frame embeddings over T."""
        return self.encode_frames(video).mean(dim=1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids -> (N, E) unnormalized text embeddings from the adapted text tower."""
        context = backbone.context_length(self.clip)
        if tokens.ndim != 2 or tokens.shape[1] != context or tokens.is_floating_point():
            raise ValueError(
                f"expected integer token ids of shape (N, {context}), got {tuple(tokens.shape)} "
                f"{tokens.dtype}; use model.tokenize(texts)"
            )
        x, attn_mask = backbone.embed_text(self.clip, tokens)  # (N, L, W)
        for layer in range(self.text_dims.layers):
            x = self._maybe_checkpoint(self._text_block, x, layer, attn_mask)
        return backbone.pool_text(self.clip, x, tokens)  # (N, E)

    def similarity_logits(self, video_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
        """(B, E), (N, E) unnormalized -> (B, N) scaled cosine similarities."""
        video = F.normalize(video_embeddings, dim=-1)
        text = F.normalize(text_embeddings, dim=-1)
        return self.logit_scale() * video @ text.t()

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) video, (N, L) class tokens -> (B, N) logits."""
        return self.similarity_logits(self.encode_video(video), self.encode_text(tokens))

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors EZ-CLIP adds to the frozen backbone (prompts, adapters, temporal embedding)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("clip.")}

    # --- internals ------------------------------------------------------------------------------

    def _check_video(self, video: torch.Tensor) -> None:
        size = self.image_size
        expected = f"(B, {self.num_frames}, 3, {size}, {size})"
        if video.ndim != 5:
            raise ValueError(f"expected a video batch {expected}, got a rank-{video.ndim} tensor {tuple(video.shape)}")
        _, T, C, H, W = video.shape
        if C != 3:
            raise ValueError(f"expected 3 colour channels at dim 2 of {expected}, got {C} (shape {tuple(video.shape)})")
        if T != self.num_frames:
            raise ValueError(
                f"this model is built for T={self.num_frames} frames (its prompt tensor has {self.num_frames} rows), "
                f"got a video with T={T}; build or import a model for T={T} to evaluate with that many frames"
            )
        if (H, W) != (size, size):
            raise ValueError(f"expected {size}x{size} frames, got {H}x{W}")
        if not video.is_floating_point():
            raise ValueError(f"expected a normalized float video, got dtype {video.dtype}")

    def _maybe_checkpoint(self, fn, x: torch.Tensor, *args) -> torch.Tensor:
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(fn, x, *args, use_reentrant=False)
        return fn(x, *args)

    def _vision_block(self, x: torch.Tensor, layer: int, batch: int, need_weights: bool = False):
        """One prompted, adapted block (docs/design.md §3): (B*T, 1+N, D) -> (B*T, keep, D).

        With `need_weights`, also the attention weights (B*T, H, keep, L) of step 5.
        """
        block = backbone.vision_blocks(self.clip)[layer]
        drop = self.vision_drop_paths[layer]
        # The last block only needs outputs for the tokens the pool reads (the class token).
        num_queries = self.pooled_tokens if layer == self.vision_dims.layers - 1 else None
        keep = x.shape[1] if num_queries is None else num_queries
        tokens = x
        if self.prompts is not None and layer < self.prompts.num_layers:
            BT, _, D = x.shape  # (B*T, 1+N, D)
            T = BT // batch
            frame_means = x.mean(dim=1).view(batch, T, D)  # (B, T, D)
            prompts = self.prompts(layer).unsqueeze(0) + frame_means  # (B, T, D)
            prompts = drop(backbone.prompt_attention(block, prompts))  # (B, T, D), no residual
            prompt_tokens = prompts.reshape(BT, PROMPT_TOKENS_PER_FRAME, D)  # (B*T, 1, D)
            # the prompt token answers the frame tokens' queries, then leaves: its own output is unused
            tokens = torch.cat([x, prompt_tokens], dim=1)  # (B*T, 1+N+1, D)
        if need_weights:
            branch, weights = backbone.attention_branch_weights(block, tokens, num_queries=keep)
        else:
            branch = backbone.attention_branch(block, tokens, num_queries=keep)  # (B*T, keep, D)
        x = x[:, :keep] + drop(branch)
        if self.vision_adapters is not None:
            x = self.vision_adapters[layer](x)
        x = x + drop(backbone.mlp_branch(block, x))
        return (x, weights) if need_weights else x

    def _text_block(self, x: torch.Tensor, layer: int, attn_mask: torch.Tensor | None) -> torch.Tensor:
        block = backbone.text_blocks(self.clip)[layer]
        drop = self.text_drop_paths[layer]
        x = x + drop(backbone.attention_branch(block, x, attn_mask))  # (N, L, W)
        if self.text_adapters is not None:
            x = self.text_adapters[layer](x)
        return x + drop(backbone.mlp_branch(block, x))


def build_ezclip(backbone: str, *, device: str | torch.device = "cpu", **settings: Any) -> EZCLIP:
    """Build EZ-CLIP on an open_clip ViT CLIP.

    `backbone`: an open_clip model name (e.g. "ViT-B-16") or a path to a JSON architecture
    config; `settings`: the other fields of `EZCLIPConfig` (`pretrained`: an open_clip tag such as
    "openai", fetched and cached by open_clip, or a local weights file; None keeps random weights;
    `num_frames`, `tvp`, `adapters`, ...). `device="meta"` builds without memory (counting).
    """
    return build_from_config(EZCLIPConfig.from_dict({"backbone": backbone, **settings}), device=device)


def build_from_config(config: EZCLIPConfig, device: str | torch.device = "cpu") -> EZCLIP:
    clip = backbone.create_clip(
        config.backbone, config.pretrained, device=device, force_quick_gelu=config.force_quick_gelu
    )
    tokenizer = backbone.get_tokenizer(config.backbone)
    with torch.device(device):
        return EZCLIP(clip, config, tokenizer)
