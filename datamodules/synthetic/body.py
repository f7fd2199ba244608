"""The synthetic body: a named joint tree, per-subject proportions, joint rotations and forward kinematics.

Body axes: x forward, y left, z up (the world frame rotated by the root's yaw). Angles are in degrees with
anatomical signs: positive flexion bends a joint the way it naturally bends, positive abduction moves a limb
away from the midline (a central joint leans left), positive twist turns a limb outwards (the trunk left).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from components.errors import MissingKeyError
from components.skeleton import Skeleton
from datamodules.synthetic.seeding import seeded_rng

SIDES = ("left", "right")
_CENTRAL_JOINTS = (
    ("pelvis", None), ("lower_spine", "pelvis"), ("spine", "lower_spine"), ("spine2", "spine"),
    ("spine3", "spine2"), ("spine4", "spine3"), ("thorax", "spine4"), ("head", "thorax"),
    ("head_top", "head"),
)  # fmt: skip
# Sided joints with their parent (a bare parent name is sided too unless it is a central joint).
_SIDED_JOINTS = (
    ("hip", "pelvis"), ("knee", "hip"), ("ankle", "knee"), ("heel", "ankle"), ("foot", "ankle"),
    ("toe", "ankle"), ("toe_end", "toe"), ("clavicle", "spine4"), ("shoulder", "clavicle"),
    ("elbow", "shoulder"), ("wrist", "elbow"), ("hand", "wrist"), ("hand_end", "hand"), ("thumb", "wrist"),
    ("thumb_end", "thumb"),
)  # fmt: skip
_CENTRAL_NAMES = {name for name, _ in _CENTRAL_JOINTS}


def _sided_tree() -> tuple[tuple[str, str | None], ...]:
    """``(joint, parent)`` of both sides; all left joints come first, so parents precede children."""
    joints = []
    for side in SIDES:
        for name, parent in _SIDED_JOINTS:
            joints.append((f"{side}_{name}", parent if parent in _CENTRAL_NAMES else f"{side}_{parent}"))
    return tuple(joints)


BODY = Skeleton("synthetic_body", _CENTRAL_JOINTS + _sided_tree())
"""The motion engine's joints: every name of ``H36M_32`` and ``MPI_INF_3DHP_28``, plus the heels.

Parents are listed before children, so forward kinematics is one pass in array order. ``lower_spine`` sits
on the pelvis (the lumbar pivot); ``spine2``..``spine4`` divide ``spine`` -> ``thorax`` and never bend, so
the ``spine`` -> ``thorax`` bone stays rigid; the clavicles hang from ``spine4`` as in MPI-INF-3DHP; ``toe``
is the ball of the foot, ``toe_end`` the tip, ``foot`` the mid-foot; the heels (in no dataset layout) are the
rear contact points used to put the feet on the floor.
"""

# Rest pose (standing, arms hanging, facing +x) as offsets from the parent in body axes, in units of the
# standing height; left side given, the right side mirrors y. Proportions follow the Human3.6M skeleton
# (e.g. thigh 454 mm and upper arm 279 mm for a 1.72 m subject).
_REST_OFFSETS = {
    "pelvis": (0.0, 0.0, 0.0),
    "lower_spine": (0.0, 0.0, 0.0),
    "spine": (-0.005, 0.0, 0.135),
    "spine2": (-0.01, 0.0, 0.037),
    "spine3": (-0.005, 0.0, 0.037),
    "spine4": (0.005, 0.0, 0.037),
    "thorax": (0.01, 0.0, 0.038),
    "head": (0.02, 0.0, 0.068),
    "head_top": (-0.015, 0.0, 0.064),
    "hip": (0.0, 0.075, -0.015),
    "knee": (0.0, 0.0, -0.262),
    "ankle": (0.0, 0.0, -0.262),
    "heel": (-0.03, 0.0, -0.045),
    "foot": (0.04, 0.0, -0.036),
    "toe": (0.085, 0.0, -0.045),
    "toe_end": (0.035, 0.0, 0.0),
    "clavicle": (0.01, 0.025, 0.035),
    "shoulder": (-0.015, 0.063, -0.012),
    "elbow": (0.0, 0.0, -0.163),
    "wrist": (0.0, 0.0, -0.146),
    "hand": (0.0, 0.0, -0.045),
    "hand_end": (0.0, 0.0, -0.05),
    "thumb": (0.02, 0.0, -0.02),
    "thumb_end": (0.015, 0.0, -0.018),
}
# Segments scaled together by a subject's proportions; the rest scales with the height only.
_SEGMENT_GROUPS = {
    "legs": ("knee", "ankle"),
    "trunk": ("spine", "spine2", "spine3", "spine4", "thorax"),
    "head": ("head", "head_top"),
    "arms": ("elbow", "wrist", "hand", "hand_end"),
    "breadth": ("hip", "clavicle", "shoulder"),
}
CONTACT_JOINTS = tuple(f"{side}_{name}" for side in SIDES for name in ("heel", "toe", "toe_end"))
"""The points that can touch the floor: the lowest of them defines z = 0 in every frame."""
HEIGHT_RANGE = (1.55, 1.85)
"""Standing heights of the synthetic subjects (floor to head top, metres), drawn per subject."""


def _split_side(joint: str) -> tuple[str | None, str]:
    """``"left_knee"`` -> ``("left", "knee")``; a central joint has side ``None``."""
    for side in SIDES:
        if joint.startswith(side + "_"):
            return side, joint[len(side) + 1 :]
    return None, joint


@dataclass(frozen=True, eq=False)
class BodyShape:
    """One subject's body.

    Attributes:
        height: standing height, floor to head top, metres.
        offsets: ``(joints, 3)`` rest offset of each joint from its parent, :data:`BODY` order, body axes,
            metres.
    """

    height: float
    offsets: np.ndarray


def body_shape(height: float, proportions: Mapping[str, float] | None = None) -> BodyShape:
    """Build a body of ``height`` metres (floor to head top, standing).

    ``proportions`` scale the segment groups of ``_SEGMENT_GROUPS`` (1 = Human3.6M mean); the offsets are
    rescaled afterwards so that the rest pose measures exactly ``height``.
    """
    factors = {name: 1.0 for name in _REST_OFFSETS}
    for group, scale in (proportions or {}).items():
        for name in _SEGMENT_GROUPS[group]:
            factors[name] = scale
    offsets = np.zeros((BODY.num_joints, 3))
    for j, joint in enumerate(BODY.joint_names):
        side, base = _split_side(joint)
        offsets[j] = np.asarray(_REST_OFFSETS[base]) * factors[base]
        if side == "right":
            offsets[j, 1] *= -1
    rest = forward_kinematics(offsets, np.broadcast_to(np.eye(3), (1, BODY.num_joints, 3, 3)))
    rest_height = rest[0, BODY.index("head_top"), 2] - rest[0, list(BODY.indices(CONTACT_JOINTS)), 2].min()
    return BodyShape(height=float(height), offsets=offsets * (height / rest_height))


def subject_body(subject: str, seed: int = 0) -> BodyShape:
    """The deterministic body of ``subject``: a height in :data:`HEIGHT_RANGE`, proportions within +-6 %."""
    rng = seeded_rng(seed, "body", subject)
    height = rng.uniform(*HEIGHT_RANGE)
    return body_shape(height, {group: rng.uniform(0.94, 1.06) for group in _SEGMENT_GROUPS})


# Sign that turns anatomical flexion into a rotation about the body's y axis (e.g. a hip flexes by swinging
# the thigh forward, which is a negative rotation about y; a knee flexes backwards).
_FLEXION_SIGN = {
    "hip": -1, "knee": 1, "ankle": -1, "shoulder": -1, "elbow": -1, "wrist": -1,
    "lower_spine": 1, "spine": 1, "thorax": 1, "head": 1,
}  # fmt: skip


def axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotations ``(T, 3, 3)`` by ``angle`` ``(T,)`` radians about axis 0 (x), 1 (y) or 2 (z)."""
    angle = np.asarray(angle, dtype=np.float64)
    i, j = (axis + 1) % 3, (axis + 2) % 3
    rotation = np.zeros((*angle.shape, 3, 3))
    rotation[..., axis, axis] = 1.0
    rotation[..., i, i] = rotation[..., j, j] = np.cos(angle)
    rotation[..., i, j], rotation[..., j, i] = -np.sin(angle), np.sin(angle)
    return rotation


def joint_rotation(joint: str, angles: np.ndarray) -> np.ndarray:
    """Local rotations ``(T, 3, 3)`` of ``joint`` from ``(T, 3)`` anatomical angles (module docstring).

    ``angles`` are flexion (about the body's y axis), abduction (x) and twist (z), in degrees.
    """
    side, base = _split_side(joint)
    if base not in _FLEXION_SIGN:
        raise MissingKeyError(f"joint {joint!r} is not articulated; articulated: {sorted(_FLEXION_SIGN)}")
    mirror = -1.0 if side == "right" else 1.0
    # A central joint's positive lateral bend leans left: a negative rotation about x.
    lateral = mirror if side else -1.0
    flexion, abduction, twist = np.radians(angles).T
    return (
        axis_rotation(1, _FLEXION_SIGN[base] * flexion)
        @ axis_rotation(0, lateral * abduction)
        @ axis_rotation(2, mirror * twist)
    )


def forward_kinematics(offsets: np.ndarray, rotations: np.ndarray, parents: Sequence[int] = BODY.parents) -> np.ndarray:
    """Joint positions from rest offsets and local rotations, with the root at the origin.

    Args:
        offsets: ``(joints, 3)`` offset of each joint from its parent in the parent's frame, metres.
        rotations: ``(T, joints, 3, 3)`` local rotation of each joint (the root's is its world orientation).
        parents: parent index per joint, parents before children.

    Returns:
        ``(T, joints, 3)`` positions, metres.
    """
    frames, joints = rotations.shape[:2]
    positions = np.zeros((frames, joints, 3))
    world = np.empty_like(rotations)
    for j, parent in enumerate(parents):
        if parent < 0:
            world[:, j] = rotations[:, j]
            continue
        positions[:, j] = positions[:, parent] + world[:, parent] @ offsets[j]
        world[:, j] = world[:, parent] @ rotations[:, j]
    return positions


def to_layout(positions: np.ndarray, layout: Skeleton, coincident: Mapping[str, str] | None = None) -> np.ndarray:
    """:data:`BODY` positions ``(..., joints, 3)`` -> ``layout`` ``(..., layout joints, 3)``, by joint name.

    ``coincident`` moves joints onto others first (joint -> the joint it must coincide with), for datasets
    whose recorded skeleton holds static duplicates.
    """
    positions = np.array(positions)
    for joint, target in (coincident or {}).items():
        positions[..., BODY.index(joint), :] = positions[..., BODY.index(target), :]
    return layout.convert_from(BODY, positions)
