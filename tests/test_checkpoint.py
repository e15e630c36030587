"""The project's own checkpoint: trainable tensors + build arguments, weights_only loading."""

from __future__ import annotations

import pytest
import torch

from ezclip.models import (
    build_ezclip,
    checkpoint_format,
    load_model,
    load_trainable_state,
    read_checkpoint,
    save_checkpoint,
)
from ezclip.models.backbone import create_clip
from helpers import TINY, TINY_FRAMES, random_video, randomize_trainables


@pytest.fixture
def pretrained_file(tmp_path):
    """The tiny backbone's weights as a local file, as a user's pretrained weights would be."""
    torch.manual_seed(0)
    path = tmp_path / "tiny_clip.pt"
    torch.save(create_clip(TINY).state_dict(), path)
    return str(path)


def test_round_trip(tmp_path, pretrained_file):
    model = build_ezclip(TINY, pretrained=pretrained_file, num_frames=TINY_FRAMES).eval()
    randomize_trainables(model)
    path = save_checkpoint(model, tmp_path / "run" / "model.pt", extra={"epoch": 3})
    payload = torch.load(path, weights_only=True)  # plain dict: no pickled classes
    assert set(payload) == {"format", "format_version", "config", "state_dict", "extra"}
    assert not any(k.startswith("clip.") for k in payload["state_dict"])
    assert path.stat().st_size < 1_000_000

    loaded = load_model(path).eval()
    video, tokens = random_video(), model.tokenize(["a", "b"])
    with torch.no_grad():
        torch.testing.assert_close(loaded(video, tokens), model(video, tokens))
    assert loaded.config == model.config


@pytest.mark.parametrize(
    "other, problem",
    [
        ({"num_frames": TINY_FRAMES + 4}, "num_frames"),
        ({"tvp": "first"}, "tvp"),
        ({"adapters": False}, "adapters"),
    ],
)
def test_loading_into_a_mismatched_model_fails_clearly(tmp_path, pretrained_file, other, problem):
    model = build_ezclip(TINY, pretrained=pretrained_file, num_frames=TINY_FRAMES)
    path = save_checkpoint(model, tmp_path / "model.pt")
    kwargs = {"num_frames": TINY_FRAMES, **other}
    mismatched = build_ezclip(TINY, pretrained=pretrained_file, **kwargs)
    with pytest.raises(ValueError, match=f"trained for another model: .*{problem}"):
        load_trainable_state(mismatched, path)


def test_other_backbone_is_refused(tmp_path):
    model = build_ezclip(TINY, num_frames=8, device="meta")
    path = tmp_path / "model.pt"
    torch.save(
        {
            "format": "ezclip-trainable",
            "format_version": 1,
            "config": {**model.config.to_dict(), "backbone": "ViT-B-32"},
            "state_dict": {},
            "extra": {},
        },
        path,
    )
    with pytest.raises(ValueError, match="backbone: checkpoint 'ViT-B-32'"):
        load_trainable_state(model, path)


def test_files_of_no_known_format_are_refused_naming_the_formats(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    assert checkpoint_format(path) is None
    with pytest.raises(ValueError, match="none of the checkpoint formats.*Lightning.*authors"):
        load_model(path)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")


def test_formats_are_recognised_by_content_not_by_name(tmp_path):
    model = build_ezclip(TINY, num_frames=TINY_FRAMES)
    ours = save_checkpoint(model, tmp_path / "looks_like_lightning.ckpt")
    authors = tmp_path / "model.pt"
    torch.save({"epoch": 1, "model_state_dict": {}, "optimizer_state_dict": {}}, authors)
    assert checkpoint_format(ours) == "ezclip" and read_checkpoint(ours).config == model.config
    assert checkpoint_format(authors) == "authors" and read_checkpoint(authors).config is None
