"""Every open_clip touch point in ezclip.models.backbone, on the pinned open_clip version."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch

from ezclip.models import backbone, build_ezclip
from helpers import TINY, TINY_CONFIG


@pytest.fixture
def clip():
    torch.manual_seed(0)
    return backbone.create_clip(TINY).eval()


def test_open_clip_is_the_pinned_version():
    assert open_clip.__version__.startswith(backbone.SUPPORTED_OPEN_CLIP)


def test_vision_pieces_rebuild_encode_image(clip):
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        x = backbone.embed_frames(clip, images)
        for block in backbone.vision_blocks(clip):
            x = x + backbone.attention_branch(block, x)
            x = x + backbone.mlp_branch(block, x)
        torch.testing.assert_close(backbone.pool_frames(clip, x), clip.encode_image(images))


def test_text_pieces_rebuild_encode_text(clip):
    tokens = backbone.get_tokenizer(TINY)(["a dog", "two people dancing in the rain"])
    with torch.no_grad():
        x, mask = backbone.embed_text(clip, tokens)
        for block in backbone.text_blocks(clip):
            x = x + backbone.attention_branch(block, x, mask)
            x = x + backbone.mlp_branch(block, x)
        torch.testing.assert_close(backbone.pool_text(clip, x, tokens), clip.encode_text(tokens))


def test_frame_bias_is_added_before_ln_pre(clip):
    images = torch.randn(2, 3, 32, 32)
    bias = torch.randn(2, 1, 128)
    captured = {}
    handle = clip.visual.ln_pre.register_forward_pre_hook(lambda m, args: captured.update(x=args[0]))
    with torch.no_grad():
        backbone.embed_frames(clip, images)
        plain = captured["x"]
        backbone.embed_frames(clip, images, bias)
    handle.remove()
    torch.testing.assert_close(captured["x"], plain + bias)


def test_prompt_attention_uses_the_block_attention_without_residual(clip):
    block = backbone.vision_blocks(clip)[0]
    q = torch.randn(2, 4, 128)
    with torch.no_grad():
        h = block.ln_1(q)
        torch.testing.assert_close(backbone.prompt_attention(block, q), block.attn(h, h, h, need_weights=False)[0])


@pytest.mark.parametrize("tower, mask", [("vision", False), ("text", True)])
def test_attention_with_dropout_written_out_on_cpu_is_the_blocks_attention(clip, monkeypatch, tower, mask):
    # In training the CPU path computes softmax(q k^T / sqrt(d) + mask) v itself, with dropout on the
    # weights; with that dropout made the identity it must give the block's own attention.
    blocks = backbone.text_blocks(clip) if tower == "text" else backbone.vision_blocks(clip)
    block = blocks[1]
    x = torch.randn(3, 7, 128)
    attn_mask = torch.full((7, 7), float("-inf")).triu(1) if mask else None
    with torch.no_grad():
        expected = block.attn(x, x, x, need_weights=False, attn_mask=attn_mask)[0]
        backbone.set_attention_dropout(block, 0.3)
        block.attn.train()
        calls = []
        monkeypatch.setattr(backbone.F, "dropout", lambda t, p, training=True: calls.append(p) or t)
        torch.testing.assert_close(backbone.self_attention(block, x, attn_mask), expected)
        torch.testing.assert_close(backbone.self_attention(block, x, attn_mask, num_queries=2), expected[:, :2])
    assert calls == [0.3, 0.3]


@pytest.mark.parametrize("num_queries", [None, 1])
def test_attention_with_weights_equals_the_sdpa_path_and_multihead_attention(clip, num_queries):
    block = backbone.vision_blocks(clip)[1]
    x = torch.randn(2, 18, 128)  # 1 + 16 patches + 1 prompt token
    with torch.no_grad():
        out, weights = backbone.self_attention_weights(block, x, num_queries=num_queries)
        torch.testing.assert_close(out, backbone.self_attention(block, x, num_queries=num_queries))
        _, reference = block.attn(x, x, x, need_weights=True, average_attn_weights=False)  # (B, H, L, L)
    Q = 18 if num_queries is None else num_queries
    assert weights.shape == (2, 2, Q, 18)
    torch.testing.assert_close(weights, reference[:, :, :Q])
    branch, _ = backbone.attention_branch_weights(block, x, num_queries=num_queries)
    torch.testing.assert_close(branch, backbone.attention_branch(block, x, num_queries=num_queries))


def test_attention_with_weights_keeps_the_causal_text_mask(clip):
    tokens = backbone.get_tokenizer(TINY)(["two people dancing in the rain"])
    with torch.no_grad():
        x, mask = backbone.embed_text(clip, tokens)
        block = backbone.text_blocks(clip)[0]
        out, weights = backbone.self_attention_weights(block, x, mask)
        torch.testing.assert_close(out, backbone.self_attention(block, x, mask))
    assert torch.all(weights[..., 0, 1:] == 0)  # the first token sees only itself


def test_dims(clip):
    v, t = backbone.vision_dims(clip), backbone.text_dims(clip)
    assert (v.width, v.layers, v.heads, v.patch_size, v.image_size, v.num_patches) == (128, 3, 2, 8, 32, 16)
    assert (t.width, t.layers, t.heads) == (128, 2, 2)
    assert backbone.embed_dim(clip) == 32 and backbone.context_length(clip) == 77


def test_attention_dropout_switch(clip):
    block = backbone.vision_blocks(clip)[1]
    backbone.set_attention_dropout(block, 0.3)
    assert block.attn.dropout == 0.3


def test_openai_pretrained_tag_forces_quick_gelu(monkeypatch):
    seen = {}

    def fake_create_model(name, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop before any download")

    monkeypatch.setattr(open_clip, "create_model", fake_create_model)
    with pytest.raises(RuntimeError, match="stop before"):
        backbone.create_clip("ViT-B-16", "openai")
    assert seen["force_quick_gelu"] is True and seen["pretrained"] == "openai"


@pytest.mark.parametrize(
    "name, reason",
    [
        ("RN50", "ModifiedResNet vision tower"),
        ("coca_ViT-B-32", "pools with attention"),
    ],
)
def test_non_vit_towers_are_refused_with_the_reason(name, reason):
    with pytest.raises(backbone.UnsupportedBackbone, match=reason):
        build_ezclip(name, device="meta")


def test_custom_blocks_are_refused(tmp_path):
    config = json.loads(json.dumps(TINY_CONFIG))
    config["vision_cfg"]["qk_norm"] = True
    path = tmp_path / "ezclip-test-qknorm.json"
    path.write_text(json.dumps(config))
    with pytest.raises(backbone.UnsupportedBackbone, match="CustomResidualAttentionBlock"):
        build_ezclip(str(path), device="meta")


def test_json_config_path_is_a_backbone(tmp_path):
    path = tmp_path / "ezclip-test-from-file.json"
    path.write_text(json.dumps(TINY_CONFIG))
    model = build_ezclip(str(path), num_frames=2, device="meta")
    assert model.vision_dims.width == 128


def test_openai_config_inference_names_the_registered_architecture():
    with torch.device("meta"):
        clip = open_clip.create_model("ViT-B-16-quickgelu", device="meta")
    config = backbone.openai_config_from_state_dict(clip.state_dict())
    assert backbone.registered_name_for(config) == "ViT-B-16-quickgelu"
