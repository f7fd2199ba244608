"""Camera model: Human3.6M projection with distortion, world <-> camera transforms, screen normalisation.

Conventions (docs/conventions.md): camera space is x right, y down, z forward, in metres. An extrinsic
orientation is a unit quaternion ``(w, x, y, z)`` rotating camera to world; the translation is the camera
centre in world coordinates. Intrinsics travel as one 9-number vector
``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` in screen-normalised units (see :func:`normalize_screen_coordinates`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import torch
from torch import Tensor

from components.errors import InputError
from components.geometry import quaternion_inverse, quaternion_rotate

INTRINSICS_SIZE = 9
_CX, _P1 = 2, 7  # the entries a horizontal flip negates


def _broadcast_intrinsics(intrinsics: Tensor, points: Tensor) -> Tensor:
    """View ``(*batch, 9)`` intrinsics as ``(*batch, 1, ..., 1, 9)`` to broadcast over ``(*batch, ..., 3)`` points."""
    if intrinsics.shape[-1] != INTRINSICS_SIZE:
        raise InputError(f"intrinsics must end in {INTRINSICS_SIZE} numbers, got shape {tuple(intrinsics.shape)}")
    extra = points.ndim - intrinsics.ndim
    if extra < 0 or points.shape[: intrinsics.ndim - 1] != intrinsics.shape[:-1]:
        raise InputError(
            f"intrinsics {tuple(intrinsics.shape)} do not lead the batch dims of points {tuple(points.shape)}"
        )
    return intrinsics.reshape(*intrinsics.shape[:-1], *([1] * extra), INTRINSICS_SIZE)


def _perspective_divide(points: Tensor) -> Tensor:
    if points.shape[-1] != 3:
        raise InputError(f"points must be (..., 3) in camera space, got {tuple(points.shape)}")
    # The clamp keeps image-plane coordinates in [-1, 1], where the distortion polynomial is well behaved.
    return torch.clamp(points[..., :2] / points[..., 2:], -1.0, 1.0)


def project_to_2d(points_3d: Tensor, intrinsics: Tensor) -> Tensor:
    """Project camera-space points through the Human3.6M camera model (radial + tangential distortion).

    Args:
        points_3d: ``(*batch, ..., 3)`` points in camera space (metres, z forward).
        intrinsics: ``(*batch, 9)`` ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``; its leading dims lead ``points_3d``.

    Returns:
        ``(*batch, ..., 2)`` image points in the units of ``f`` and ``c`` (normalised screen units for the
        normalised intrinsics, pixels for pixel intrinsics). Differentiable.
    """
    k = _broadcast_intrinsics(intrinsics, points_3d)
    f, c, radial_k, tangential_p = k[..., 0:2], k[..., 2:4], k[..., 4:7], k[..., 7:9]
    xy = _perspective_divide(points_3d)
    r2 = (xy**2).sum(dim=-1, keepdim=True)
    powers = torch.cat([r2, r2**2, r2**3], dim=-1)
    radial = 1 + (radial_k * powers).sum(dim=-1, keepdim=True)
    tangential = (tangential_p * xy).sum(dim=-1, keepdim=True)
    distorted = xy * (radial + tangential) + tangential_p * r2
    return f * distorted + c


def project_to_2d_linear(points_3d: Tensor, intrinsics: Tensor) -> Tensor:
    """Pinhole projection ``f * clamp(xy / z) + c`` ignoring distortion; shapes as :func:`project_to_2d`."""
    k = _broadcast_intrinsics(intrinsics, points_3d)
    return k[..., 0:2] * _perspective_divide(points_3d) + k[..., 2:4]


def world_to_camera(points: Tensor, orientation: Tensor, translation: Tensor) -> Tensor:
    """World points ``(..., 3)`` -> camera space: rotate ``points - translation`` by the inverse orientation.

    ``orientation`` ``(..., 4)`` and ``translation`` ``(..., 3)`` broadcast against ``points``; units follow
    ``translation`` (metres in this framework).
    """
    return quaternion_rotate(quaternion_inverse(orientation), points - translation)


def camera_to_world(points: Tensor, orientation: Tensor, translation: Tensor) -> Tensor:
    """Inverse of :func:`world_to_camera`."""
    return quaternion_rotate(orientation, points) + translation


def downward_pitch_degrees(orientation: Tensor, up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> Tensor:
    """How far each camera's optical axis points below the horizontal, in degrees ``(...,)``.

    The world's ``up`` direction seen in camera space (x right, y down, z forward) is
    ``(0, -cos p, -sin p)`` for a camera pitched down by ``p`` (and not rolled); the angle is read as
    ``atan2(-up_z, -up_y)``. Human3.6M's world is z-up.

    Args:
        orientation: ``(..., 4)`` unit quaternions ``(w, x, y, z)`` rotating camera to world.
        up: the world's up direction.
    """
    up_world = torch.tensor(up, dtype=orientation.dtype, device=orientation.device).expand(*orientation.shape[:-1], 3)
    up_camera = quaternion_rotate(quaternion_inverse(orientation), up_world)
    return torch.rad2deg(torch.atan2(-up_camera[..., 2], -up_camera[..., 1]))


def normalize_screen_coordinates(points, width: float, height: float):
    """Pixels -> screen units: ``x / w * 2 - [1, h / w]``, mapping x in [0, w] to [-1, 1], keeping the aspect.

    Works on numpy arrays and tensors of shape ``(..., 2)``.
    """
    if points.shape[-1] != 2:
        raise InputError(f"expected (..., 2) image points, got shape {tuple(points.shape)}")
    return points / width * 2 - _offset(points, width, height)


def image_coordinates(points, width: float, height: float):
    """Screen units -> pixels, the inverse of :func:`normalize_screen_coordinates`."""
    if points.shape[-1] != 2:
        raise InputError(f"expected (..., 2) screen points, got shape {tuple(points.shape)}")
    return (points + _offset(points, width, height)) * width / 2


def normalize_to_person(keypoints: Tensor, eps: float = 1e-6) -> Tensor:
    """Re-centre and rescale every frame's 2D on the person: independent of frame size, orientation and position.

    Args:
        keypoints: ``(..., J, F)`` with x, y first (any units: pixels or screen units); features after x, y
            (a score) are kept.

    Returns:
        The same shape: x, y minus the mean of the frame's joints, divided by their root-mean-square distance from
        it (``eps`` where all joints coincide). Translating or uniformly scaling a frame leaves the result
        unchanged, and it commutes with the horizontal flip (x negated, left/right joints swapped).
    """
    xy = keypoints[..., :2]
    offset = xy - xy.mean(-2, keepdim=True)
    spread = offset.square().sum(-1, keepdim=True).mean(-2, keepdim=True).sqrt().clamp_min(eps)
    return torch.cat([offset / spread, keypoints[..., 2:]], -1)


def _offset(points, width: float, height: float):
    offset = [1.0, height / width]
    if isinstance(points, Tensor):
        return points.new_tensor(offset)
    return np.asarray(offset, dtype=points.dtype)


def flip_intrinsics(intrinsics):
    """Intrinsics of the horizontally mirrored image: ``cx`` and ``p1`` change sign. ``(..., 9)`` in and out.

    Mirroring negates screen x; with x' = -x the distortion model stays exact when cx and p1 are negated.
    """
    sign = np.ones(INTRINSICS_SIZE, dtype=np.float32)
    sign[[_CX, _P1]] = -1
    if isinstance(intrinsics, Tensor):
        return intrinsics * torch.from_numpy(sign).to(intrinsics)
    return intrinsics * sign.astype(intrinsics.dtype)


@dataclass(frozen=True)
class CameraParameters:
    """One calibrated camera in pixel units, with extrinsics in metres.

    Attributes:
        id: camera identifier, e.g. ``"54138969"``.
        width, height: image size in pixels.
        focal_length, center: ``(2,)`` pixels.
        radial_distortion: ``(3,)`` k1, k2, k3. tangential_distortion: ``(2,)`` p1, p2 (Human3.6M order).
        orientation: ``(4,)`` unit quaternion (w, x, y, z), camera -> world.
        translation: ``(3,)`` camera centre in world coordinates, metres.
    """

    id: str
    width: int
    height: int
    focal_length: tuple[float, float]
    center: tuple[float, float]
    radial_distortion: tuple[float, float, float]
    tangential_distortion: tuple[float, float]
    orientation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def intrinsics(self) -> np.ndarray:
        """The normalised 9-number vector: ``f / w * 2``, ``c`` screen-normalised, distortion as is."""
        f = np.asarray(self.focal_length, dtype=np.float64) / self.width * 2
        c = normalize_screen_coordinates(np.asarray(self.center, dtype=np.float64), self.width, self.height)
        vec = np.concatenate([f, c, self.radial_distortion, self.tangential_distortion])
        return vec.astype(np.float32)

    def pixel_intrinsics(self) -> np.ndarray:
        """The 9-number vector in pixels (projects straight to pixel coordinates)."""
        vec = [*self.focal_length, *self.center, *self.radial_distortion, *self.tangential_distortion]
        return np.asarray(vec, dtype=np.float64)


@cache
def _h36m_calibration() -> dict:
    text = resources.files("components").joinpath("data/h36m_cameras.json").read_text()
    return json.loads(text)


def h36m_cameras(subject: str) -> tuple[CameraParameters, ...]:
    """The four Human3.6M cameras of ``subject`` (``"S1"``, ``"S5"`` ... ``"S11"``), in the npz camera order.

    Subjects without extrinsics (S2-S4, which only have 2D detections) get identity extrinsics.
    """
    calibration = _h36m_calibration()
    extrinsics = calibration["extrinsics"].get(subject) or [{} for _ in calibration["intrinsics"]]
    cameras = []
    for intrinsic, extrinsic in zip(calibration["intrinsics"], extrinsics, strict=True):
        translation = np.asarray(extrinsic.get("translation", (0.0, 0.0, 0.0))) / 1000.0  # mm -> m
        cameras.append(
            CameraParameters(
                id=str(intrinsic["id"]),
                width=int(intrinsic["res_w"]),
                height=int(intrinsic["res_h"]),
                focal_length=tuple(intrinsic["focal_length"]),
                center=tuple(intrinsic["center"]),
                radial_distortion=tuple(intrinsic["radial_distortion"]),
                tangential_distortion=tuple(intrinsic["tangential_distortion"]),
                orientation=tuple(extrinsic.get("orientation", (1.0, 0.0, 0.0, 0.0))),
                translation=tuple(float(t) for t in translation),
            )
        )
    return tuple(cameras)


H36M_SUBJECTS_WITH_CAMERAS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
