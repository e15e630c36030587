"""Run names and the ablation factors that tell runs apart (W&B names, tags, report cells)."""

from __future__ import annotations

import re
from pathlib import Path


def backbone_name(backbone: str) -> str:
    """A backbone as a short name: an architecture JSON file by its stem (`ezclip-nano`)."""
    backbone = str(backbone)
    return Path(backbone).stem if backbone.endswith(".json") else backbone


def ablation_factors(cfg) -> dict[str, str]:
    """The factors a run differs by in the paper's ablations, as short strings.

    `protocol` is the protocol's name, variant and shots; `repeat` what a table averages over
    (the base-to-novel seed, the split of a split protocol); `seed` the run's random seed.
    """
    model, data = cfg.model, cfg.data
    text = data.get("text", {}) or {}
    protocol = cfg.get("protocol") or {}
    dataset = cfg.get("dataset") or {}
    # The variant (e.g. all_base_samples, authors_split1_k600_232) tells apart runs of one protocol name.
    setting = [str(protocol["variant"])] if "variant" in protocol else []
    setting += [f"shots{protocol['shots']}"] if "shots" in protocol else []
    repeat = [f"{k}{protocol[k]}" for k in ("seed", "split") if k in protocol]
    return {
        "backbone": backbone_name(model.get("backbone")),
        "frames": f"T{model.get('num_frames')}",
        "tvp": f"tvp-{model.get('tvp')}",
        "motion": "motion" if model.get("motion_loss") else "no-motion",
        "text": f"text-{text.get('source', 'names')}",
        "protocol": "-".join([str(protocol.get("name", "custom")), *setting]),
        "repeat": "-".join(repeat) or "once",
        "dataset": str(dataset.get("name", "videos")),
        "seed": f"seed{cfg.get('seed')}",
    }


# Factors that tell report cells apart; `repeat` and `seed` are what a cell averages over.
CELL_FACTORS = ("dataset", "protocol", "backbone", "frames", "tvp", "motion", "text")


def table_of(cfg) -> str | None:
    """The paper table a run belongs to (its `tableN` tag), if any."""
    return next((str(t) for t in cfg.get("tags") or [] if re.fullmatch(r"table\d+", str(t))), None)


def cell_name(cfg) -> str:
    """The report cell of a run: the runs that differ only by seed or split share it (the W&B group)."""
    factors = ablation_factors(cfg)
    return "_".join([table_of(cfg) or "custom", *(factors[k] for k in CELL_FACTORS)])


def run_name(cfg) -> str:
    return "_".join(ablation_factors(cfg).values())


def tags(cfg) -> list[str]:
    return list(cfg.get("tags") or []) + list(ablation_factors(cfg).values())
