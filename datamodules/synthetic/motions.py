"""One take of an action: a motion kind run on a body and kept inside the cameras' view.

A dataset writer maps its action names to :class:`ActionSpec` values and calls :func:`simulate_motion` once per
take; everything here is dataset-agnostic (positions in :data:`BODY` order, world metres, z up, 50 fps).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from datamodules.synthetic.body import BodyShape
from datamodules.synthetic.kinds import MOTION_KINDS
from datamodules.synthetic.plan import pose_motion
from datamodules.synthetic.signals import FPS
from datamodules.synthetic.volume import CaptureVolume


@dataclass(frozen=True)
class ActionSpec:
    """How to synthesise one dataset action: a motion kind of :data:`MOTION_KINDS` and its style arguments."""

    kind: str
    style: Mapping[str, object] = field(default_factory=dict)


_PATH_SCALES = (1.0, 0.8, 0.6, 0.4, 0.2)


def simulate_motion(
    spec: ActionSpec, frames: int, body: BodyShape, volume: CaptureVolume, rng: np.random.Generator
) -> np.ndarray:
    """One take: world positions ``(frames, joints, 3)`` in :data:`BODY` order, metres, z up, 50 fps.

    The path is shrunk towards the volume's centre until every joint of every frame is seen by every camera.

    Raises:
        RuntimeError: if no path scale keeps the body in view.
    """
    generator = MOTION_KINDS[spec.kind]
    t = np.arange(frames) / FPS
    take_seed = int(rng.integers(2**63))
    for scale in _PATH_SCALES:
        # Every attempt draws the same random numbers, so only the path size changes between attempts.
        plan = generator(t, np.random.default_rng(take_seed), body, volume, scale, **spec.style)
        positions = pose_motion(plan, body, volume.centre)
        if volume.sees(_bounding_box_corners(positions)).all():
            return positions
    raise RuntimeError(f"a {spec.kind!r} take leaves the cameras' view even at path scale {_PATH_SCALES[-1]}")


def _bounding_box_corners(positions: np.ndarray) -> np.ndarray:
    """The 8 corners ``(T, 8, 3)`` of each frame's axis-aligned box around ``positions`` ``(T, joints, 3)``.

    A camera that sees the corners sees the whole box (a convex set stays convex under a pinhole projection,
    and the mild barrel distortion only pulls points inwards), so checking 8 points stands in for all joints.
    """
    low, high = positions.min(axis=1), positions.max(axis=1)
    pick = np.array(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")).reshape(3, 8).T  # (8, 3) of 0/1
    return np.where(pick[None] == 1, high[:, None], low[:, None])
