"""Known-value tests for the detector error model (datamodules.synthetic.detector): swaps and holds by name."""

from __future__ import annotations

import numpy as np

from components.skeleton import H36M_17
from datamodules.synthetic.detector import DetectorNoise, corrupt_keypoints


def test_corrupt_keypoints_swaps_limbs_by_name() -> None:
    frames = 400
    points = np.broadcast_to(np.arange(17.0)[:, None] * [10.0, 1.0], (frames, 17, 2)).copy()
    noise = DetectorNoise(jitter_px=0, outlier_rate=0, hold_rate=0, swap_rate=0.05)
    result = corrupt_keypoints(points, H36M_17, np.random.default_rng(0), noise)
    assert result.swapped.any() and not result.held.any()
    swapped_joints = set(np.flatnonzero(result.swapped.any(axis=0)))
    names = {f"{s}_{n}" for s in ("left", "right") for n in ("knee", "ankle", "elbow", "wrist")}
    assert swapped_joints == set(H36M_17.indices(sorted(names)))
    partner = np.array(H36M_17.flip_permutation)
    expected = np.where(result.swapped[..., None], points[:, partner], points)
    assert np.array_equal(result.points, expected.astype(np.float32))


def test_corrupt_keypoints_holds_the_last_detected_position() -> None:
    frames = 500
    points = np.arange(frames, dtype=np.float64)[:, None, None] * np.ones((1, 17, 2))  # every joint moves
    noise = DetectorNoise(jitter_px=0, outlier_rate=0, swap_rate=0, hold_rate=0.02, hold_frames=(3, 3))
    result = corrupt_keypoints(points, H36M_17, np.random.default_rng(1), noise)
    held = result.held
    assert held.any() and not held[0].any()
    assert np.array_equal(result.points[~held], points[~held].astype(np.float32))
    frame, joint = np.nonzero(held)
    assert np.array_equal(result.points[frame, joint], result.points[frame - 1, joint])
