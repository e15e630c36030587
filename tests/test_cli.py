"""The `ezclip` command line."""

from __future__ import annotations

import json
import subprocess
import sys

from ezclip.cli import main


def test_info_reproduces_the_paper_counts_for_vit_b16(capsys):
    assert main(["info", "--backbone", "ViT-B-16", "--frames", "8"]) == 0
    info = json.loads(capsys.readouterr().out)
    params = info["parameters"]
    assert (params["trainable"], params["prompts"], params["vision_adapters"], params["text_adapters"]) == (
        5_204_736,
        73_728,
        3_550_464,
        1_580_544,
    )
    flops = info["flops_per_view"]
    # DESIGN.md section 8: ~141 GMACs full for 8 frames of plain ViT-B/16 (+ adapters here), ~96 linear/conv only
    assert 140 < flops["full_gmacs"] < 150
    assert 94 < flops["linear_conv_gmacs"] < 98
    assert flops["full_gflops"] == 2 * flops["full_gmacs"]


def test_info_switches_change_the_answer(capsys):
    main(["info", "--backbone", "ViT-B-32", "--frames", "16", "--tvp", "first", "--no-adapters"])
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"]["trainable"] == info["parameters"]["prompts"] == 16 * 768


def test_console_script_runs_as_a_program():
    result = subprocess.run(
        [sys.executable, "-m", "ezclip.cli", "info", "--backbone", "ViT-B-32", "--tvp", "off"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["parameters"]["prompts"] == 0


def test_unknown_backbone_is_a_clear_error():
    result = subprocess.run(
        [sys.executable, "-m", "ezclip.cli", "info", "--backbone", "ViT-Q-99"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "unknown backbone 'ViT-Q-99'" in result.stderr
