"""The demo's measurements: reversal-pair accuracy, the order-blind ceiling, order sensitivity, the summary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ezclip.demo import run

PAIRS = [(0, 1)]


def test_pair_accuracy_chooses_between_the_two_classes_of_a_pair():
    labels = np.array([0, 1, 1, 0, 2])
    probs = np.array([[0.2, 0.1, 0.7], [0.5, 0.4, 0.1], [0.1, 0.3, 0.6], [0.3, 0.3, 0.4], [0.9, 0.0, 0.1]])
    # 0.2 > 0.1 right (class 2 does not count); 0.4 < 0.5 wrong; 0.3 > 0.1 right; a tie is half right; unpaired
    assert run.pair_accuracy({"label": labels, "probs": probs}, PAIRS) == (pytest.approx(2.5 / 4), 4)


def test_order_blind_ceiling_is_half_of_the_paired_videos_plus_the_others():
    labels = np.array([0, 0, 1, 1, 2, 3])
    assert run.order_blind_ceiling(labels, PAIRS) == pytest.approx((2 + 4 / 2) / 6)


def test_order_sensitivity_is_zero_without_temporal_prompts_only(runs):
    trained, zero_shot = runs
    tvp_off = run.order_sensitivity(zero_shot, json.loads((zero_shot / "results.json").read_text()))
    tvp_deep = run.order_sensitivity(trained, json.loads((trained / "results.json").read_text()))
    assert tvp_off < 1e-6  # a mean over frames: float rounding only
    assert tvp_deep > 1e-4  # the prompts are a path between frames from the start


def test_summary_states_chance_the_ceiling_and_the_margin(tmp_path):
    def row(variant, tvp, trained, top1, sensitivity):
        return {"variant": variant, "tvp": tvp, "motion_loss": False if trained else None, "trained": trained,
                "top1": top1, "top5": 0.9, "pair_accuracy": 0.5, "pair_videos": 240, "order_sensitivity": sensitivity,
                "n_videos": 320, "seconds": 60.0}  # fmt: skip

    rows = [row("zero-shot", "off", False, 0.2, 0.0), row("adapters", "off", True, 0.55, 0.0)]
    meta = {"num_classes": 16, "chance_top1": 1 / 16, "order_blind_ceiling": 0.625}
    run.write_summary(rows, tmp_path, meta)
    summary = (tmp_path / "summary.md").read_text()
    assert "| adapters | off | no | 55.0 | 90.0 | 50.0 | 0.00 | 320 | 60 |" in summary
    assert "chance top-1 6.2%" in summary and "order-blind ceiling 62.5%" in summary
    assert "Best adapted variant (adapters): 55.0% top-1, +35.0 points over the frozen backbone zero-shot" in summary
    assert json.loads((tmp_path / "summary.json").read_text())["meta"] == meta
    assert (tmp_path / "summary.png").read_bytes().startswith(b"\x89PNG")
