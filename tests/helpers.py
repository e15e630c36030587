"""Helpers shared by the tests: the tiny architecture, random inputs, non-zero trainables."""

from __future__ import annotations

import torch

TINY = "ezclip-test-tiny"
# Heads are 64 wide, as in OpenAI CLIP (its state dicts do not record the head count).
TINY_CONFIG = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 3, "width": 128, "head_width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 2},
}
TINY_FRAMES = 4


def randomize_trainables(model, scale: float = 0.05, seed: int = 1) -> None:
    """Give prompts and adapters non-zero values (fresh adapters are the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=generator) * scale)


def random_video(batch: int = 2, frames: int = TINY_FRAMES, size: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, size, size, generator=generator)


EVAL_QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
QUIET = ["callbacks=none", *EVAL_QUIET]


def shrunk(config_name: str, out, synth, overrides=()):
    """The real config, pointed at tmp folders, the tiny backbone and a tiny SynthMotion in `synth`."""
    from hydra import compose, initialize_config_dir

    from ezclip.runs.config import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(
            config_name=config_name,
            overrides=[
                *overrides,
                f"paths.root_dir={out}",
                f"paths.output_dir={out}",
                f"paths.log_dir={out}",
                f"paths.cache_dir={out / 'cache'}",
                f"data.root={synth}",
                "data.image_size=32",
                "data.resize_size=32",
                "data.num_frames=4",
                "data.batch_size=4",
                "data.eval_batch_size=8",
                "data.num_workers=0",
                f"model.backbone={TINY}",
                "model.pretrained=null",
                "model.force_quick_gelu=false",
                "model.optimizer.lr=1e-3",
            ],
        )
