"""What a motion generator decides (joint angles, facing, path) and how it becomes world positions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamodules.synthetic.body import (
    BODY,
    CONTACT_JOINTS,
    SIDES,
    BodyShape,
    axis_rotation,
    forward_kinematics,
    joint_rotation,
)

Degrees = float | np.ndarray
"""An angle in degrees: one value for every frame, or a ``(T,)`` array."""


class JointAngles:
    """Anatomical angles of ``frames`` frames, summed per joint: ``(T, 3)`` flexion, abduction, twist.

    Generators layer several movements on one joint (a stance, then a gesture), so angles add up.
    """

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.values: dict[str, np.ndarray] = {}

    def add(self, joint: str, flexion: Degrees = 0.0, abduction: Degrees = 0.0, twist: Degrees = 0.0) -> None:
        """Add scalars or ``(T,)`` arrays in degrees to one joint."""
        value = self.values.setdefault(joint, np.zeros((self.frames, 3)))
        zero = np.zeros(self.frames)
        value += np.stack([zero + flexion, zero + abduction, zero + twist], axis=-1)

    def both(self, joint: str, flexion: Degrees = 0.0, abduction: Degrees = 0.0, twist: Degrees = 0.0) -> None:
        """Add the same angles to the left and the right joint (mirrored by the sign conventions)."""
        for side in SIDES:
            self.add(f"{side}_{joint}", flexion, abduction, twist)


@dataclass(frozen=True, eq=False)
class MotionPlan:
    """What a motion generator decides; :func:`pose_motion` turns it into positions.

    Attributes:
        angles: the joint angles.
        yaw: ``(T,)`` facing direction of the pelvis, degrees, counter-clockwise from world +x.
        pitch: ``(T,)`` forward tilt of the pelvis, degrees (the legs are counter-rotated to stay upright).
        path: ``(T, 2)`` world xy of the anchor relative to the capture volume's centre, metres.
        anchor: ``"pelvis"`` (the pelvis follows the path: locomotion, sitting) or ``"feet"`` (the mid-point
            of the ankles does: standing actions keep their feet still).
    """

    angles: JointAngles
    yaw: np.ndarray
    pitch: np.ndarray
    path: np.ndarray
    anchor: str


def pose_motion(plan: MotionPlan, body: BodyShape, centre: np.ndarray) -> np.ndarray:
    """World positions ``(T, joints, 3)``, :data:`BODY` order, metres, z up, lowest foot point on z = 0.

    ``centre`` ``(2,)`` is the world xy that ``plan.path`` is relative to, metres.
    """
    frames = len(plan.yaw)
    rotations = np.broadcast_to(np.eye(3), (frames, BODY.num_joints, 3, 3)).copy()
    yaw, pitch = np.radians(plan.yaw), np.radians(plan.pitch)
    rotations[:, BODY.root] = axis_rotation(2, yaw) @ axis_rotation(1, pitch)
    tilt = np.zeros((frames, 3))
    tilt[:, 0] = plan.pitch
    angles = dict(plan.angles.values)
    for hip in ("left_hip", "right_hip"):  # the hips flex by the pelvis tilt, so the legs stay upright
        angles[hip] = angles.get(hip, 0.0) + tilt
    for joint, value in angles.items():
        rotations[:, BODY.index(joint)] = joint_rotation(joint, value)
    positions = forward_kinematics(body.offsets, rotations)
    # Ground contact: the lowest heel or toe touches the floor, which also makes the pelvis bob when walking.
    positions[..., 2] -= positions[:, list(BODY.indices(CONTACT_JOINTS)), 2].min(axis=1, keepdims=True)
    if plan.anchor == "pelvis":
        anchor = positions[:, BODY.root, :2]
    else:
        anchor = positions[:, list(BODY.indices(("left_ankle", "right_ankle"))), :2].mean(axis=1)
    positions[..., :2] += (centre + plan.path - anchor)[:, None]
    return positions
