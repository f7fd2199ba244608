"""Multi-view pairs and metric losses: mining on a constructed sequence, zero and known values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from components.metric_learning import batch_hard_triplet_loss, info_nce_loss, multiview_pairs

TAU = 5


def _constructed_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Recording 0 at frames 0, 3, 20 and recording 1 at frame 0, each seen by 3 cameras (instant-major)."""
    instants = [(0, 0), (0, 3), (0, 20), (1, 0)]
    recording = torch.tensor([r for r, _ in instants for _ in range(3)])
    frame = torch.tensor([f for _, f in instants for _ in range(3)])
    camera = torch.arange(3).repeat(len(instants))
    return recording, frame, camera


def test_positives_are_the_other_views_of_the_same_instant_and_negatives_lie_beyond_tau() -> None:
    recording, frame, camera = _constructed_batch()
    positive, negative = multiview_pairs(recording, frame, TAU)
    same_instant = (recording[:, None] == recording) & (frame[:, None] == frame)
    assert torch.equal(positive, same_instant & (camera[:, None] != camera))
    same_recording = recording[:, None] == recording
    assert not (negative & same_recording & ((frame[:, None] - frame).abs() <= TAU)).any()
    # anchor 0 (recording 0, frame 0): positives its 2 other views; frame 3 is within tau: neither; frame 20 and
    # recording 1 are negatives
    assert positive[0].nonzero().flatten().tolist() == [1, 2]
    assert negative[0].nonzero().flatten().tolist() == [6, 7, 8, 9, 10, 11]
    assert not positive.diagonal().any() and not negative.diagonal().any()


def _embeddings(recording: torch.Tensor, frame: torch.Tensor, spread: float) -> torch.Tensor:
    """Unit vectors: one direction per instant (same for its views), instants ``spread`` radians apart in a plane."""
    instant = torch.unique(recording * 1000 + frame, return_inverse=True)[1].double()
    angle = instant * spread
    return torch.stack([angle.cos(), angle.sin()], dim=-1)


def test_triplet_loss_is_zero_when_positives_coincide_and_negatives_are_beyond_the_margin() -> None:
    recording, frame, _ = _constructed_batch()
    positive, negative = multiview_pairs(recording, frame, TAU)
    far = _embeddings(recording, frame, spread=math.pi / 4)  # neighbours 2 sin(pi / 8) = 0.765 apart
    assert batch_hard_triplet_loss(far, positive, negative, margin=0.5) == 0
    # a margin beyond the nearest negative gives exactly margin - that distance for the anchors that see it
    near = _embeddings(recording, frame, spread=0.1)
    loss = batch_hard_triplet_loss(near, positive, negative, margin=0.5)
    chord = lambda k: 2 * math.sin(0.1 * k / 2)  # noqa: E731  distance of instants k steps apart
    # nearest negative per instant (instants 0..3 = (0,0), (0,3), (0,20), (1,0)): 0 -> 2 steps, 1 -> 1 (frame 20 is
    # 17 frames away), 2 -> 1, 3 -> 1; three anchors each
    expected = sum(3 * (0.5 - chord(k)) for k in (2, 1, 1, 1)) / 12
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_triplet_loss_uses_the_hardest_positive() -> None:
    recording, frame = torch.tensor([0, 0, 1]), torch.tensor([0, 0, 0])
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    positive, negative = multiview_pairs(recording, frame, TAU)
    # anchor 0: d_pos = sqrt(2), d_neg = 2; anchor 1: d_pos = sqrt(2), d_neg = sqrt(2); anchor 2 has no positive
    expected = (max(0, math.sqrt(2) - 2 + 1) + 1) / 2
    assert batch_hard_triplet_loss(embeddings, positive, negative, margin=1.0).item() == pytest.approx(expected)


def test_info_nce_known_value_and_gradient() -> None:
    recording, frame = torch.tensor([0, 0, 1]), torch.tensor([0, 0, 0])
    embeddings = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    positive, negative = multiview_pairs(recording, frame, TAU)
    loss = info_nce_loss(embeddings, positive, negative, temperature=0.5)
    unit = F.normalize(embeddings.detach(), dim=-1)
    s = unit @ unit.T / 0.5
    pair = lambda a, p, n: -math.log(math.exp(s[a, p]) / (math.exp(s[a, p]) + math.exp(s[a, n])))  # noqa: E731
    assert loss.item() == pytest.approx((pair(0, 1, 2) + pair(1, 0, 2)) / 2, rel=1e-9)
    loss.backward()
    assert embeddings.grad.abs().sum() > 0


def test_no_pairs_give_a_connected_zero_and_bad_shapes_fail() -> None:
    embeddings = torch.randn(3, 4, requires_grad=True)
    positive, negative = multiview_pairs(torch.tensor([0, 1, 2]), torch.tensor([0, 0, 0]), TAU)
    for loss_fn in (batch_hard_triplet_loss, info_nce_loss):
        loss = loss_fn(embeddings, positive, negative)
        assert loss.item() == 0 and loss.requires_grad
    with pytest.raises(ValueError, match="must both be"):
        multiview_pairs(torch.zeros(3), torch.zeros(4), TAU)
    with pytest.raises(ValueError, match=r"\(B, B\) masks"):
        batch_hard_triplet_loss(embeddings, positive[:2], negative)
