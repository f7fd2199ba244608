"""The capture volume: the floor area from which a subject stays inside every camera's image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from components.camera import CameraParameters
from components.errors import InputError
from datamodules.synthetic.projection import project_to_pixels


@dataclass(frozen=True, eq=False)
class CaptureVolume:
    """Where a subject may move so that the cameras see every joint.

    Attributes:
        cameras: the calibrated cameras (pixel intrinsics, extrinsics in metres).
        centre: ``(2,)`` world xy of the centre of the floor area, metres.
        axes: ``(2, 2)`` columns are the semi-axes of an ellipse approximating where the root may roam with
            a body of radius ``body_radius`` around it, metres.
        margin_px: distance every projected joint keeps from the image border, pixels.
    """

    cameras: tuple[CameraParameters, ...]
    centre: np.ndarray
    axes: np.ndarray
    margin_px: float = 5.0

    def sees(self, points: np.ndarray) -> np.ndarray:
        """Whether all cameras see each world point ``(..., 3)`` (metres) inside the image: ``(...)`` bool."""
        pixels, depth = project_to_pixels(points, self.cameras)
        size = np.array([[c.width, c.height] for c in self.cameras]).reshape(-1, *[1] * (points.ndim - 1), 2)
        inside = (pixels > self.margin_px) & (pixels < size - self.margin_px)
        return np.all((depth > 0.1) & inside.all(axis=-1), axis=0)


def capture_volume(
    cameras: Sequence[CameraParameters], body_radius: float = 0.8, body_height: float = 1.95, step: float = 0.1
) -> CaptureVolume:
    """Fit the floor area from which a cylinder (``body_radius`` x ``body_height`` m) stays in all images.

    The area is sampled on a ``step`` (metres) grid over the cameras' footprint; its centroid and principal
    axes give the ellipse (a uniform ellipse of semi-axis ``a`` has variance ``a**2 / 4`` along it).

    Raises:
        ValueError: if fewer than 10 grid points are seen by every camera.
    """
    volume = CaptureVolume(tuple(cameras), np.zeros(2), np.eye(2))
    centres = np.array([c.translation[:2] for c in cameras])
    axes = [np.arange(lo, hi + step, step) for lo, hi in zip(centres.min(0), centres.max(0), strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ring = body_radius * np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=-1)
    rim = np.concatenate([ring, ring + [0, 0, body_height]])  # the cylinder's floor and top circles
    points = np.concatenate([grid, np.zeros((len(grid), 1))], axis=-1)[:, None] + rim
    feasible = grid[volume.sees(points).all(axis=1)]
    if len(feasible) < 10:
        raise InputError(f"cameras {[c.id for c in cameras]} share no floor area for a {body_height} m body")
    variance, directions = np.linalg.eigh(np.cov(feasible.T))
    return CaptureVolume(tuple(cameras), feasible.mean(0), directions * 2 * np.sqrt(variance))
