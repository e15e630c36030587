"""nano-CLIP: pretraining writes open_clip weights that EZ-CLIP loads, and the cache is reused."""

from __future__ import annotations

import json

import pytest
import torch

from ezclip import nano

TINY_RUN = {"steps": 2, "batch_size": 8, "seed": 0}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    cache = tmp_path_factory.mktemp("nano_cache")
    return cache, nano.ensure_nano(cache, progress=False, verbose=False, **TINY_RUN)


def test_pretraining_writes_loadable_weights_and_metrics(weights):
    from ezclip.models import build_ezclip

    cache, path = weights
    assert path.is_file() and path.parent == cache
    metrics = json.loads(path.with_suffix(".json").read_text())
    assert metrics["steps"] == 2 and 0.0 <= metrics["retrieval_top1"] <= 1.0
    assert metrics["retrieval_candidates"] == nano.RETRIEVAL_CAPTIONS
    model = build_ezclip(nano.NANO, pretrained=str(path), num_frames=2, tvp="deep")
    state = torch.load(path, weights_only=True)
    assert torch.equal(model.clip.visual.conv1.weight, state["visual.conv1.weight"])
    size = model.image_size
    logits = model(torch.randn(1, 2, 3, size, size), model.tokenize(["a shape moves from the left to the right"]))
    assert logits.shape == (1, 1)


def test_cache_is_reused_and_keyed_by_settings(weights, capsys):
    cache, path = weights
    stamp = path.stat().st_mtime_ns
    assert nano.ensure_nano(cache, progress=False, **TINY_RUN) == path
    assert "reusing" in capsys.readouterr().out
    assert path.stat().st_mtime_ns == stamp
    other = nano.settings_key({**TINY_RUN, "seed": 1, "lr": nano.DEFAULTS["lr"]})
    assert other not in path.name


def test_same_seed_same_weights(weights, tmp_path):
    _, path = weights
    again = nano.ensure_nano(tmp_path, progress=False, verbose=False, **TINY_RUN)
    first, second = torch.load(path, weights_only=True), torch.load(again, weights_only=True)
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_cli_pretrain_nano(weights, capsys):
    from ezclip.cli import main

    cache, path = weights
    args = ["pretrain-nano", "--cache-dir", str(cache), "--steps", "2", "--batch-size", "8", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "reusing" in out and str(path) in out
    assert main(["pretrain-nano", "--cache-dir", str(cache), "--steps", "0"]) == 2


@pytest.mark.slow
def test_pretrained_retrieval_beats_chance(tmp_path):
    # The default settings: the loss leaves its chance plateau after ~60 steps (measured).
    path = nano.ensure_nano(tmp_path, minutes=10, progress=False, verbose=False)
    metrics = json.loads(path.with_suffix(".json").read_text())
    assert metrics["retrieval_top1"] > 3 * metrics["chance"]
