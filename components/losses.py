"""Training losses: short pure functions on tensors that check shapes and name their protocol.

All take metres (or normalised screen units for 2D) and return a scalar in the same unit.
"""

from __future__ import annotations

from torch import Tensor

from components.metrics import mpjpe


def pose_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Protocol #1 (MPJPE) as a loss: mean Euclidean joint error of ``(..., joints, 3)`` poses."""
    return mpjpe(pred, target)


def weighted_mpjpe(pred: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """MPJPE with each joint distance multiplied by a weight before the mean.

    Used for the trajectory, weighted by ``1 / depth`` of the true root so that far (small-looking) subjects
    do not dominate: the image-space error of a depth error shrinks with distance.

    Args:
        pred, target: ``(..., joints, 3)``.
        weights: broadcastable to ``(..., joints)``, e.g. ``(B, T, 1)``.
    """
    if pred.shape != target.shape or pred.shape[-1] != 3:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must match as (..., joints, 3)")
    distances = (pred - target).norm(dim=-1)
    try:
        return (weights * distances).mean()
    except RuntimeError as error:
        raise ValueError(f"weights {tuple(weights.shape)} do not broadcast to {tuple(distances.shape)}") from error


def trajectory_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Root trajectory loss ``(B, T, 1, 3)`` in camera space: MPJPE weighted by the inverse true depth."""
    return weighted_mpjpe(pred, target, 1.0 / target[..., 2])
