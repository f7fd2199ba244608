"""Rigid geometry on batched torch tensors: quaternions, Procrustes alignment, bone lengths.

Quaternions are ``(w, x, y, z)`` with the real part first and are assumed to be of unit norm.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from components.errors import InputError
from components.skeleton import Skeleton


def quaternion_rotate(q: Tensor, v: Tensor) -> Tensor:
    """Rotate vectors ``v`` of shape ``(..., 3)`` by unit quaternions ``q`` of shape ``(..., 4)``.

    ``q`` broadcasts against ``v``. The rotation goes through the 3x3 matrix of ``q``: one small matrix product
    instead of elementwise cross products on broadcast copies (an order of magnitude faster on long sequences).
    """
    if q.shape[-1] != 4 or v.shape[-1] != 3:
        raise InputError(f"expected q (..., 4) and v (..., 3), got {tuple(q.shape)} and {tuple(v.shape)}")
    dtype = torch.promote_types(q.dtype, v.dtype)
    rotation = quaternion_to_matrix(q.to(dtype))
    if rotation.ndim == 2:  # one rotation for all vectors: a single matrix multiply
        return v.to(dtype) @ rotation.transpose(-1, -2)
    return (rotation @ v.to(dtype)[..., None]).squeeze(-1)


def quaternion_inverse(q: Tensor) -> Tensor:
    """Inverse of unit quaternions ``(..., 4)``: the conjugate."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """Rotation matrices ``(..., 3, 3)`` of unit quaternions ``(..., 4)`` ``(w, x, y, z)``, for column vectors."""
    w, x, y, z = q.unbind(-1)
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def matrix_to_quaternion(matrix: Tensor) -> Tensor:
    """Unit quaternions ``(..., 4)`` ``(w, x, y, z)`` with ``w >= 0`` of rotation matrices ``(..., 3, 3)``.

    The inverse of :func:`quaternion_to_matrix`. Each quaternion comes from the largest of the four
    candidates ``4 w^2, 4 x^2, 4 y^2, 4 z^2`` (read off the trace and the diagonal), so no division is near zero.
    """
    m = matrix
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    squares = torch.stack(
        [1 + trace, 1 + 2 * m[..., 0, 0] - trace, 1 + 2 * m[..., 1, 1] - trace, 1 + 2 * m[..., 2, 2] - trace], -1
    )
    # candidate k has its k-th component as 2 * sqrt(squares_k) / 4 and the others from off-diagonal sums
    sums = (m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1])
    pairs = (m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1])
    candidates = torch.stack(
        [
            torch.stack([squares[..., 0], sums[0], sums[1], sums[2]], -1),
            torch.stack([sums[0], squares[..., 1], pairs[0], pairs[1]], -1),
            torch.stack([sums[1], pairs[0], squares[..., 2], pairs[2]], -1),
            torch.stack([sums[2], pairs[1], pairs[2], squares[..., 3]], -1),
        ],
        -2,
    )
    best = squares.argmax(-1)
    chosen = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    quaternion = chosen / chosen.norm(dim=-1, keepdim=True)
    return torch.where(quaternion[..., :1] < 0, -quaternion, quaternion)


def look_at(position: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """``(3, 3)`` camera -> world rotation of a camera at ``position`` looking at ``target`` (world z up).

    Its columns are the camera's axes in world coordinates: x right, y down, z forward; ``roll`` (radians)
    turns the image about the optical axis. The world -> camera rotation is its transpose.
    """
    forward = np.asarray(target, dtype=np.float64) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    columns = np.stack([right, np.cross(forward, right), forward], axis=-1)
    c, s = np.cos(roll), np.sin(roll)
    return columns @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def procrustes_align(pred: Tensor, target: Tensor, allow_reflection: bool = False) -> Tensor:
    """Align each pose of ``pred`` to ``target`` by the optimal similarity transform (scale, rotation, shift).

    One alignment per pose, batched by SVD with no Python loop over frames.

    Args:
        pred: ``(..., joints, 3)`` predicted poses.
        target: ``(..., joints, 3)`` reference poses, same shape.
        allow_reflection: when False (the published Protocol #2 definition) the rotation is a proper one
            (det +1): if the best orthogonal map is a reflection, the last singular direction is flipped.

    Returns:
        ``(..., joints, 3)`` aligned ``pred`` in the dtype of ``pred``.
    """
    if pred.shape != target.shape or pred.shape[-1] != 3:
        raise InputError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must match as (..., joints, 3)")
    # float64: the SVD of nearly degenerate poses is unstable in float32 and metrics are not a hot path.
    x, y = target.double(), pred.double()
    mu_x, mu_y = x.mean(dim=-2, keepdim=True), y.mean(dim=-2, keepdim=True)
    x0, y0 = x - mu_x, y - mu_y
    norm_x = torch.linalg.matrix_norm(x0, keepdim=True).clamp_min(1e-12)
    norm_y = torch.linalg.matrix_norm(y0, keepdim=True).clamp_min(1e-12)
    x0, y0 = x0 / norm_x, y0 / norm_y
    u, s, vh = torch.linalg.svd(x0.transpose(-1, -2) @ y0)
    v = vh.transpose(-1, -2)
    if not allow_reflection:
        sign = torch.sign(torch.linalg.det(v @ u.transpose(-1, -2)))
        sign = torch.where(sign == 0, torch.ones_like(sign), sign)
        v = torch.cat([v[..., :2], v[..., 2:] * sign[..., None, None]], dim=-1)
        s = torch.cat([s[..., :2], s[..., 2:] * sign[..., None]], dim=-1)
    rotation = v @ u.transpose(-1, -2)  # applied to row vectors: aligned = a * y @ R + t
    scale = s.sum(dim=-1)[..., None, None] * norm_x / norm_y
    aligned = scale * (y @ rotation) + (mu_x - scale * (mu_y @ rotation))
    return aligned.to(pred.dtype)


def bone_lengths(poses: Tensor, skeleton: Skeleton) -> Tensor:
    """Lengths ``(..., bones)`` of each bone of ``skeleton`` in poses ``(..., joints, 3)``, in the poses' unit."""
    if poses.shape[-2] != skeleton.num_joints:
        raise InputError(f"poses {tuple(poses.shape)} do not have the {skeleton.num_joints} joints of {skeleton.name}")
    child, parent = zip(*skeleton.bones, strict=True)
    return torch.linalg.vector_norm(poses[..., list(child), :] - poses[..., list(parent), :], dim=-1)


def root_relative(poses: Tensor, skeleton: Skeleton) -> Tensor:
    """Subtract the root joint: ``(..., joints, 3)`` -> same shape with the root at the origin."""
    root = skeleton.root
    return poses - poses[..., root : root + 1, :]


def random_rotation_matrices(n: int, generator: torch.Generator | None = None, dtype=torch.float64) -> Tensor:
    """``(n, 3, 3)`` rotations drawn uniformly from SO(3) (normalised Gaussian quaternions)."""
    q = torch.randn(n, 4, generator=generator, dtype=dtype)
    return quaternion_to_matrix(q / torch.linalg.vector_norm(q, dim=-1, keepdim=True))


def flip_horizontal(points, skeleton: Skeleton):
    """Mirror poses left-right: negate x and swap left/right joints by name.

    Args:
        points: ``(..., joints, C)`` numpy array or tensor; x is channel 0 (2D screen or 3D camera space),
            further channels (y, z or a detection score) are kept.
        skeleton: layout of the ``joints`` axis.

    Applying it twice gives the input back.
    """
    if points.shape[-2] != skeleton.num_joints:
        raise InputError(
            f"points {tuple(points.shape)} do not have the {skeleton.num_joints} joints of {skeleton.name}"
        )
    mirrored = points[..., list(skeleton.flip_permutation), :]
    sign = [-1.0] + [1.0] * (points.shape[-1] - 1)
    if isinstance(mirrored, Tensor):
        return mirrored * mirrored.new_tensor(sign)
    return mirrored * np.asarray(sign, dtype=mirrored.dtype)


def box_iou(first: Tensor, second: Tensor) -> Tensor:
    """Intersection over union of boxes ``(..., 4)`` (``x1, y1, x2, y2``) broadcast against each other: one box
    against many, or ``(N, 1, 4)`` against ``(1, M, 4)`` for all pairs. 0 where the union is empty or a box is NaN
    (a person not seen in a frame); an inverted box has no area."""
    top_left = torch.maximum(first[..., :2], second[..., :2])
    bottom_right = torch.minimum(first[..., 2:], second[..., 2:])
    intersection = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    union = box_area(first) + box_area(second) - intersection
    iou = torch.where(union > 0, intersection / union.clamp(min=torch.finfo(union.dtype).tiny), 0.0)
    return torch.nan_to_num(iou, nan=0.0)


def box_area(boxes: Tensor) -> Tensor:
    """Areas ``(...,)`` of boxes ``(..., 4)``; 0 for an inverted box."""
    return (boxes[..., 2:] - boxes[..., :2]).clamp(min=0).prod(dim=-1)
