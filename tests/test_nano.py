"""nano-CLIP: pretraining writes open_clip weights + architecture that EZ-CLIP loads; reuse is by settings."""

from __future__ import annotations

import json

import pytest
import torch

from ezclip.demo import nano

TINY_RUN = {"steps": 2, "batch_size": 8, "seed": 0}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    cache = tmp_path_factory.mktemp("nano_cache")
    return cache, nano.ensure_nano(cache, progress=False, verbose=False, **TINY_RUN)


def test_pretraining_writes_loadable_weights_and_metrics(weights):
    from ezclip.models import build_ezclip

    cache, files = weights
    assert files.weights.is_file() and files.folder == cache
    metrics = json.loads(files.metrics.read_text())
    assert metrics["steps"] == 2 and 0.0 <= metrics["retrieval_top1"] <= 1.0
    assert metrics["retrieval_candidates"] == nano.RETRIEVAL_CAPTIONS
    model = build_ezclip(str(files.architecture), pretrained=str(files.weights), num_frames=2, tvp="deep")
    state = torch.load(files.weights, weights_only=True)
    assert torch.equal(model.clip.visual.conv1.weight, state["visual.conv1.weight"])
    size = model.image_size
    logits = model(torch.randn(1, 2, 3, size, size), model.tokenize(["a shape moves from the left to the right"]))
    assert logits.shape == (1, 1)


def test_files_are_reused_only_for_the_same_settings(tmp_path, capsys):
    files = nano.ensure_nano(tmp_path, progress=False, **TINY_RUN)
    stamp = files.weights.stat().st_mtime_ns
    assert nano.ensure_nano(tmp_path, progress=False, **TINY_RUN) == files
    assert "reusing" in capsys.readouterr().out
    assert files.weights.stat().st_mtime_ns == stamp
    nano.ensure_nano(tmp_path, progress=False, **{**TINY_RUN, "seed": 1})
    assert "other settings" in capsys.readouterr().out and files.weights.stat().st_mtime_ns != stamp
    assert json.loads(files.metrics.read_text())["settings"]["seed"] == 1


def test_same_seed_same_weights(weights, tmp_path):
    _, files = weights
    again = nano.ensure_nano(tmp_path, progress=False, verbose=False, **TINY_RUN)
    first, second = torch.load(files.weights, weights_only=True), torch.load(again.weights, weights_only=True)
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_the_time_guard_stops_with_an_error_and_writes_nothing(tmp_path):
    with pytest.raises(nano.PretrainingStopped, match="0 of 2 steps"):
        nano.ensure_nano(tmp_path, minutes=-1.0, progress=False, verbose=False, **TINY_RUN)
    assert not any(tmp_path.iterdir())


def test_cli_pretrain_nano(weights, capsys):
    from ezclip.cli import main

    cache, files = weights
    args = ["pretrain-nano", "--cache-dir", str(cache), "--steps", "2", "--batch-size", "8", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "reusing" in out and str(files.weights) in out
    assert main(["pretrain-nano", "--cache-dir", str(cache), "--steps", "0"]) == 2


@pytest.mark.slow
def test_pretrained_retrieval_beats_chance(tmp_path):
    # The default settings: the loss leaves its chance plateau after ~60 steps (measured).
    files = nano.ensure_nano(tmp_path, progress=False, verbose=False)
    metrics = json.loads(files.metrics.read_text())
    assert metrics["retrieval_top1"] > 3 * metrics["chance"]
