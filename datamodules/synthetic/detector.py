"""A 2D detector's errors, applied to exact keypoints: jitter, outliers, brief limb swaps, dropped joints.

Joints are found by name (``left_knee`` and its partner), so any layout with left/right partners works.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.skeleton import Skeleton


@dataclass(frozen=True)
class DetectorNoise:
    """Error model of a 2D detector (pixels, frames).

    Attributes:
        jitter_px: standard deviation of the per-coordinate Gaussian jitter.
        outlier_rate, outlier_px: fraction of points with an extra error of this standard deviation.
        swap_rate: starts per frame of a left/right swap of one limb (``swap_limbs``, joint names without
            their side); each lasts ``swap_frames`` (inclusive range) frames.
        hold_rate: starts per frame and joint of a dropped joint that keeps its last detected position for
            ``hold_frames`` (inclusive range) frames.
    """

    jitter_px: float = 2.5
    outlier_rate: float = 0.01
    outlier_px: float = 15.0
    swap_rate: float = 1 / 150
    swap_frames: tuple[int, int] = (2, 6)
    swap_limbs: tuple[tuple[str, ...], ...] = (("knee", "ankle"), ("elbow", "wrist"))
    hold_rate: float = 1 / 300
    hold_frames: tuple[int, int] = (2, 8)


@dataclass(frozen=True, eq=False)
class NoisyKeypoints:
    """Corrupted keypoints ``points`` ``(T, J, 2)`` float32 pixels, and masks ``(T, J)`` of the errors."""

    points: np.ndarray
    swapped: np.ndarray
    held: np.ndarray


def _episodes(rng: np.random.Generator, shape: tuple[int, ...], rate: float, length: tuple[int, int]) -> np.ndarray:
    """Bool ``shape`` (time first): episodes starting at ``rate`` per step, each ``length`` steps long."""
    starts = rng.random(shape) < rate
    steps = np.arange(shape[0]).reshape(-1, *([1] * (len(shape) - 1)))
    ends = np.where(starts, steps + rng.integers(length[0], length[1] + 1, shape), 0)
    return steps < np.maximum.accumulate(ends, axis=0)


def corrupt_keypoints(
    points: np.ndarray, skeleton: Skeleton, rng: np.random.Generator, noise: DetectorNoise = DetectorNoise()
) -> NoisyKeypoints:
    """Make exact keypoints ``(T, J, 2)`` pixels look detected: jitter, outliers, limb swaps, then holds."""
    frames, joints = points.shape[:2]
    out = points + rng.normal(0, noise.jitter_px, points.shape)
    outliers = rng.random((frames, joints, 1)) < noise.outlier_rate
    out += outliers * rng.normal(0, noise.outlier_px, points.shape)
    swapped = np.zeros((frames, joints), dtype=bool)
    for limb in noise.swap_limbs:
        active = _episodes(rng, (frames,), noise.swap_rate / len(noise.swap_limbs), noise.swap_frames)
        left = list(skeleton.indices([f"left_{name}" for name in limb]))
        right = list(skeleton.indices([skeleton.partner(f"left_{name}") for name in limb]))
        out[np.ix_(active, left + right)] = out[np.ix_(active, right + left)]
        swapped[np.ix_(active, left + right)] = True
    held = _episodes(rng, (frames, joints), noise.hold_rate, noise.hold_frames)
    held[0] = False
    # A held joint repeats the output of the last frame where it was detected.
    last = np.maximum.accumulate(np.where(held, 0, np.arange(frames)[:, None]), axis=0)
    out = np.take_along_axis(out, last[..., None], axis=0)
    return NoisyKeypoints(out.astype(np.float32), swapped, held)
