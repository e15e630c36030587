"""Shared fixtures: a tiny registered open_clip ViT config with random weights, on the CPU."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from helpers import EVAL_QUIET, TINY, TINY_CONFIG, shrunk


@pytest.fixture(scope="session", autouse=True)
def tiny_backbone(tmp_path_factory) -> str:
    """Register the tiny architecture with open_clip under the name TINY."""
    from ezclip.models import backbone

    path = tmp_path_factory.mktemp("open_clip_configs") / f"{TINY}.json"
    path.write_text(json.dumps(TINY_CONFIG))
    name = backbone.register_model_config(path)
    assert name == TINY
    return name


@pytest.fixture(autouse=True)
def _quiet_open_clip_random_init(caplog):
    # open_clip logs a warning for every random-weight build, which every test does on purpose.
    caplog.set_level(logging.ERROR, logger="root")


@pytest.fixture
def seed():
    torch.manual_seed(0)
    return 0


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A tiny SynthMotion (32 px, 8 frames; 2 training, 1 validation and 2 test videos per class)."""
    from ezclip.demo.synth import generate

    out = tmp_path_factory.mktemp("synthmotion")
    generate(out, videos_per_class=2, val_per_class=1, test_per_class=2, size=32, frames=8, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def runs(tmp_path_factory, synth_dir) -> tuple[Path, Path]:
    """Two run folders on the tiny SynthMotion: EZ-CLIP trained 2 epochs (tvp=deep), and the frozen backbone tested."""
    from ezclip.eval import evaluate
    from ezclip.train import train

    root = tmp_path_factory.mktemp("runs")
    trained = ["trainer.max_epochs=2", "callbacks=default", "~callbacks.rich_progress_bar", *EVAL_QUIET]
    train(shrunk("train", root / "trained", synth_dir, trained))
    evaluate(shrunk("eval", root / "zero_shot", synth_dir, ["model.tvp=off", *EVAL_QUIET]))
    return root / "trained", root / "zero_shot"
