"""Training losses: short pure functions on tensors that check shapes and name their protocol.

All take metres (or normalised screen units for 2D) and return a scalar in the same unit.
"""

from __future__ import annotations

from torch import Tensor

from components.errors import InputError
from components.geometry import bone_lengths
from components.metrics import mpjpe, n_mpjpe
from components.skeleton import Skeleton


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
        raise InputError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must match as (..., joints, 3)")
    distances = (pred - target).norm(dim=-1)
    try:
        return (weights * distances).mean()
    except RuntimeError as error:
        raise InputError(f"weights {tuple(weights.shape)} do not broadcast to {tuple(distances.shape)}") from error


def velocity_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean per-joint error of the frame-to-frame motion of ``(B, T, J, 3)`` poses (metres per frame): the
    temporal-consistency term of sequence-to-sequence recipes. 0 for single-frame outputs (``T = 1``)."""
    if pred.shape[1] < 2:
        return pred.new_zeros(())
    return pose_loss(pred.diff(dim=1), target.diff(dim=1))


def scaled_pose_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Protocol #3 (N-MPJPE) as a loss: MPJPE after each predicted pose's least-squares scale, the scale-aligned
    term of sequence-to-sequence recipes (it rewards the right shape even where the size is off)."""
    return n_mpjpe(pred, target)


def trajectory_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Root trajectory loss ``(B, T, 1, 3)`` in camera space: MPJPE weighted by the inverse true depth."""
    return weighted_mpjpe(pred, target, 1.0 / target[..., 2])


def reprojection_loss(projected: Tensor, keypoints_2d: Tensor) -> Tensor:
    """Back-projection loss: mean Euclidean distance between projected and observed 2D joints.

    Args:
        projected, keypoints_2d: ``(..., joints, 2)`` in the same (normalised screen) units.
    """
    if projected.shape != keypoints_2d.shape or projected.shape[-1] != 2:
        raise InputError(
            f"projected {tuple(projected.shape)} and keypoints {tuple(keypoints_2d.shape)} "
            "must match as (..., joints, 2)"
        )
    return (projected - keypoints_2d).norm(dim=-1).mean()


def bone_length_loss(labeled: Tensor, unlabeled: Tensor, skeleton: Skeleton) -> Tensor:
    """Bone-length prior: mean over bones of |mean bone length of one batch - that of the other|.

    Both are *predicted* poses, so the prior asks the unlabeled predictions to keep the proportions the labeled
    ones learn from 3D supervision.

    Args:
        labeled, unlabeled: ``(B, T, joints, 3)`` poses in metres (batch sizes may differ).
    """
    if labeled.shape[-2:] != unlabeled.shape[-2:]:
        raise InputError(f"labeled {tuple(labeled.shape)} and unlabeled {tuple(unlabeled.shape)} joint shapes differ")
    mean_labeled = bone_lengths(labeled, skeleton).flatten(0, -2).mean(dim=0)
    mean_unlabeled = bone_lengths(unlabeled, skeleton).flatten(0, -2).mean(dim=0)
    return (mean_labeled - mean_unlabeled).abs().mean()
