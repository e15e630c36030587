"""Import of the authors' checkpoint format, built here from a tiny OpenAI-format state dict."""

from __future__ import annotations

import pytest
import torch

from ezclip.models import EZCLIP, build_ezclip, load_official_checkpoint
from helpers import TINY, TINY_FRAMES, random_video, randomize_trainables

OUR_TO_THEIRS = {"down": "D_fc1", "up": "D_fc2"}


def authors_state_dict(model: EZCLIP, tvp_rows: int | None) -> dict[str, torch.Tensor]:
    """`model`'s weights under the authors' key names, 2-D tensors in fp16 as in their files."""
    state = {}
    for key, value in model.clip.state_dict().items():
        state[key] = value.half() if value.ndim == 2 else value.clone()
    if tvp_rows is not None:
        state["visual.transformer.T_prompt_embeddings"] = model.prompts.embeddings.detach().clone()
    state["visual.temporal_embedding"] = torch.zeros(1, TINY_FRAMES, model.vision_dims.width)
    for ours, prefix in (("vision_adapters", "visual.transformer"), ("text_adapters", "transformer")):
        for i, adapter in enumerate(getattr(model, ours)):
            for fc in ("down", "up"):
                layer = getattr(adapter, fc)
                state[f"{prefix}.resblocks.{i}.Adapter.{OUR_TO_THEIRS[fc]}.weight"] = layer.weight.detach().half()
                state[f"{prefix}.resblocks.{i}.Adapter.{OUR_TO_THEIRS[fc]}.bias"] = layer.bias.detach().clone()
    return state


def reference_model(tvp: str) -> EZCLIP:
    """A model whose fp16-stored tensors are already rounded, so import must reproduce it exactly."""
    torch.manual_seed(0)
    model = build_ezclip(TINY, num_frames=TINY_FRAMES, tvp=tvp).eval()
    randomize_trainables(model, scale=0.1)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.copy_(p.half().float())
    return model


def save_authors_checkpoint(path, state: dict[str, torch.Tensor]) -> None:
    torch.save(
        {
            "epoch": 10,
            "model_state_dict": {f"module.{k}": v for k, v in state.items()},
            "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 5e-6}]},
        },
        path,
    )


@pytest.mark.parametrize("tvp", ["deep", "first"])
def test_import_reproduces_the_model(tmp_path, tvp):
    reference = reference_model(tvp)
    path = tmp_path / "ezclip_authors.pt"
    save_authors_checkpoint(path, authors_state_dict(reference, tvp_rows=1))
    model = load_official_checkpoint(path)
    assert not model.training
    assert model.config.tvp == tvp and model.num_frames == TINY_FRAMES and model.config.adapters
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.temporal_embedding is None  # zero in the file: nothing to apply
    video = random_video()
    tokens = model.tokenize(["jumping jacks", "a person is slicing a tomato"])
    with torch.no_grad():
        torch.testing.assert_close(model.encode_video(video), reference.encode_video(video))
        torch.testing.assert_close(model.encode_text(tokens), reference.encode_text(tokens))


def test_import_without_prompts_is_tvp_off(tmp_path):
    reference = reference_model("off")
    path = tmp_path / "off.pt"
    save_authors_checkpoint(path, authors_state_dict(reference, tvp_rows=None))
    assert load_official_checkpoint(path).config.tvp == "off"


def test_non_zero_temporal_embedding_is_applied(tmp_path):
    reference = reference_model("deep")
    state = authors_state_dict(reference, tvp_rows=3)
    state["visual.temporal_embedding"] = torch.randn(1, TINY_FRAMES, 128) * 0.5
    path = tmp_path / "te.pt"
    save_authors_checkpoint(path, state)
    model = load_official_checkpoint(path)
    reference.temporal_embedding = state["visual.temporal_embedding"].clone()
    video = random_video()
    with torch.no_grad():
        torch.testing.assert_close(model.encode_video(video), reference.encode_video(video))


def _import_error(tmp_path, state) -> str:
    path = tmp_path / "bad.pt"
    save_authors_checkpoint(path, state)
    with pytest.raises(ValueError) as error:
        load_official_checkpoint(path)
    return str(error.value)


def test_unknown_keys_are_named(tmp_path):
    state = authors_state_dict(reference_model("deep"), tvp_rows=3)
    state["visual.transformer.resblocks.0.T_Adapter.D_fc1.weight"] = torch.zeros(32, 128)
    assert "visual.transformer.resblocks.0.T_Adapter.D_fc1.weight" in _import_error(tmp_path, state)


def test_missing_keys_are_named(tmp_path):
    state = authors_state_dict(reference_model("deep"), tvp_rows=3)
    del state["transformer.resblocks.1.Adapter.D_fc2.bias"]
    del state["visual.ln_post.weight"]
    assert "visual.ln_post.weight" in _import_error(tmp_path, state)
    state["visual.ln_post.weight"] = torch.ones(128)
    assert "text_adapters.1.up.bias" in _import_error(tmp_path, state)


def test_resnet_state_dict_is_refused(tmp_path):
    state = authors_state_dict(reference_model("deep"), tvp_rows=3)
    for key in [k for k in state if k.startswith("visual.") and "Adapter" not in k and "prompt" not in k]:
        del state[key]
    state["visual.layer1.0.conv1.weight"] = torch.zeros(64, 128, 1, 1)
    state["visual.attnpool.positional_embedding"] = torch.zeros(50, 2048)
    assert "not a ViT CLIP state dict" in _import_error(tmp_path, state)


def test_inconsistent_frame_counts_are_refused(tmp_path):
    state = authors_state_dict(reference_model("deep"), tvp_rows=3)
    state["visual.temporal_embedding"] = torch.zeros(1, TINY_FRAMES + 2, 128)
    assert f"T={TINY_FRAMES + 2}" in _import_error(tmp_path, state)


def test_prompt_rows_that_fit_no_variant_are_refused(tmp_path):
    state = authors_state_dict(reference_model("deep"), tvp_rows=3)
    state["visual.transformer.T_prompt_embeddings"] = torch.zeros(2, TINY_FRAMES, 128)
    assert "2 layer rows" in _import_error(tmp_path, state)


def test_missing_file_and_wrong_format(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_official_checkpoint(tmp_path / "nope.pt")
    path = tmp_path / "list.pt"
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match="authors' format"):
        load_official_checkpoint(path)
