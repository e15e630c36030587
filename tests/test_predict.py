"""`ezclip predict` on real mp4 files, an unreadable file, and each model source."""

from __future__ import annotations

import json

import torch

from data_helpers import make_video
from ezclip.cli import main
from ezclip.models import build_ezclip, save_checkpoint
from ezclip.models.backbone import create_clip
from helpers import TINY, TINY_FRAMES, randomize_trainables


def trained_checkpoint(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "tiny_clip.pt"
    torch.save(create_clip(TINY).state_dict(), weights)
    model = build_ezclip(TINY, pretrained=str(weights), num_frames=TINY_FRAMES)
    randomize_trainables(model)
    return save_checkpoint(model, tmp_path / "model.pt")


def test_predict_reports_topk_and_names_the_unreadable_video(tmp_path, capsys):
    good = make_video(tmp_path / "good.mp4", num_frames=20, width=48, height=40)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00garbage" * 50)
    ckpt = trained_checkpoint(tmp_path)
    code = main(
        [
            "predict",
            str(good),
            str(bad),
            str(good),
            "--labels",
            "juggling;surfing;cooking",
            "--ckpt",
            str(ckpt),
            "--topk",
            "2",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    results = json.loads(captured.out)
    assert [r["video"] for r in results] == [str(good), str(bad), str(good)]
    assert len(results[0]["top"]) == 2 and results[0]["top"] == results[2]["top"]
    probs = [p for _, p in results[0]["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
    error_lines = [line for line in captured.err.splitlines() if "error" in line]
    assert len(error_lines) == 1 and str(bad) in error_lines[0]
    assert "Traceback" not in captured.err


def test_predict_with_a_plain_backbone_and_a_labels_file(tmp_path, capsys):
    good = make_video(tmp_path / "clip.mp4", num_frames=12, width=40, height=40)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,name\n0,waving\n1,clapping\n")
    code = main(["predict", str(good), "--labels-file", str(labels), "--backbone", TINY, "--frames", "4"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"{good}: ") and "waving" in out and "clapping" in out


def test_predict_needs_two_labels(tmp_path, capsys):
    good = make_video(tmp_path / "clip.mp4", num_frames=12)
    assert main(["predict", str(good), "--labels", "only one", "--backbone", TINY]) == 2
    assert "at least 2 class names" in capsys.readouterr().err
