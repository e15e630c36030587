"""Motion and contrastive losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from ezclip.models import contrastive_loss, motion_loss

# One video, T=3, E=2: per-feature unbiased variance over T is 7/3 for both features.
FRAMES = torch.tensor([[[0.0, 0.0], [1.0, 2.0], [3.0, 3.0]]])
# Central differences with edge padding: (e1-e0)/2, (e2-e0)/2, (e2-e1)/2.
DIFFS = [(0.5, 1.0), (1.5, 1.5), (1.0, 0.5)]


def test_motion_loss_abs_by_hand():
    central = sum(abs(a) + abs(b) for a, b in DIFFS) / 6  # = 1
    expected = 1 / (1 + 7 / 3 + central)
    assert motion_loss(FRAMES, "abs").item() == pytest.approx(expected)  # 3/13
    assert expected == pytest.approx(3 / 13)


def test_motion_loss_l2_by_hand():
    central = sum(math.hypot(a, b) for a, b in DIFFS) / 3
    assert motion_loss(FRAMES, "l2").item() == pytest.approx(1 / (1 + 7 / 3 + central))


def test_motion_loss_two_frames():
    e = torch.tensor([[[0.0], [2.0]]])  # variance (1 + 1) / 1 = 2; both central diffs (2 - 0) / 2 = 1
    assert motion_loss(e).item() == pytest.approx(1 / (1 + 2 + 1))


def test_motion_loss_averages_over_the_batch():
    still = torch.zeros(1, 3, 2)
    both = torch.cat([FRAMES, still])
    # V and C are means over the batch: (7/3 + 0) / 2 and (1 + 0) / 2
    assert motion_loss(both).item() == pytest.approx(1 / (1 + 7 / 6 + 1 / 2))


def test_motion_loss_of_still_and_single_frames_is_defined():
    for e in (torch.ones(2, 5, 4, requires_grad=True), torch.randn(2, 1, 4, requires_grad=True)):
        loss = motion_loss(e)
        assert loss.item() == pytest.approx(1.0)
        loss.backward()
        assert torch.isfinite(e.grad).all()


def test_motion_loss_rejects_unknown_central_difference():
    with pytest.raises(ValueError, match="central_diff"):
        motion_loss(FRAMES, "l1")


def test_ce_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    expected = (-math.log(math.e**2 / (math.e**2 + 2)) - math.log(1 / (math.e + 2))) / 2
    assert contrastive_loss(logits, labels, "ce").item() == pytest.approx(expected)


def _kl(target, logits):
    z = sum(math.exp(v) for v in logits)
    return sum(t * (math.log(t) - (v - math.log(z))) for t, v in zip(target, logits, strict=False) if t > 0)


def test_inbatch_kl_by_hand_distinct_classes():
    logits = torch.tensor([[1.0, 0.0], [0.5, 2.0]])
    labels = torch.tensor([3, 7])
    s = math.exp(10) / (math.exp(10) + 1)  # softmax([10, 0])[0]
    rows = [[s, 1 - s], [1 - s, s]]
    video_to_text = (_kl(rows[0], [1.0, 0.0]) + _kl(rows[1], [0.5, 2.0])) / 2
    text_to_video = (_kl(rows[0], [1.0, 0.5]) + _kl(rows[1], [0.0, 2.0])) / 2
    expected = (video_to_text + text_to_video) / 2
    assert contrastive_loss(logits, labels, "inbatch_kl").item() == pytest.approx(expected, rel=1e-5)


def test_inbatch_kl_same_class_targets_are_uniform():
    logits = torch.tensor([[3.0, 1.0], [0.0, 0.0]])
    labels = torch.tensor([5, 5])
    video_to_text = (_kl([0.5, 0.5], [3.0, 1.0]) + _kl([0.5, 0.5], [0.0, 0.0])) / 2
    text_to_video = (_kl([0.5, 0.5], [3.0, 0.0]) + _kl([0.5, 0.5], [1.0, 0.0])) / 2
    expected = (video_to_text + text_to_video) / 2
    assert contrastive_loss(logits, labels, "inbatch_kl").item() == pytest.approx(expected, rel=1e-5)


def test_contrastive_rejects_bad_shapes_and_kinds():
    with pytest.raises(AssertionError, match="square"):
        contrastive_loss(torch.zeros(2, 3), torch.tensor([0, 1]), "inbatch_kl")
    with pytest.raises(ValueError, match="kind"):
        contrastive_loss(torch.zeros(2, 3), torch.tensor([0, 1]), "nce")


def test_warmup_in_epochs_then_cosine_to_zero():
    from ezclip.lit.optim import warmup_cosine

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = warmup_cosine(optimizer, total_steps=100, warmup_epochs=2, steps_per_epoch=10)
    factors = [schedule.lr_lambdas[0](step) for step in range(100)]
    assert factors[0] == pytest.approx(1 / 20) and factors[19] == pytest.approx(1.0)  # 2 epochs of 10 steps
    assert factors[20] == pytest.approx(1.0) and factors[60] == pytest.approx(0.5) and factors[99] < 0.001
    by_fraction = warmup_cosine(optimizer, total_steps=100, warmup_fraction=0.1)
    assert by_fraction.lr_lambdas[0](9) == pytest.approx(1.0) and by_fraction.lr_lambdas[0](8) < 1.0
