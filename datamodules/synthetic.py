"""Deterministic synthetic Human3.6M, written in the real VideoPose3D file formats (the embedded default).

The real dataset is licensed; this one lets every regime train and be tested on a fresh machine. It is read
back by the real readers (``datamodules.human36m``), so the files follow reference/datasets.md A1 exactly:

- ``data_3d_h36m.npz``: ``positions_3d`` subject -> action -> ``(T, 32, 3)`` float32, metres, world frame
  (z up), :data:`H36M_32` order.
- ``data_2d_h36m_gt.npz``: ``positions_2d`` subject -> action -> list of 4 ``(T, 17, 2)`` float32 pixel arrays
  (the 3D projected through each subject's four real cameras, with distortion), ``metadata`` without a
  layout name, like the real ``gt`` file.
- ``data_2d_h36m_noisy.npz``: the same structure, corrupted like a detector (jitter, outliers, brief
  left/right limb swaps, dropped joints that hold their last position), ``metadata`` naming ``h36m``.

The file writing is separate from a small motion engine that any dataset can reuse: forward kinematics over
:data:`BODY`, a named joint set holding every joint name of :data:`H36M_32` and :data:`MPI_INF_3DHP_28`,
driven by joint-angle generators for a few motion kinds at 50 fps, placed inside a :class:`CaptureVolume`
so that every joint stays in view of every camera. Everything is vectorised over frames.

Body axes: x forward, y left, z up (the world frame rotated by the root's yaw). Angles are in degrees with
anatomical signs: positive flexion bends a joint the way it naturally bends, positive abduction moves a limb
away from the midline (a central joint leans left), positive twist turns a limb outwards (the trunk left).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from components.camera import (
    H36M_SUBJECTS_WITH_CAMERAS,
    CameraParameters,
    h36m_cameras,
    project_to_2d,
    world_to_camera,
)
from components.skeleton import H36M_17, H36M_32, Skeleton

FPS = 50.0
SYNTHETIC_2D_SOURCES = ("gt", "noisy")
H36M_SUBJECTS = H36M_SUBJECTS_WITH_CAMERAS
FILE_3D = "data_3d_h36m.npz"


def file_2d(source: str) -> str:
    """File name of one 2D source, ``data_2d_h36m_<source>.npz``."""
    return f"data_2d_h36m_{source}.npz"


# ---------------------------------------------------------------------------------------------------------
# Body model
# ---------------------------------------------------------------------------------------------------------

_SIDES = ("left", "right")
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
    joints = []
    for side in _SIDES:
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
_CONTACT_JOINTS = tuple(f"{side}_{name}" for side in _SIDES for name in ("heel", "toe", "toe_end"))
HEIGHT_RANGE = (1.55, 1.85)
"""Standing heights of the synthetic subjects (floor to head top, metres), drawn per subject."""


def _base_name(joint: str) -> tuple[str | None, str]:
    for side in _SIDES:
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
        side, base = _base_name(joint)
        offsets[j] = np.asarray(_REST_OFFSETS[base]) * factors[base]
        if side == "right":
            offsets[j, 1] *= -1
    rest = forward_kinematics(offsets, np.broadcast_to(np.eye(3), (1, BODY.num_joints, 3, 3)))
    rest_height = rest[0, BODY.index("head_top"), 2] - rest[0, list(BODY.indices(_CONTACT_JOINTS)), 2].min()
    return BodyShape(height=float(height), offsets=offsets * (height / rest_height))


def subject_body(subject: str, seed: int = 0) -> BodyShape:
    """The deterministic body of ``subject``: a height in :data:`HEIGHT_RANGE`, proportions within +-6 %."""
    rng = _rng(seed, "body", subject)
    height = rng.uniform(*HEIGHT_RANGE)
    return body_shape(height, {group: rng.uniform(0.94, 1.06) for group in _SEGMENT_GROUPS})


# ---------------------------------------------------------------------------------------------------------
# Rotations and forward kinematics
# ---------------------------------------------------------------------------------------------------------

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
    side, base = _base_name(joint)
    if base not in _FLEXION_SIGN:
        raise KeyError(f"joint {joint!r} is not articulated; articulated: {sorted(_FLEXION_SIGN)}")
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


class JointAngles:
    """Anatomical angles of ``frames`` frames, summed per joint: ``(T, 3)`` flexion, abduction, twist."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.values: dict[str, np.ndarray] = {}

    def add(self, joint: str, flexion=0.0, abduction=0.0, twist=0.0) -> None:
        """Add scalars or ``(T,)`` arrays in degrees to one joint."""
        value = self.values.setdefault(joint, np.zeros((self.frames, 3)))
        zero = np.zeros(self.frames)
        value += np.stack([zero + flexion, zero + abduction, zero + twist], axis=-1)

    def both(self, joint: str, flexion=0.0, abduction=0.0, twist=0.0) -> None:
        """Add the same angles to the left and the right joint (mirrored by the sign conventions)."""
        for side in _SIDES:
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
    """World positions ``(T, joints, 3)``, :data:`BODY` order, metres, z up, lowest foot point on z = 0."""
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
    positions[..., 2] -= positions[:, list(BODY.indices(_CONTACT_JOINTS)), 2].min(axis=1, keepdims=True)
    if plan.anchor == "pelvis":
        anchor = positions[:, BODY.root, :2]
    else:
        anchor = positions[:, list(BODY.indices(("left_ankle", "right_ankle"))), :2].mean(axis=1)
    positions[..., :2] += (centre + plan.path - anchor)[:, None]
    return positions


# ---------------------------------------------------------------------------------------------------------
# Capture volume
# ---------------------------------------------------------------------------------------------------------


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


def project_to_pixels(points: np.ndarray, cameras: Sequence[CameraParameters]) -> tuple[np.ndarray, np.ndarray]:
    """World points ``(..., 3)`` metres -> pixels ``(cameras, ..., 2)`` and depths ``(cameras, ...)`` metres.

    Exactly :func:`components.camera.project_to_2d` of :func:`components.camera.world_to_camera` (the
    Human3.6M distortion model), all cameras in one batch.
    """
    world = torch.from_numpy(np.asarray(points, dtype=np.float64))
    batch = (len(cameras), *[1] * (world.ndim - 1))
    orientation = torch.tensor([c.orientation for c in cameras], dtype=torch.float64)
    translation = torch.tensor(np.array([c.translation for c in cameras]))
    local = world_to_camera(world, orientation.view(*batch, 4), translation.view(*batch, 3))
    intrinsics = torch.from_numpy(np.stack([c.pixel_intrinsics() for c in cameras]))
    return project_to_2d(local, intrinsics).numpy(), local[..., 2].numpy()


def capture_volume(
    cameras: Sequence[CameraParameters], body_radius: float = 0.8, body_height: float = 1.95, step=0.1
) -> CaptureVolume:
    """Fit the floor area from which a cylinder (``body_radius`` x ``body_height`` m) stays in all images.

    The area is sampled on a ``step`` grid over the cameras' footprint; its centroid and principal axes give
    the ellipse (a uniform ellipse of semi-axis ``a`` has variance ``a**2 / 4`` along it).
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
        raise ValueError(f"cameras {[c.id for c in cameras]} share no floor area for a {body_height} m body")
    variance, directions = np.linalg.eigh(np.cov(feasible.T))
    return CaptureVolume(tuple(cameras), feasible.mean(0), directions * 2 * np.sqrt(variance))


# ---------------------------------------------------------------------------------------------------------
# Motion signals
# ---------------------------------------------------------------------------------------------------------


def _noise(rng: np.random.Generator, t: np.ndarray, low: float = 0.05, high: float = 0.4, parts: int = 3):
    """Smooth random signal ``(T,)`` in [-1, 1]: a sum of sinusoids with frequencies in [low, high] Hz."""
    freq, phase = rng.uniform(low, high, parts), rng.uniform(0, 2 * np.pi, parts)
    weight = rng.uniform(0.5, 1, parts)
    return np.sin(2 * np.pi * freq * t[:, None] + phase) @ weight / weight.sum()


def _unit_noise(rng: np.random.Generator, t: np.ndarray, low: float = 0.05, high: float = 0.4):
    """Like :func:`_noise`, mapped to [0, 1]."""
    return 0.5 + 0.5 * _noise(rng, t, low, high)


def _cycle(rng: np.random.Generator, t: np.ndarray, period: tuple[float, float]) -> np.ndarray:
    """Position ``(T,)`` in [0, 1) within an episode repeating every ``period`` (drawn in range) seconds."""
    return (t / rng.uniform(*period) + rng.uniform()) % 1.0


def _window(x: np.ndarray, start: float, stop: float, ramp: float = 0.12) -> np.ndarray:
    """Smooth 0 -> 1 -> 0 over the cycle interval [start, stop], with smoothstep ramps of width ``ramp``."""
    rise = np.clip((x - start) / ramp, 0, 1)
    fall = np.clip((stop - x) / ramp, 0, 1)
    level = np.minimum(rise, fall)
    return level * level * (3 - 2 * level)


def _drift(rng, t: np.ndarray, volume: CaptureVolume, scale: float, wander: float = 0.25) -> np.ndarray:
    """A spot anywhere in ``scale`` x 3/4 of the volume's ellipse plus a slow wander: ``(T, 2)`` metres."""
    radius, angle = 0.75 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)  # uniform over the disk
    spot = radius * np.array([np.cos(angle), np.sin(angle)])
    walk = np.stack([_noise(rng, t, 0.02, 0.1), _noise(rng, t, 0.02, 0.1)], axis=-1)
    return (scale * (spot + wander * walk)) @ volume.axes.T


def _stance(a: JointAngles, rng: np.random.Generator, t: np.ndarray) -> None:
    """Relaxed standing: soft knees, weight shifting from foot to foot, arms hanging, head looking around."""
    knee = 4 + 3 * _noise(rng, t, 0.05, 0.2)
    a.both("knee", flexion=knee)
    a.both("ankle", flexion=knee / 2)
    a.both("hip", flexion=knee / 2)
    # Both legs lean the same way, so the pelvis sways sideways over the feet.
    sway = 3 * _noise(rng, t, 0.05, 0.25)
    a.add("left_hip", abduction=sway)
    a.add("right_hip", abduction=-sway)
    a.add("lower_spine", abduction=sway / 2, twist=8 * _noise(rng, t))
    a.add("thorax", flexion=5 * _noise(rng, t), twist=20 * _noise(rng, t, 0.05, 0.3))
    a.add("head", flexion=6 * _noise(rng, t))
    for side in _SIDES:
        a.add(f"{side}_shoulder", flexion=4 * _noise(rng, t), abduction=9 + 2 * _noise(rng, t))
        a.add(f"{side}_elbow", flexion=14 + 6 * _noise(rng, t))
        a.add(f"{side}_wrist", flexion=5 * _noise(rng, t))


def _facing(rng: np.random.Generator, t: np.ndarray, swing: float) -> np.ndarray:
    """Yaw ``(T,)`` degrees: a random heading plus slow turns of about ``swing`` degrees."""
    return rng.uniform(0, 360) + swing * _noise(rng, t, 0.02, 0.12)


# ---------------------------------------------------------------------------------------------------------
# Motion kinds: each returns a MotionPlan for times t (seconds); `scale` in (0, 1] shrinks its path.
# ---------------------------------------------------------------------------------------------------------


def _ellipse_walk(t, rng, volume: CaptureVolume, scale: float, speed: np.ndarray):
    """Walk around the volume's ellipse at ``speed`` ``(T,)`` m/s: path ``(T, 2)`` metres, heading degrees."""
    theta = np.linspace(0, 2 * np.pi, 1025)
    axes = volume.axes * rng.uniform(0.7, 1.0, 2)  # each take walks its own ellipse
    loop = scale * np.stack([np.cos(theta), np.sin(theta)], axis=-1) @ axes.T
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(loop, axis=0), axis=-1))])
    direction = rng.choice([-1.0, 1.0])
    distance = (rng.uniform(0, arc[-1]) + direction * np.cumsum(speed) / FPS) % arc[-1]
    path = np.stack([np.interp(distance, arc, loop[:, k]) for k in range(2)], axis=-1)
    velocity = np.gradient(path, axis=0)
    return path, np.degrees(np.unwrap(np.arctan2(velocity[:, 1], velocity[:, 0])))


def _walking(t, rng, body, volume, scale, speed=1.0, arm_swing=1.0, stop_and_go=False) -> MotionPlan:
    """Walk around an ellipse, arms swinging against the legs, looking around."""
    a = JointAngles(len(t))
    pace = rng.uniform(1.1, 1.4) * speed * (1 + 0.1 * _noise(rng, t, 0.05, 0.2))
    if stop_and_go:  # a dog on the leash sets the pace
        pace = pace * (0.7 + 0.3 * _noise(rng, t, 0.1, 0.3))
    path, heading = _ellipse_walk(t, rng, volume, scale, pace)
    stride = rng.uniform(0.72, 0.82) * body.height
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.cumsum(pace / stride) / FPS
    legs, arms = rng.uniform(0.85, 1.15), arm_swing * rng.uniform(0.7, 1.3)  # this take's gait amplitudes
    for side, leg in (("left", phase), ("right", phase + np.pi)):
        a.add(f"{side}_hip", flexion=8 + 20 * legs * np.sin(leg), abduction=2)
        a.add(f"{side}_knee", flexion=6 + 55 * legs * ((1 + np.cos(leg - 0.4)) / 2) ** 3)  # swing-phase bend
        a.add(f"{side}_ankle", flexion=6 * np.cos(leg) - 2)
        # Each arm swings with the opposite leg; the elbow bends more as the arm comes forward.
        a.add(f"{side}_shoulder", flexion=4 - 18 * arms * np.sin(leg), abduction=8)
        a.add(f"{side}_elbow", flexion=15 + 10 * arms * (1 - np.sin(leg)))
    a.add("spine", flexion=3, twist=7 * np.sin(phase))  # shoulders counter-rotate against the pelvis
    a.add("thorax", twist=15 * _noise(rng, t), flexion=4 * _noise(rng, t))
    yaw = heading - 5 * np.sin(phase)
    return MotionPlan(a, yaw, np.full(len(t), 3.0), path, "pelvis")


def _turning(t, rng, body, volume, scale) -> MotionPlan:
    """Turn on the spot with small steps, pointing one arm out now and then (giving directions)."""
    a = JointAngles(len(t))
    _stance(a, rng, t)
    yaw = _facing(rng, t, 120)
    turn_rate = np.abs(np.gradient(yaw)) * FPS  # degrees per second
    step = np.clip(turn_rate / 60, 0, 1)
    phase = 2 * np.pi * rng.uniform(1.6, 2.0) * t + rng.uniform(0, 2 * np.pi)
    for side, leg in (("left", phase), ("right", phase + np.pi)):
        lift = step * np.clip(np.sin(leg), 0, None)
        a.add(f"{side}_hip", flexion=25 * lift)
        a.add(f"{side}_knee", flexion=45 * lift)
    side = str(rng.choice(_SIDES))
    point = _window(_cycle(rng, t, (3.0, 6.0)), 0.1, 0.55) * rng.uniform(0.7, 1.1)
    a.add(f"{side}_shoulder", flexion=80 * point, abduction=20 * point)
    a.add("thorax", twist=(20 if side == "left" else -20) * point)
    return MotionPlan(a, yaw, np.zeros(len(t)), _drift(rng, t, volume, scale), "feet")


def _gestures(t, rng, body, volume, scale, wave=False, phone=False) -> MotionPlan:
    """Talk with the hands; optionally wave and bow (greeting) or hold a phone to the ear."""
    a = JointAngles(len(t))
    _stance(a, rng, t)
    for side in _SIDES:
        raise_, turn, bend = (_unit_noise(rng, t, 0.15, 0.6) for _ in range(3))
        a.add(f"{side}_shoulder", flexion=30 * raise_, abduction=15 * _unit_noise(rng, t), twist=-25 * turn)
        a.add(f"{side}_elbow", flexion=65 * bend)
    a.add("spine", flexion=5 * _noise(rng, t))
    cycle = _cycle(rng, t, (4.0, 8.0))
    if wave:
        up = _window(cycle, 0.05, 0.4) * rng.uniform(0.8, 1.1)
        a.add("right_shoulder", flexion=95 * up, abduction=30 * up)
        a.add("right_elbow", flexion=up * (55 + 25 * np.sin(2 * np.pi * 2.2 * t)))
        a.add("lower_spine", flexion=25 * _window(cycle, 0.55, 0.8))
    if phone:
        ear = _window(cycle, 0.1, 0.8)
        a.add("right_shoulder", flexion=25 * ear, abduction=35 * ear, twist=-40 * ear)
        a.add("right_elbow", flexion=110 * ear)
    return MotionPlan(a, _facing(rng, t, 40), np.zeros(len(t)), _drift(rng, t, volume, scale), "feet")


def _bending(t, rng, body, volume, scale) -> MotionPlan:
    """Bend down to pick something up and straighten again (purchases)."""
    a = JointAngles(len(t))
    _stance(a, rng, t)
    bend = _window(_cycle(rng, t, (3.5, 6.0)), 0.1, 0.6) * rng.uniform(0.7, 1.15)
    a.add("lower_spine", flexion=25 * bend)
    a.add("spine", flexion=15 * bend)
    a.add("thorax", flexion=-10 * bend)
    _legs(a, thigh=20 * bend, knee=40 * bend)
    a.both("shoulder", flexion=70 * bend)
    return MotionPlan(a, _facing(rng, t, 50), 35 * bend, _drift(rng, t, volume, scale), "feet")


def _legs(a: JointAngles, thigh, knee, abduction=0.0) -> None:
    """Thighs ``thigh`` degrees forward of vertical, knees bent ``knee``, feet flat on the floor."""
    a.both("hip", flexion=thigh, abduction=abduction)
    a.both("knee", flexion=knee)
    a.both("ankle", flexion=knee - thigh)


def _sitting(t, rng, body, volume, scale) -> MotionPlan:
    """Sit on a chair, leaning and shifting, bringing a hand to the mouth now and then (eating, phoning)."""
    a = JointAngles(len(t))
    thigh = 85 + 5 * _noise(rng, t)
    for side in _SIDES:
        knee = 85 + 20 * _noise(rng, t, 0.03, 0.15)
        a.add(f"{side}_hip", flexion=thigh, abduction=6 + 4 * _noise(rng, t))
        a.add(f"{side}_knee", flexion=knee)
        a.add(f"{side}_ankle", flexion=knee - thigh)
        a.add(f"{side}_shoulder", flexion=25 + 8 * _noise(rng, t), abduction=8)
        a.add(f"{side}_elbow", flexion=55 + 10 * _noise(rng, t))
    side = str(rng.choice(_SIDES))
    mouth = _window(_cycle(rng, t, (3.0, 6.0)), 0.1, 0.5)
    a.add(f"{side}_shoulder", flexion=15 * mouth, abduction=20 * mouth, twist=-30 * mouth)
    a.add(f"{side}_elbow", flexion=75 * mouth)
    a.add("lower_spine", flexion=8 + 8 * _noise(rng, t), twist=8 * _noise(rng, t))
    a.add("thorax", twist=20 * _noise(rng, t))
    a.add("head", flexion=8 * _noise(rng, t))
    pitch = -5 + 8 * _noise(rng, t)
    return MotionPlan(a, _facing(rng, t, 10), pitch, _drift(rng, t, volume, scale, wander=0.03), "pelvis")


def _crouching(t, rng, body, volume, scale) -> MotionPlan:
    """Crouch down, stay low for a while, stand up again (sitting down)."""
    a = JointAngles(len(t))
    _stance(a, rng, t)
    down = _window(_cycle(rng, t, (5.0, 8.0)), 0.1, 0.7, ramp=0.15) * rng.uniform(0.75, 1.05)
    _legs(a, thigh=95 * down, knee=125 * down)
    a.add("lower_spine", flexion=10 * down)
    a.add("thorax", flexion=-20 * down)
    a.both("shoulder", flexion=45 * down)
    a.both("elbow", flexion=30 * down)
    return MotionPlan(a, _facing(rng, t, 40), 35 * down, _drift(rng, t, volume, scale), "feet")


def _reaching(t, rng, body, volume, scale) -> MotionPlan:
    """Raise a camera to the face with both hands, then reach forward and up with one arm (photo)."""
    a = JointAngles(len(t))
    _stance(a, rng, t)
    cycle = _cycle(rng, t, (4.0, 7.0))
    shoot = _window(cycle, 0.05, 0.45) * rng.uniform(0.85, 1.1)
    a.both("shoulder", flexion=70 * shoot, abduction=20 * shoot, twist=-45 * shoot)
    a.both("elbow", flexion=100 * shoot)
    a.add("spine", flexion=-5 * shoot)
    side = str(rng.choice(_SIDES))
    reach = _window(cycle, 0.55, 0.9)
    a.add(f"{side}_shoulder", flexion=100 * reach, abduction=10 * reach)
    a.add("lower_spine", twist=(15 if side == "right" else -15) * reach)
    return MotionPlan(a, _facing(rng, t, 60), np.zeros(len(t)), _drift(rng, t, volume, scale), "feet")


MOTION_KINDS: dict[str, Callable[..., MotionPlan]] = {
    "walking": _walking,
    "turning": _turning,
    "gestures": _gestures,
    "bending": _bending,
    "sitting": _sitting,
    "crouching": _crouching,
    "reaching": _reaching,
}
"""Motion generators by kind: ``(t, rng, body, volume, scale, **style) -> MotionPlan``."""


@dataclass(frozen=True)
class ActionSpec:
    """How to synthesise one dataset action: a motion kind and its style arguments."""

    kind: str
    style: Mapping[str, object] = field(default_factory=dict)


H36M_ACTIONS: dict[str, ActionSpec] = {
    "Directions": ActionSpec("turning"),
    "Discussion": ActionSpec("gestures"),
    "Eating": ActionSpec("sitting"),
    "Greeting": ActionSpec("gestures", {"wave": True}),
    "Phoning": ActionSpec("gestures", {"phone": True}),
    "Photo": ActionSpec("reaching"),
    "Posing": ActionSpec("reaching"),
    "Purchases": ActionSpec("bending"),
    "Sitting": ActionSpec("sitting"),
    "SittingDown": ActionSpec("crouching"),
    "Smoking": ActionSpec("gestures", {"phone": True}),
    "Waiting": ActionSpec("gestures"),
    "WalkDog": ActionSpec("walking", {"stop_and_go": True}),
    "Walking": ActionSpec("walking"),
    "WalkTogether": ActionSpec("walking", {"speed": 0.8, "arm_swing": 0.5}),
}
"""The Human3.6M action names this generator knows, mapped to motion kinds."""

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


def take_names(action: str, takes: int) -> list[str]:
    """Human3.6M action keys of ``takes`` sub-actions: ``"Walking"``, ``"Walking 1"``, ..."""
    return [action] + [f"{action} {k}" for k in range(1, takes)]


def generate_subject_motions(
    subject: str,
    actions: Sequence[str],
    frames: int,
    volume: CaptureVolume,
    seed: int = 0,
    takes: int = 2,
    frame_jitter: float = 0.2,
    specs: Mapping[str, ActionSpec] = H36M_ACTIONS,
) -> dict[str, np.ndarray]:
    """All takes of one subject: action key -> world positions ``(T, joints, 3)``, :data:`BODY` order, metres.

    Each take lasts ``frames`` frames give or take ``frame_jitter`` (relative) and draws its own phase, speed,
    amplitude and path from ``(seed, subject, action key)``.
    """
    body = subject_body(subject, seed)
    motions = {}
    for action in actions:
        if action not in specs:
            raise ValueError(f"unknown action {action!r}; known: {sorted(specs)}")
        for key in take_names(action, takes):
            rng = _rng(seed, "motion", subject, key)
            length = int(round(frames * rng.uniform(1 - frame_jitter, 1 + frame_jitter)))
            motions[key] = simulate_motion(specs[action], length, body, volume, rng)
    return motions


def to_layout(positions: np.ndarray, layout: Skeleton, coincident: Mapping[str, str] | None = None) -> np.ndarray:
    """:data:`BODY` positions ``(..., joints, 3)`` -> ``layout`` ``(..., layout joints, 3)``, by joint name.

    ``coincident`` moves joints onto others first (joint -> the joint it must coincide with).
    """
    positions = np.array(positions)
    for joint, target in (coincident or {}).items():
        positions[..., BODY.index(joint), :] = positions[..., BODY.index(target), :]
    return layout.convert_from(BODY, positions)


# ---------------------------------------------------------------------------------------------------------
# Detector noise
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorNoise:
    """Error model of a 2D detector (pixels, frames).

    Attributes:
        jitter_px: standard deviation of the per-coordinate Gaussian jitter.
        outlier_rate, outlier_px: fraction of points with an extra error of this standard deviation.
        swap_rate: starts per frame of a left/right swap of one limb (``swap_limbs``); lasts ``swap_frames``.
        hold_rate: starts per frame and joint of a dropped joint that keeps its last detected position.
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


def _episodes(rng, shape: tuple[int, ...], rate: float, length: tuple[int, int]) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------------------------
# Human3.6M files
# ---------------------------------------------------------------------------------------------------------

H36M_COINCIDENT_JOINTS = {"lower_spine": "pelvis", "left_clavicle": "thorax", "right_clavicle": "thorax"}
"""Static duplicates of the recorded Human3.6M skeleton, reproduced in the synthetic ``(T, 32, 3)`` data."""


@dataclass(frozen=True)
class SyntheticSize:
    """A dataset size: ``takes`` sub-actions of each action, ``frames`` frames each (+- ``frame_jitter``)."""

    actions: tuple[str, ...]
    frames: int
    takes: int = 2
    frame_jitter: float = 0.2


SIZES: dict[str, SyntheticSize] = {
    "tiny": SyntheticSize(("Directions", "Walking"), frames=200),
    "default": SyntheticSize(
        ("Directions", "Discussion", "Greeting", "Photo", "Purchases", "Sitting", "SittingDown", "Walking"),
        frames=1200,
    ),
}


def synthetic_size(size: str) -> SyntheticSize:
    """Look a size up, naming the valid ones when it is unknown."""
    try:
        return SIZES[size]
    except KeyError:
        raise ValueError(f"unknown synthetic dataset size {size!r}; valid: {', '.join(SIZES)}") from None


@dataclass(frozen=True)
class SynthesisSummary:
    """What :func:`synthesize_h36m` wrote: per-subject counts, sources, and file sizes in bytes."""

    directory: Path
    size: str
    seed: int
    subjects: tuple[str, ...]
    actions: Mapping[str, int]
    frames: Mapping[str, int]
    sources: tuple[str, ...]
    file_sizes: Mapping[str, int]

    @property
    def total_frames(self) -> int:
        return sum(self.frames.values())

    def format(self) -> str:
        """A short table: one line per subject, then the files."""
        lines = [f"synthetic Human3.6M ({self.size}, seed {self.seed}) in {self.directory}"]
        lines += [f"  {'subject':<8}{'actions':>8}{'frames':>9}"]
        lines += [f"  {s:<8}{self.actions[s]:>8}{self.frames[s]:>9}" for s in self.subjects]
        lines += [f"  {'total':<8}{sum(self.actions.values()):>8}{self.total_frames:>9}  (50 fps, 4 cameras)"]
        lines += [f"  {name:<28}{size / 2**20:>8.1f} MiB" for name, size in self.file_sizes.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def h36m_keypoints_2d(world_32: np.ndarray, cameras: Sequence[CameraParameters]) -> list[np.ndarray]:
    """Project ``(T, 32, 3)`` world metres into each camera: a list of ``(T, 17, 2)`` float32 pixel arrays."""
    points = H36M_17.convert_from(H36M_32, world_32)
    return list(project_to_pixels(points, cameras)[0].astype(np.float32))


def _metadata(layout_name: str | None) -> dict:
    symmetry = [list(H36M_17.left), list(H36M_17.right)]
    metadata = {"num_joints": H36M_17.num_joints, "keypoints_symmetry": symmetry}
    return metadata if layout_name is None else {"layout_name": layout_name, **metadata}


def _synthesize_arrays(spec: SyntheticSize, seed: int) -> tuple[dict, dict]:
    """The dictionaries of the three files: ``positions_3d`` and ``positions_2d`` per source."""
    positions_3d, positions_2d = {}, {source: {} for source in SYNTHETIC_2D_SOURCES}
    for subject in H36M_SUBJECTS:
        cameras = h36m_cameras(subject)
        motions = generate_subject_motions(
            subject, spec.actions, spec.frames, capture_volume(cameras), seed, spec.takes, spec.frame_jitter
        )
        positions_3d[subject] = {}
        for source in SYNTHETIC_2D_SOURCES:
            positions_2d[source][subject] = {}
        for action, motion in motions.items():
            world = to_layout(motion, H36M_32, H36M_COINCIDENT_JOINTS).astype(np.float32)
            exact = h36m_keypoints_2d(world, cameras)
            positions_3d[subject][action] = world
            positions_2d["gt"][subject][action] = exact
            positions_2d["noisy"][subject][action] = [
                corrupt_keypoints(view, H36M_17, _rng(seed, "noisy", subject, action, camera.id)).points
                for view, camera in zip(exact, cameras, strict=True)
            ]
    return positions_3d, positions_2d


@contextmanager
def _one_torch_thread():
    """Run torch on one thread for the duration (the previous setting comes back afterwards).

    The projections are small tensors: on a busy two-core machine two threads spend more time waiting for
    each other than computing (measured: ``tiny`` took 10 s instead of 2 s).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def synthesize_h36m(out_dir: str | Path, size: str = "default", seed: int = 0) -> SynthesisSummary:
    """Write ``data_3d_h36m.npz`` and ``data_2d_h36m_{gt,noisy}.npz`` for S1, S5-S9, S11 into ``out_dir``.

    Deterministic in ``(size, seed)``. Each file is written atomically (temporary file + rename).
    """
    spec = synthetic_size(size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _one_torch_thread():
        positions_3d, positions_2d = _synthesize_arrays(spec, seed)
    contents = {
        FILE_3D: {"positions_3d": positions_3d},
        file_2d("gt"): {"positions_2d": positions_2d["gt"], "metadata": _metadata(None)},
        file_2d("noisy"): {"positions_2d": positions_2d["noisy"], "metadata": _metadata("h36m")},
    }
    # Compression dominates the run time and zlib releases the GIL: write the files side by side.
    with ThreadPoolExecutor(len(contents)) as pool:
        list(pool.map(lambda name: _save_npz_atomic(out_dir / name, **contents[name]), contents))
    return SynthesisSummary(
        directory=out_dir,
        size=size,
        seed=seed,
        subjects=tuple(positions_3d),
        actions={s: len(actions) for s, actions in positions_3d.items()},
        frames={s: sum(len(a) for a in actions.values()) for s, actions in positions_3d.items()},
        sources=SYNTHETIC_2D_SOURCES,
        file_sizes={name: (out_dir / name).stat().st_size for name in contents},
    )


def _is_complete(directory: Path) -> bool:
    names = [FILE_3D, *(file_2d(source) for source in SYNTHETIC_2D_SOURCES)]
    return all((directory / name).is_file() for name in names)


def ensure_synthetic_h36m(cache_dir: str | Path, size: str = "default", seed: int = 0) -> Path:
    """Return ``cache_dir / f"synthetic_h36m_{size}_seed{seed}"``, generating it first if it is not complete.

    Generation goes to a temporary sibling directory renamed into place at the end, so an interrupted run
    never leaves a half-written dataset; concurrent callers (e.g. DDP ranks) keep whichever finished first.
    """
    synthetic_size(size)  # fail on an unknown size before touching the disk
    target = Path(cache_dir) / f"synthetic_h36m_{size}_seed{seed}"
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        synthesize_h36m(staging, size, seed)
        # Renamed datasets are complete, so an incomplete one was damaged by hand: ours replaces it.
        if target.exists() and not _is_complete(target):
            shutil.rmtree(target)
        try:
            os.rename(staging, target)
        except OSError:
            if not _is_complete(target):  # not another caller finishing first: a real error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _save_npz_atomic(path: Path, **arrays) -> None:
    """``np.savez_compressed`` to a temporary file beside ``path``, then rename it into place."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez_compressed(file, **arrays)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator fixed by ``seed`` and string ``keys`` (CRC32: stable across processes, unlike ``hash``)."""
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return np.random.default_rng([seed, *(zlib.crc32(key.encode()) for key in keys)])
