"""EZ-CLIP's training losses (docs/design.md §4)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

# ActionCLIP-style soft targets: softmax(10 * same-class matrix) per row.
_INBATCH_TARGET_SHARPNESS = 10.0


def motion_loss(frame_embeddings: torch.Tensor, central_diff: Literal["abs", "l2"] = "abs") -> torch.Tensor:
    """1 / (1 + V + C) on unnormalized per-frame embeddings e of shape (B, T, E).

    V: unbiased variance over T, averaged over features and batch.
    C: central difference (e[t+1] - e[t-1]) / 2 with the ends padded by repeating the edge frame;
       `abs` (authors' code) averages its elementwise absolute value over time, features, batch;
       `l2` (the paper's text) takes its L2 norm over features, averaged over time and batch.
    With T = 1 there is no motion: V = C = 0 and the loss is 1.
    """
    assert frame_embeddings.ndim == 3, f"expected (B, T, E) frame embeddings, got {tuple(frame_embeddings.shape)}"
    B, T, E = frame_embeddings.shape
    e = frame_embeddings.float()
    if T == 1:
        return e.new_ones(()) + 0.0 * e.sum()  # keeps the graph connected
    variance = e.var(dim=1, unbiased=True).mean()
    padded = torch.cat([e[:, :1], e, e[:, -1:]], dim=1)  # (B, T+2, E)
    diff = (padded[:, 2:] - padded[:, :-2]) / 2  # (B, T, E)
    if central_diff == "abs":
        central = diff.abs().mean()
    elif central_diff == "l2":
        central = diff.norm(dim=-1).mean()
    else:
        raise ValueError(f"central_diff must be 'abs' or 'l2', got {central_diff!r}")
    return 1.0 / (1.0 + variance + central)


def contrastive_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    kind: Literal["ce", "inbatch_kl"] = "ce",
) -> torch.Tensor:
    """Video-text contrastive loss.

    `ce` (paper eq. 1): logits (B, C) over all classes of the label set, labels (B,) class ids.
    `inbatch_kl` (authors' code): logits (B, B) between each video and the class text of every
    video in the batch, labels (B,) the videos' classes. Target = row-wise softmax(10 * G), G the
    same-class matrix; KL(target || softmax(logits)) averaged over rows, for the logits and their
    transpose, and the two averaged.
    """
    assert logits.ndim == 2 and labels.ndim == 1 and logits.shape[0] == labels.shape[0], (
        f"expected logits (B, N) and labels (B,), got {tuple(logits.shape)} and {tuple(labels.shape)}"
    )
    logits = logits.float()
    if kind == "ce":
        return F.cross_entropy(logits, labels)
    if kind == "inbatch_kl":
        assert logits.shape[0] == logits.shape[1], f"inbatch_kl needs square (B, B) logits, got {tuple(logits.shape)}"
        same_class = (labels[:, None] == labels[None, :]).float()  # (B, B)
        target = F.softmax(_INBATCH_TARGET_SHARPNESS * same_class, dim=1)
        video_to_text = F.kl_div(F.log_softmax(logits, dim=1), target, reduction="batchmean")
        text_to_video = F.kl_div(F.log_softmax(logits.t(), dim=1), target, reduction="batchmean")
        return (video_to_text + text_to_video) / 2
    raise ValueError(f"contrastive kind must be 'ce' or 'inbatch_kl', got {kind!r}")
