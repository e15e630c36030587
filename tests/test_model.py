"""EZCLIP: equivalence with frozen CLIP, the temporal path, the trainable set, input checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ezclip.models import EZCLIP, build_ezclip, contrastive_loss, count_parameters, motion_loss
from helpers import TINY, TINY_FRAMES, random_video, randomize_trainables


def tiny(**kwargs) -> EZCLIP:
    torch.manual_seed(0)
    kwargs.setdefault("num_frames", TINY_FRAMES)
    return build_ezclip(TINY, **kwargs)


def test_fresh_model_without_prompts_equals_frozen_clip():
    model = tiny(tvp="off").eval()
    video = random_video()
    tokens = model.tokenize(["a person waving", "juggling three balls"])
    with torch.no_grad():
        expected_video = model.clip.encode_image(video.flatten(0, 1)).view(2, TINY_FRAMES, -1).mean(1)
        expected_text = model.clip.encode_text(tokens)
        torch.testing.assert_close(model.encode_video(video), expected_video, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.encode_text(tokens), expected_text, rtol=1e-5, atol=1e-5)


def test_frame_order_matters_only_with_temporal_prompts():
    video = random_video(batch=1)
    reversed_video = video.flip(1)
    off = tiny(tvp="off").eval()
    randomize_trainables(off)  # adapters non-zero: still no path between frames
    deep = tiny(tvp="deep").eval()
    randomize_trainables(deep)
    with torch.no_grad():
        torch.testing.assert_close(off.encode_video(video), off.encode_video(reversed_video), rtol=1e-5, atol=1e-5)
        change = (deep.encode_video(video) - deep.encode_video(reversed_video)).abs().max()
    assert change > 1e-3


def _attention_sequence_lengths(model: EZCLIP, video: torch.Tensor) -> dict[int, list[int]]:
    """Sequence lengths entering each vision block's attention (through ln_1), prompt attention included."""
    from ezclip.models import backbone

    seen: dict[int, list[int]] = {}
    handles = []
    for i, block in enumerate(backbone.vision_blocks(model.clip)):
        hook = lambda module, args, i=i: seen.setdefault(i, []).append(args[0].shape[1])
        handles.append(block.ln_1.register_forward_pre_hook(hook))
    with torch.no_grad():
        model.encode_video(video)
    for handle in handles:
        handle.remove()
    return seen


@pytest.mark.parametrize("tvp", ["deep", "first", "off"])
def test_prompted_layers(tvp):
    model = tiny(tvp=tvp).eval()
    tokens_per_frame = 1 + model.vision_dims.num_patches
    seen = _attention_sequence_lengths(model, random_video(batch=1))
    prompted = {"deep": range(model.vision_dims.layers), "first": [0], "off": []}[tvp]
    for layer in range(model.vision_dims.layers):
        if layer in prompted:
            # the T prompts attend to each other, then each frame sees its prompt as one extra token
            assert seen[layer] == [TINY_FRAMES, tokens_per_frame + 1]
        else:
            assert seen[layer] == [tokens_per_frame]
    rows = {"deep": model.vision_dims.layers, "first": 1, "off": None}[tvp]
    if rows is None:
        assert model.prompts is None
    else:
        assert model.prompts.embeddings.shape == (rows, TINY_FRAMES, model.vision_dims.width)


def _reference_encode_frames(model: EZCLIP, video: torch.Tensor) -> torch.Tensor:
    """docs/design.md §3 written out step by step on open_clip's own modules (eval mode)."""
    visual = model.clip.visual
    B, T = video.shape[:2]
    x = visual.conv1(video.flatten(0, 1)).flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.expand(B * T, 1, -1), x], dim=1) + visual.positional_embedding
    x = visual.ln_pre(x)
    for layer, block in enumerate(visual.transformer.resblocks):
        if model.prompts is not None and layer < model.prompts.num_layers:
            q = model.prompts.embeddings[layer] + x.mean(dim=1).view(B, T, -1)
            q = block.attn(block.ln_1(q), block.ln_1(q), block.ln_1(q), need_weights=False)[0]
            ext = torch.cat([x, q.reshape(B * T, 1, -1)], dim=1)
            h = block.ln_1(ext)
            x = (ext + block.attn(h, h, h, need_weights=False)[0])[:, :-1]
        else:
            h = block.ln_1(x)
            x = x + block.attn(h, h, h, need_weights=False)[0]
        adapter = model.vision_adapters[layer]
        x = x + adapter.up(F.gelu(adapter.down(x)))
        x = x + block.mlp(block.ln_2(x))
    return (visual.ln_post(x[:, 0]) @ visual.proj).view(B, T, -1)


@pytest.mark.parametrize("tvp", ["deep", "first"])
def test_encode_frames_matches_the_written_out_method(tvp):
    model = tiny(tvp=tvp).eval()
    randomize_trainables(model, scale=0.2)
    video = random_video()
    with torch.no_grad():
        torch.testing.assert_close(model.encode_frames(video), _reference_encode_frames(model, video))


@pytest.mark.parametrize("tvp", ["deep", "off"])
def test_recording_attention_gives_the_same_frames_and_row_stochastic_weights(tvp):
    model = tiny(tvp=tvp).eval()
    randomize_trainables(model, scale=0.2)
    video = random_video()
    with torch.no_grad():
        frames, attention = model.encode_frames(video, return_attention=(0, -1))
        torch.testing.assert_close(frames, model.encode_frames(video))
    heads, tokens = model.vision_dims.heads, 1 + model.vision_dims.num_patches
    prompt = 1 if tvp == "deep" else 0  # the prompt token is the last column of a prompted layer
    assert attention[0].shape == (2, TINY_FRAMES, heads, tokens, tokens + prompt)
    assert attention[-1].shape == (2, TINY_FRAMES, heads, 1, tokens + prompt)  # the last layer: class token only
    for weights in attention.values():
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


def test_exact_trainable_parameter_names():
    model = tiny()
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {"prompts.embeddings"}
    for tower, layers in (("vision_adapters", 3), ("text_adapters", 2)):
        for i in range(layers):
            expected |= {f"{tower}.{i}.{fc}.{kind}" for fc in ("down", "up") for kind in ("weight", "bias")}
    assert names == expected
    assert not model.clip.logit_scale.requires_grad


def _training_loss(model: EZCLIP, video, tokens, labels) -> torch.Tensor:
    frames = model.encode_frames(video)
    logits = model.similarity_logits(frames.mean(1), model.encode_text(tokens))
    return contrastive_loss(logits, labels) + motion_loss(frames)


def test_optimizer_moves_only_trainable_tensors():
    model = tiny().train()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    video, tokens, labels = random_video(), model.tokenize(["a", "b", "c"]), torch.tensor([0, 2])
    for _ in range(2):  # adapters' `down` gets gradients once `up` has left zero
        optimizer.zero_grad()
        _training_loss(model, video, tokens, labels).backward()
        optimizer.step()
    for name, p in model.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), f"frozen {name} changed"
            assert p.grad is None, f"frozen {name} received a gradient"
        else:
            assert not torch.equal(p, trainable[name]), f"trainable {name} did not move"


def test_gradient_checkpointing_gives_the_same_gradients():
    model = tiny().train()
    randomize_trainables(model)
    video, tokens, labels = random_video(), model.tokenize(["a", "b", "c"]), torch.tensor([1, 2])

    def gradients(checkpointing: bool) -> dict[str, torch.Tensor]:
        model.zero_grad()
        model.set_grad_checkpointing(checkpointing)
        torch.manual_seed(123)  # same dropout / drop-path draws in both runs
        _training_loss(model, video, tokens, labels).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    plain, checkpointed = gradients(False), gradients(True)
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-6)


def test_vit_b16_counts_match_the_paper():
    model = build_ezclip("ViT-B-16", num_frames=8, device="meta")
    counts = count_parameters(model)
    assert counts["trainable"] == 5_204_736
    assert counts["prompts"] == 73_728
    assert counts["vision_adapters"] == 3_550_464
    assert counts["text_adapters"] == 1_580_544
    assert counts["backbone"] == 149_620_737  # open_clip ViT-B-16 incl. logit_scale: the "149.6M"


def test_switches_change_the_counts():
    full = count_parameters(tiny())
    no_adapters = count_parameters(tiny(adapters=False))
    first = count_parameters(tiny(tvp="first"))
    assert no_adapters["trainable"] == full["prompts"]
    assert first["prompts"] == full["prompts"] // 3  # 1 of 3 layers
    assert count_parameters(tiny(tvp="off", adapters=False))["trainable"] == 0


@pytest.mark.parametrize(
    "shape, message",
    [
        ((2, 3, 32, 32), "rank-4"),
        ((2, TINY_FRAMES + 1, 3, 32, 32), f"built for T={TINY_FRAMES}"),
        ((2, TINY_FRAMES, 1, 32, 32), "3 colour channels"),
        ((2, TINY_FRAMES, 3, 48, 48), "32x32 frames"),
    ],
)
def test_bad_video_tensors_are_refused_with_what_was_expected(shape, message):
    model = tiny().eval()
    with pytest.raises(ValueError, match=message):
        model.encode_video(torch.zeros(shape))


def test_uint8_video_and_bad_tokens_are_refused():
    model = tiny().eval()
    with pytest.raises(ValueError, match="normalized float"):
        model.encode_video(torch.zeros(1, TINY_FRAMES, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(N, 77\)"):
        model.encode_text(torch.zeros(2, 10, dtype=torch.long))


def test_forward_gives_scaled_cosine_logits():
    model = tiny().eval()
    video, tokens = random_video(), model.tokenize(["a", "b", "c"])
    with torch.no_grad():
        logits = model(video, tokens)
        v = F.normalize(model.encode_video(video), dim=-1)
        t = F.normalize(model.encode_text(tokens), dim=-1)
    assert logits.shape == (2, 3)
    torch.testing.assert_close(logits, model.clip.logit_scale.exp() * v @ t.t())


def test_long_text_keeps_its_end_token():
    model = tiny()
    tokens = model.tokenize(["word " * 200])
    assert tokens.shape == (1, 77)
    assert tokens[0, -1].item() == tokens.max().item()  # end-of-text is the largest id


def test_invalid_switches_are_refused():
    with pytest.raises(ValueError, match="tvp must be one of"):
        tiny(tvp="all")
    with pytest.raises(ValueError, match="unknown backbone"):
        build_ezclip("ViT-B-61")


def test_dropout_is_off_in_eval_and_on_in_train():
    model = tiny()
    randomize_trainables(model)
    video = random_video()
    with torch.no_grad():
        model.eval()
        a, b = model.encode_video(video), model.encode_video(video)
        model.train()
        c, d = model.encode_video(video), model.encode_video(video)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(c, d)


def test_template_ensembles_train_on_one_drawn_text_and_test_on_the_mean_softmax():
    from ezclip.lit.module import EZCLIPModule

    no_dropout = {"drop_path": 0.0, "attn_dropout": 0.0, "prompt_dropout": 0.0}  # train and eval encode alike
    module = EZCLIPModule(backbone=TINY, num_frames=TINY_FRAMES, eval_text="softmax", train_text="sample", **no_dropout)
    randomize_trainables(module.net)
    names, templates = ["jump", "run", "swim"], ["a video of {}", "{}!", "someone does {}"]
    module.class_tokens["set"] = module.net.tokenize([t.format(n) for n in names for t in templates])
    module._texts_per_class["set"] = torch.tensor([3, 3, 3])
    with torch.no_grad():
        texts = F.normalize(module.net.encode_text(module.class_tokens["set"]), dim=-1).view(3, 3, -1)  # (C, K, E)
        video = torch.randn(2, texts.shape[-1])
        module.eval()
        probs = module.class_probabilities(video, "set")
        scale = module.net.logit_scale()
        expected = torch.stack([(scale * F.normalize(video, dim=-1) @ texts[:, k].t()).softmax(-1) for k in range(3)])
        torch.testing.assert_close(probs, expected.mean(0))  # the mean over templates of each one's softmax
        module.train()
        labels = torch.tensor([0, 2, 2, 1] * 8)
        drawn = module.class_embeddings("set", labels)  # (B, E): one text of each video's class
    for row, label in zip(drawn, labels.tolist(), strict=True):
        assert min(float((row - texts[label, k]).abs().max()) for k in range(3)) < 1e-5
    distinct = {tuple(row[:4].tolist()) for row, label in zip(drawn, labels.tolist(), strict=True) if label == 2}
    assert len(distinct) > 1  # drawn per video, not fixed
