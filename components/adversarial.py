"""Geometry and losses of adversarial lifting from 2D poses alone (the TIPS regime).

A generator sees a root-centred 2D pose and predicts one depth per joint; the 3D pose is the input ``(x, y)``
with that depth. Without 3D labels the only signals are:

- **adversarial**: the 3D pose, rotated to a random view and projected, must look like a real 2D pose to a
  discriminator (a correct 3D pose still looks plausible from another viewpoint);
- **cycle**: lifting that rotated view again, undoing the rotation and projecting must give the input 2D back;
- **90-degree consistency**: the side, opposite-side and back views of the predicted pose, built directly from its
  coordinates, must re-lift to the depths the pose implies for them.

Frames and units: camera space, x right, y down, z forward (depth); poses are root-relative (root at the origin),
so rotations turn the pose about its root. Units are those of :func:`normalize_2d` (each pose's largest absolute
root-centred 2D coordinate is 1), not metres: from 2D alone the scale of a person is unknown.

Every function takes a batch ``(B, J, C)`` of single frames; a lifter is passed as a callable
``lift_depths: (B, J, 2) -> (B, J)`` so that the same losses serve part-wise generators, a solo generator and a
distilled student.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from components.errors import InputError

DepthLifter = Callable[[Tensor], Tensor]
"""``(B, J, 2)`` normalised 2D poses -> ``(B, J)`` depths in the same units."""

ProjectionMode = Literal["orthographic", "perspective"]
AdversarialMode = Literal["bce", "lsgan"]


def _check_points(points: Tensor, channels: int, name: str) -> None:
    if points.dim() < 2 or points.shape[-1] != channels:
        raise InputError(f"{name} must have shape (..., joints, {channels}), got {tuple(points.shape)}")


def _check_rotation(points: Tensor, rotation: Tensor) -> None:
    _check_points(points, 3, "points")
    if rotation.shape[-2:] != (3, 3) or rotation.shape[:-2] != points.shape[:-2]:
        raise InputError(
            f"rotation must have shape (B, 3, 3) matching points (B, J, 3), "
            f"got {tuple(rotation.shape)} and {tuple(points.shape)}"
        )


HEAD_ROOT_DISTANCE = 0.1
"""With ``scale="head_root"``, the head-root distance after normalisation: a person at depth 10 (the perspective
``depth_offset``) then has roughly the proportions of a real one."""


def normalize_2d(
    keypoints: Tensor,
    root: int,
    eps: float = 1e-8,
    scale: Literal["max_abs", "head_root"] = "max_abs",
    head: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Centre each 2D pose on its root and divide by a per-pose scale.

    Image position and person size carry no depth information without a calibrated camera, so they are removed.
    ``max_abs`` (default) divides by the largest absolute coordinate: the result lies in ``[-1, 1]``, the range of
    the generators' tanh output, so depths and 2D share one unit. ``head_root`` makes the head-root distance
    :data:`HEAD_ROOT_DISTANCE`, for perspective projection with a depth offset of 10.

    Args:
        keypoints: ``(..., J, 2)`` 2D poses in any unit.
        root: index of the root joint (``skeleton.root``). head: index of the head joint (``head_root`` only).
        eps: lower bound of the scale, so a degenerate pose (all joints on the root) gives zeros, not NaN.

    Returns:
        ``normalised (..., J, 2)`` with the root at 0, and ``scale (..., 1, 1)`` with
        ``keypoints = normalised * scale + keypoints[..., root, :]``.
    """
    _check_points(keypoints, 2, "keypoints")
    centred = keypoints - keypoints[..., root : root + 1, :]
    if scale == "max_abs":
        size = centred.abs().amax(dim=(-2, -1), keepdim=True)
    elif scale == "head_root":
        if head is None:
            raise InputError("scale='head_root' needs the head joint's index")
        size = centred[..., head : head + 1, :].norm(dim=-1, keepdim=True) / HEAD_ROOT_DISTANCE
    else:
        raise InputError(f"scale must be 'max_abs' or 'head_root', got {scale!r}")
    size = size.clamp_min(eps)
    return centred / size, size


def rotation_matrices(azimuth: Tensor, elevation: Tensor) -> Tensor:
    """Rotations ``(B, 3, 3)`` for column vectors: ``azimuth`` about the vertical y axis, then ``elevation`` about x.

    ``R = R_x(elevation) @ R_y(azimuth)``. Azimuth 90 degrees maps ``(x, y, z)`` to ``(z, y, -x)`` (the side view);
    positive elevation maps y (down) towards +z. Recover the angles with ``atan2(R[0, 2], R[0, 0])`` and
    ``atan2(R[2, 1], R[1, 1])``.

    Args:
        azimuth, elevation: ``(B,)`` angles in radians.
    """
    ca, sa, ce, se = azimuth.cos(), azimuth.sin(), elevation.cos(), elevation.sin()
    zero = torch.zeros_like(ca)
    rows = (
        (ca, zero, sa),
        (se * sa, ce, -se * ca),
        (-ce * sa, se, ce * ca),
    )
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def random_rotations(
    batch: int,
    azimuth_degrees: float = 160.0,
    elevation_degrees: float = 10.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    camera_pitch_degrees: float = 0.0,
) -> Tensor:
    """``(B, 3, 3)`` random views, one per sample, for the adversarial and cycle losses.

    Azimuth and elevation are drawn uniformly in ``[-azimuth_degrees, +azimuth_degrees]`` and
    ``[-elevation_degrees, +elevation_degrees]`` (TIPS: 160 and 10 degrees: people are seen from all around but
    from roughly the same height) and combined by :func:`rotation_matrices`.

    With ``camera_pitch_degrees`` ``p`` (how far the cameras look down), the views turn the pose about the
    world's vertical instead of the camera's y axis: ``T R T^T`` with ``T = rotation_matrices(0, p)``, the pitch
    that takes an upright person to the camera frame. Turned about the camera's y axis, a person filmed from
    above is seen from below after half a turn, a view no real camera of the rig gives, which a discriminator
    learns to reject even for true poses. The tilt also breaks the symmetry that makes a depth reflection
    invisible (see :func:`chirality_votes`): a reflected pose leans the wrong way.

    Args:
        batch: ``B``, rotations to draw.
        azimuth_degrees, elevation_degrees: half-widths of the angle ranges, in degrees.
        generator: optional random generator; it must live on ``device``.
        device, dtype: of the result (default: the CPU and the default float dtype).
        camera_pitch_degrees: the cameras' downward pitch (0: the published TIPS views; Human3.6M's cameras:
            12.7 on average, from their extrinsics).
    """
    dtype = dtype or torch.get_default_dtype()
    half_widths = torch.tensor([math.radians(azimuth_degrees), math.radians(elevation_degrees)], dtype=dtype)
    uniform = torch.rand(batch, 2, generator=generator, device=device, dtype=dtype)
    angles = (2.0 * uniform - 1.0) * half_widths.to(uniform.device)
    rotations = rotation_matrices(*angles.unbind(-1))
    if camera_pitch_degrees == 0.0:
        return rotations
    no_azimuth = torch.zeros(1, dtype=dtype, device=uniform.device)
    tilt = rotation_matrices(no_azimuth, no_azimuth + math.radians(camera_pitch_degrees))[0]
    return tilt @ rotations @ tilt.T


def rotate(points: Tensor, rotation: Tensor) -> Tensor:
    """Turn root-relative poses ``(B, J, 3)`` by ``rotation (B, 3, 3)`` about the root (the origin)."""
    _check_rotation(points, rotation)
    return points @ rotation.transpose(-1, -2)


def inverse_rotate(points: Tensor, rotation: Tensor) -> Tensor:
    """Undo :func:`rotate`: ``(B, J, 3)`` poses turned by the transpose (inverse) of ``rotation (B, 3, 3)``."""
    _check_rotation(points, rotation)
    return points @ rotation


def _perspective_depth(z: Tensor, depth_offset: float) -> Tensor:
    """Camera distance ``z + depth_offset``, clamped to >= 1 so joints never reach or pass the camera plane."""
    return (z + depth_offset).clamp_min(1.0)


def project(points: Tensor, mode: ProjectionMode = "orthographic", depth_offset: float = 10.0) -> Tensor:
    """Project root-relative poses ``(B, J, 3)`` to 2D ``(B, J, 2)``.

    - ``orthographic``: drop z (TIPS; the normalised 2D carries no perspective to undo).
    - ``perspective``: the root is placed ``depth_offset`` in front of a unit-focal camera, i.e.
      ``(x, y) * depth_offset / max(z + depth_offset, 1)``. Multiplying back by ``depth_offset`` keeps the root's
      scale: a joint at depth 0 projects to its own ``(x, y)``, exactly as the orthographic projection, so both
      modes share the normalised units. The clamp stops joints predicted behind the camera from flipping.
    """
    _check_points(points, 3, "points")
    if mode == "orthographic":
        return points[..., :2]
    if mode == "perspective":
        return points[..., :2] * (depth_offset / _perspective_depth(points[..., 2:], depth_offset))
    raise InputError(f"projection mode must be 'orthographic' or 'perspective', got {mode!r}")


def lift_pose(
    keypoints: Tensor, depths: Tensor, mode: ProjectionMode = "orthographic", depth_offset: float = 10.0
) -> Tensor:
    """A 3D pose ``(B, J, 3)`` from 2D ``(B, J, 2)`` and predicted depths ``(B, J)``: the inverse of :func:`project`.

    Orthographic: the concatenation ``(x, y, depth)``. Perspective: ``(x, y)`` are scaled back out along their rays,
    ``(x, y) * max(depth + depth_offset, 1) / depth_offset``, so that ``project(lift_pose(p, d)) == p``.
    """
    _check_points(keypoints, 2, "keypoints")
    if depths.shape != keypoints.shape[:-1]:
        raise InputError(f"depths {tuple(depths.shape)} must match keypoints {tuple(keypoints.shape)} as (B, J)")
    z = depths[..., None]
    if mode == "perspective":
        keypoints = keypoints * (_perspective_depth(z, depth_offset) / depth_offset)
    elif mode != "orthographic":
        raise InputError(f"projection mode must be 'orthographic' or 'perspective', got {mode!r}")
    return torch.cat([keypoints, z], dim=-1)


def joint_mse(pred: Tensor, target: Tensor, joints: Sequence[int] | None = None) -> Tensor:
    """Mean squared error over batch, the given joints and channels of ``(B, J, C)`` tensors (all joints if None)."""
    if pred.shape != target.shape or pred.dim() < 2:
        raise InputError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must match as (B, J, C)")
    if joints is not None:
        pred, target = pred[..., list(joints), :], target[..., list(joints), :]
    return (pred - target).square().mean()


class CycleViews(NamedTuple):
    """The two 2D views of one reprojection cycle, both ``(B, J, 2)``."""

    rotated_2d: Tensor
    """The predicted pose seen from the random view: the discriminator's fake sample."""
    cycled_2d: Tensor
    """The rotated view lifted again and turned back: should equal the input 2D."""


def cycle_views(
    lift_depths: DepthLifter,
    pose_3d: Tensor,
    rotation: Tensor,
    mode: ProjectionMode = "orthographic",
    depth_offset: float = 10.0,
) -> CycleViews:
    """Rotate -> project -> lift again -> inverse-rotate -> project.

    Compute it once per step: ``rotated_2d`` is the fake sample for the discriminator and ``cycled_2d`` gives the
    cycle loss of every joint subset through :func:`joint_mse` (rotation and projection act joint by joint, so the
    loss on one part's joints depends only on the generator of that part).

    Args:
        lift_depths: ``(B, J, 2) -> (B, J)`` the generator(s) being trained.
        pose_3d: ``(B, J, 3)`` root-relative predicted poses, ``lift_pose(keypoints_2d, lift_depths(keypoints_2d))``.
        rotation: ``(B, 3, 3)``, e.g. from :func:`random_rotations`.
        mode, depth_offset: as :func:`project`.
    """
    rotated_2d = project(rotate(pose_3d, rotation), mode, depth_offset)
    relifted = lift_pose(rotated_2d, lift_depths(rotated_2d), mode, depth_offset)
    cycled_2d = project(inverse_rotate(relifted, rotation), mode, depth_offset)
    return CycleViews(rotated_2d, cycled_2d)


def cycle_loss(
    lift_depths: DepthLifter,
    keypoints_2d: Tensor,
    pose_3d: Tensor,
    rotation: Tensor,
    joints: Sequence[int] | None = None,
    mode: ProjectionMode = "orthographic",
    depth_offset: float = 10.0,
) -> tuple[Tensor, Tensor]:
    """The 2D reprojection-cycle loss on one joint subset, and the fake sample it passes through.

    Args:
        lift_depths, pose_3d, rotation, mode, depth_offset: as :func:`cycle_views`.
        keypoints_2d: ``(B, J, 2)`` the normalised input 2D that ``pose_3d`` was lifted from.
        joints: indices of the joints the loss covers (a part's joints), all if None.

    Returns:
        The scalar MSE between ``keypoints_2d`` and the cycled 2D on ``joints``, and the rotated 2D ``(B, J, 2)``
        (the discriminator's fake sample). For several parts call :func:`cycle_views` once and :func:`joint_mse`
        per part instead.
    """
    views = cycle_views(lift_depths, pose_3d, rotation, mode, depth_offset)
    return joint_mse(views.cycled_2d, keypoints_2d, joints), views.rotated_2d


def consistency_loss(lift_depths: DepthLifter, pose_3d: Tensor, joints: Sequence[int] | None = None) -> Tensor:
    """The three 90-degree consistency terms, MSE each, summed.

    A pose ``(x, y, z)`` seen from its side is the 2D ``(z, y)`` at depth ``-x`` (azimuth +90 degrees), from the
    other side ``(-z, y)`` at depth ``+x`` (-90 degrees) and from the back ``(-x, y)`` at depth ``-z`` (180 degrees).
    Lifting those views must give those depths. The views are exact rotations, so no projection mode is involved.
    The three views are lifted in one call (one ``(3B, J, 2)`` batch).

    Gradients reach both the re-lifted depths and ``pose_3d``; pass ``pose_3d.detach()`` to train only the
    second lifting.

    Args:
        lift_depths: ``(B, J, 2) -> (B, J)``.
        pose_3d: ``(B, J, 3)`` root-relative predicted poses.
        joints: indices of the joints the loss covers, all if None.

    Returns:
        Scalar: ``MSE(side) + MSE(opposite side) + MSE(back)``.
    """
    _check_points(pose_3d, 3, "pose_3d")
    x, y, z = pose_3d.unbind(-1)
    horizontal = torch.stack([z, -z, -x])  # (3, B, J): what each view sees as x
    expected = torch.stack([-x, x, -z])  # (3, B, J): the depth each view implies
    views = torch.stack([horizontal, y.expand_as(horizontal)], dim=-1)
    predicted = lift_depths(views.flatten(0, 1)).reshape(expected.shape)
    if joints is not None:
        predicted, expected = predicted[..., list(joints)], expected[..., list(joints)]
    return (predicted - expected).square().mean(dim=(1, 2)).sum()


def _criterion(logits: Tensor, targets: Tensor, mode: AdversarialMode) -> Tensor:
    """Binary cross-entropy on logits (``bce``) or least squares on raw outputs (``lsgan``), mean over samples."""
    if mode == "bce":
        return F.binary_cross_entropy_with_logits(logits, targets)
    if mode == "lsgan":
        return F.mse_loss(logits, targets)
    raise InputError(f"adversarial mode must be 'bce' or 'lsgan', got {mode!r}")


def _targets(
    logits: Tensor, label: float, swapped: float, flip_probability: float, generator: torch.Generator | None
) -> Tensor:
    """``label`` per sample, replaced by ``swapped`` with probability ``flip_probability`` each (drawn only if > 0)."""
    targets = torch.full_like(logits, label)
    if flip_probability > 0:
        flip = torch.rand(logits.shape, generator=generator, device=logits.device) < flip_probability
        targets = targets.masked_fill(flip, swapped)
    return targets


def discriminator_loss(
    real_logits: Tensor,
    fake_logits: Tensor,
    mode: AdversarialMode = "bce",
    real_label: float = 0.8,
    flip_probability: float = 0.1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The discriminator's loss: ``(criterion(real) + criterion(fake)) / 2``.

    One-sided label smoothing: real 2D poses are pushed towards ``real_label`` (0.8), fakes towards 0, so the
    discriminator is never rewarded for certainty and keeps giving the generators gradients. Noisy labels: each
    sample's target is swapped (real -> 0, fake -> ``real_label``) with probability ``flip_probability``,
    independently per sample of each batch, which slows a discriminator that wins too early.

    Args:
        real_logits: ``(B,)`` discriminator outputs (logits, no sigmoid) on real 2D poses.
        fake_logits: ``(B',)`` outputs on rotated and projected predictions.
        mode: ``bce`` (binary cross-entropy with logits) or ``lsgan`` (squared error of the raw outputs, same
            targets).
        real_label: target of real samples.
        flip_probability: per-sample probability of a swapped target, in ``[0, 1]``.
        generator: optional random generator for the flips, on the logits' device.
    """
    if not 0.0 <= flip_probability <= 1.0:
        raise InputError(f"flip_probability must lie in [0, 1], got {flip_probability}")
    real_targets = _targets(real_logits, real_label, 0.0, flip_probability, generator)
    fake_targets = _targets(fake_logits, 0.0, real_label, flip_probability, generator)
    return 0.5 * (_criterion(real_logits, real_targets, mode) + _criterion(fake_logits, fake_targets, mode))


def generator_adversarial_loss(fake_logits: Tensor, mode: AdversarialMode = "bce", real_label: float = 0.8) -> Tensor:
    """The generators' adversarial term: their fakes ``(B,)`` (logits) are pushed towards ``real_label``."""
    return _criterion(fake_logits, torch.full_like(fake_logits, real_label), mode)


def reflected_parts(pred: Tensor, target: Tensor, parts: Mapping[str, Sequence[int]]) -> dict[str, Tensor]:
    """Per frame, whether each part's predicted depths run against the true ones: ``name -> (N,)`` bool.

    A part is reflected when the depths of its joints, each centred on the part's mean depth, correlate
    negatively with the truth's (scale-free, so normalised predictions compare with poses in metres). Parts
    lifted by independent generators can each settle on a sign; a frame whose parts disagree is not fixed by a
    global reflection, which is why P2 with reflection can stay far above a consistent model's.

    Args:
        pred, target: ``(N, J, 3)`` root-relative poses, camera space (z = depth).
        parts: part name -> joint indices (``PartLifter.part_indices``).
    """
    if pred.shape != target.shape or pred.shape[-1] != 3:
        raise InputError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must match as (N, J, 3)")
    reflected = {}
    for name, joints in parts.items():
        depth, true = pred[..., list(joints), 2], target[..., list(joints), 2]
        depth, true = depth - depth.mean(-1, keepdim=True), true - true.mean(-1, keepdim=True)
        reflected[name] = (depth * true).sum(-1) < 0
    return reflected


HANDEDNESS_JOINTS = ("pelvis", "thorax", "head", "left_shoulder", "right_shoulder", "left_hip", "right_hip",
                     "left_knee", "right_knee", "left_ankle", "right_ankle")  # fmt: skip
"""The joints :func:`chirality_votes` reads."""


def chirality_votes(poses: Tensor, skeleton) -> dict[str, Tensor]:
    """Per frame, +1 where a part of ``poses`` has a real person's handedness, -1 where it has its mirror twin's.

    From 2D alone a pose and its depth reflection look alike from every viewpoint (under orthographic projection
    the reflected pose seen at azimuth ``a`` is the true pose seen at ``-a``), so no loss of the adversarial
    regime can tell them apart. Anatomy can: with ``forward = (left - right) x up``,

    - **torso**: the head joint (Human3.6M's neck/nose) lies in front of the thorax: ``(head - thorax) . forward``;
    - **legs**: bent knees point forward: ``sum over legs of (knee - (hip + ankle) / 2) . forward``, with
      ``forward`` from the hips and ``up`` from the ankles' midpoint to the hips' midpoint.

    A depth reflection flips the sign of both (it mirrors ``forward``, not the offsets). Frames where a score is 0
    (a straight leg) vote 0.

    Args:
        poses: ``(N, J, 3)`` root-relative poses, camera space (x right, y down, z forward).
        skeleton: the layout (joints by name).

    Returns:
        ``{"torso": (N,), "legs": (N,)}`` votes in {-1, 0, +1}.
    """
    _check_points(poses, 3, "poses")
    joint = {name: poses[..., skeleton.index(name), :] for name in HANDEDNESS_JOINTS}
    up = joint["thorax"] - joint["pelvis"]
    forward = torch.linalg.cross(joint["left_shoulder"] - joint["right_shoulder"], up, dim=-1)
    torso = ((joint["head"] - joint["thorax"]) * forward).sum(-1)
    hips = (joint["left_hip"] + joint["right_hip"]) / 2
    legs_up = hips - (joint["left_ankle"] + joint["right_ankle"]) / 2
    forward = torch.linalg.cross(joint["left_hip"] - joint["right_hip"], legs_up, dim=-1)
    bends = [joint[f"{s}_knee"] - (joint[f"{s}_hip"] + joint[f"{s}_ankle"]) / 2 for s in ("left", "right")]
    legs = ((bends[0] + bends[1]) * forward).sum(-1)
    return {"torso": torso.sign(), "legs": legs.sign()}
