"""Metric learning on synchronized multi-view windows: positive/negative pairs from time, and the losses.

Pairs come from two labels per window, with no camera parameters (the views are uncalibrated):

- **positives** of window ``i``: the other windows of the same recording at the same frame (other cameras, one
  instant: the same 3D pose);
- **negatives**: windows of other recordings, and windows of the same recording more than ``tau`` frames away;
- windows of the same recording within ``tau`` frames (but not the same instant) are neither: a pose a few frames
  apart is nearly the same pose, so calling it negative would fight the positives.

Embeddings are L2-normalised, so Euclidean distances lie in ``[0, 2]`` and ``margin`` is on that scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from components.errors import InputError


def multiview_pairs(recording: Tensor, frame: Tensor, tau: int) -> tuple[Tensor, Tensor]:
    """Positive and negative masks of a batch of windows.

    Args:
        recording: ``(B,)`` int index of each window's synchronized recording.
        frame: ``(B,)`` int frame of each window within its recording.
        tau: frames within which two instants of one recording are neither positive nor negative.

    Returns:
        ``(positive, negative)``, two ``(B, B)`` bool masks; the diagonal is in neither.
    """
    if recording.shape != frame.shape or recording.dim() != 1:
        raise InputError(f"recording {tuple(recording.shape)} and frame {tuple(frame.shape)} must both be (B,)")
    if tau < 0:
        raise InputError(f"tau must be >= 0 frames, got {tau}")
    same_recording = recording[:, None] == recording[None, :]
    gap = (frame[:, None] - frame[None, :]).abs()
    itself = torch.eye(len(recording), dtype=torch.bool, device=recording.device)
    positive = same_recording & (gap == 0) & ~itself
    negative = ~same_recording | (gap > tau)
    return positive, negative


def _check(embeddings: Tensor, positive: Tensor, negative: Tensor) -> None:
    count = embeddings.shape[0]
    if embeddings.dim() != 2 or positive.shape != (count, count) or negative.shape != (count, count):
        raise InputError(
            f"embeddings {tuple(embeddings.shape)} must be (B, D) with (B, B) masks, got positive "
            f"{tuple(positive.shape)} and negative {tuple(negative.shape)}"
        )


def batch_hard_triplet_loss(embeddings: Tensor, positive: Tensor, negative: Tensor, margin: float = 0.2) -> Tensor:
    """Triplet loss with the hardest positive and the hardest negative of each anchor (batch-hard mining).

    ``mean_i relu(max_{p in P(i)} d(i, p) - min_{n in N(i)} d(i, n) + margin)`` over anchors that have at least one
    positive and one negative; 0 when the positives coincide and every negative is farther than ``margin``.

    Args:
        embeddings: ``(B, D)``. positive, negative: ``(B, B)`` bool masks (see :func:`multiview_pairs`).
        margin: in embedding distance units.
    """
    _check(embeddings, positive, negative)
    distance = torch.cdist(embeddings, embeddings)
    hardest_positive = distance.masked_fill(~positive, float("-inf")).amax(dim=1)
    hardest_negative = distance.masked_fill(~negative, float("inf")).amin(dim=1)
    anchors = positive.any(dim=1) & negative.any(dim=1)
    if not anchors.any():
        return embeddings.sum() * 0.0  # keeps the graph (and DDP's gradient hooks) connected
    return F.relu(hardest_positive[anchors] - hardest_negative[anchors] + margin).mean()


def info_nce_loss(embeddings: Tensor, positive: Tensor, negative: Tensor, temperature: float = 0.1) -> Tensor:
    """Contrastive (InfoNCE) loss: each positive pair against all negatives of its anchor.

    For anchor ``i`` and positive ``p``: ``-log(e^{s_ip / T} / (e^{s_ip / T} + sum_{n in N(i)} e^{s_in / T}))`` with
    cosine similarities ``s``, averaged over all positive pairs.

    Args:
        embeddings: ``(B, D)`` (normalised here). positive, negative: ``(B, B)`` bool masks.
        temperature: softmax temperature ``T``.
    """
    _check(embeddings, positive, negative)
    if temperature <= 0:
        raise InputError(f"temperature must be > 0, got {temperature}")
    unit = F.normalize(embeddings, dim=-1)
    logits = unit @ unit.T / temperature
    negatives = torch.logsumexp(logits.masked_fill(~negative, float("-inf")), dim=1, keepdim=True)
    # log(e^a + e^b) for each positive logit a against the anchor's negative log-sum b
    denominator = torch.logaddexp(logits, negatives)
    pairs = positive & negative.any(dim=1, keepdim=True)
    if not pairs.any():
        return embeddings.sum() * 0.0
    return (denominator - logits)[pairs].mean()
