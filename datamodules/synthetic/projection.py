"""World points -> pixels through calibrated cameras, in float64 numpy.

This is the arithmetic of :func:`components.camera.world_to_camera` followed by
:func:`components.camera.project_to_2d` (the Human3.6M distortion model), written in numpy for the generator:
torch would need its thread count changed process-wide to be fast on small machines (its threads wait on
each other there), while numpy runs these element-wise operations on one thread. The two agree to about
1e-11 pixels (torch may fuse the cross products' multiply-adds), far below float32 resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from components.camera import CameraParameters


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross products of ``(..., 3)`` vectors, component by component like ``torch.linalg.cross``."""
    return np.stack(
        [
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        ],
        axis=-1,
    )


def world_to_cameras(points: np.ndarray, cameras: Sequence[CameraParameters]) -> np.ndarray:
    """World points ``(..., 3)`` metres -> camera space ``(cameras, ..., 3)`` metres (x right, y down, z forward).

    Rotates ``points - centre`` by the inverse orientation quaternion: v + 2 (w (u x v) + u x (u x v)).
    """
    world = np.asarray(points, dtype=np.float64)
    batch = (len(cameras), *[1] * (world.ndim - 1))
    orientation = np.array([c.orientation for c in cameras], dtype=np.float64).reshape(*batch, 4)
    translation = np.array([c.translation for c in cameras], dtype=np.float64).reshape(*batch, 3)
    w, u = orientation[..., :1], -orientation[..., 1:]  # the inverse of a unit quaternion is its conjugate
    v = world - translation
    uv = _cross(u, v)
    return v + 2 * (w * uv + _cross(u, uv))


def project_to_pixels(points: np.ndarray, cameras: Sequence[CameraParameters]) -> tuple[np.ndarray, np.ndarray]:
    """World points ``(..., 3)`` metres -> pixels ``(cameras, ..., 2)`` and depths ``(cameras, ...)`` metres."""
    local = world_to_cameras(points, cameras)
    intrinsics = np.stack([c.pixel_intrinsics() for c in cameras]).reshape(len(cameras), *[1] * (local.ndim - 2), 9)
    focal, centre = intrinsics[..., 0:2], intrinsics[..., 2:4]
    radial_k, tangential_p = intrinsics[..., 4:7], intrinsics[..., 7:9]
    # The clamp keeps image-plane coordinates in [-1, 1], where the distortion polynomial is well behaved.
    xy = np.clip(local[..., :2] / local[..., 2:], -1.0, 1.0)
    r2 = (xy * xy).sum(axis=-1, keepdims=True)
    radial = 1 + (radial_k * np.concatenate([r2, r2 * r2, r2 * r2 * r2], axis=-1)).sum(axis=-1, keepdims=True)
    tangential = (tangential_p * xy).sum(axis=-1, keepdims=True)
    distorted = xy * (radial + tangential) + tangential_p * r2
    return focal * distorted + centre, local[..., 2]
