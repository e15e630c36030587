"""Shared fixtures: a tiny registered open_clip ViT config with random weights, on the CPU."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from helpers import TINY, TINY_CONFIG


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
