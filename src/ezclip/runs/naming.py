"""Run names and the ablation factors that tell runs apart (W&B names, tags, report cells)."""

from __future__ import annotations

from pathlib import Path


def backbone_name(backbone: str) -> str:
    """A backbone as a short name: an architecture JSON file by its stem (`ezclip-nano`)."""
    backbone = str(backbone)
    return Path(backbone).stem if backbone.endswith(".json") else backbone


def ablation_factors(cfg) -> dict[str, str]:
    """The factors a run differs by in the paper's ablations, as short strings."""
    model, data = cfg.model, cfg.data
    text = data.get("text", {}) or {}
    protocol = cfg.get("protocol") or {}
    dataset = cfg.get("dataset") or {}
    # The variant (e.g. all_base_samples, authors_split1_k600_232) tells apart runs of one protocol name.
    setting = [str(protocol["variant"])] if "variant" in protocol else []
    setting += [f"{k}{protocol[k]}" for k in ("seed", "shots", "split") if k in protocol]
    return {
        "backbone": backbone_name(model.get("backbone")),
        "frames": f"T{model.get('num_frames')}",
        "tvp": f"tvp-{model.get('tvp')}",
        "motion": "motion" if model.get("motion_loss") else "no-motion",
        "text": f"text-{text.get('source', 'names')}",
        "protocol": "-".join([str(protocol.get("name", "custom")), *setting]),
        "dataset": str(dataset.get("name", "videos")),
        "seed": f"seed{cfg.get('seed')}",
    }


def run_name(cfg) -> str:
    return "_".join(ablation_factors(cfg).values())


def tags(cfg) -> list[str]:
    return list(cfg.get("tags") or []) + list(ablation_factors(cfg).values())


def sweep_group() -> str | None:
    """The multirun's folder name when running inside a Hydra multirun, else None."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode is not None and hydra_cfg.mode.name == "MULTIRUN":
        return Path(hydra_cfg.sweep.dir).name
    return None
