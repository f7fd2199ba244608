"""One continuous recording made of several motion kinds, blended into each other.

A dataset whose recordings are long sessions of varied activity (MPI-INF-3DHP) simulates one take per
activity with :func:`~datamodules.synthetic.motions.simulate_motion` and joins consecutive takes here. The
join turns the body from one take's heading to the next, slides the pelvis between their places and blends
the poses in the body's own frame, keeping every bone at its length, so no frame jumps. Positions are in
:data:`BODY` order, world metres, z up, at the engine's 50 fps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from datamodules.synthetic.body import BODY, CONTACT_JOINTS, BodyShape, axis_rotation
from datamodules.synthetic.motions import ActionSpec, simulate_motion
from datamodules.synthetic.signals import FPS
from datamodules.synthetic.volume import CaptureVolume

BLEND_SECONDS = 1.0
"""Longest blend between two consecutive takes, seconds (shorter when the takes are short)."""


@dataclass(frozen=True, eq=False)
class Recording:
    """A recording: world positions and which segment (take) each frame belongs to.

    Attributes:
        positions: ``(T, joints, 3)`` :data:`BODY` order, world metres, z up, 50 fps.
        segment: ``(T,)`` int index into the recording's list of specs; a blend switches at its middle.
    """

    positions: np.ndarray
    segment: np.ndarray


def segment_lengths(frames: int, count: int, blend: int, rng: np.random.Generator) -> np.ndarray:
    """Lengths ``(count,)`` of ``count`` takes that cover ``frames`` frames when consecutive takes overlap by
    ``blend`` frames; each lies within +-20 % of the mean."""
    total = frames + (count - 1) * blend
    weights = rng.uniform(0.8, 1.2, count)
    lengths = np.floor(weights / weights.sum() * total).astype(np.int64)
    lengths[-1] += total - lengths.sum()
    return lengths


def simulate_recording(
    specs: Sequence[ActionSpec],
    frames: int,
    body: BodyShape,
    volume: CaptureVolume,
    rng: np.random.Generator,
) -> Recording:
    """``frames`` frames of ``body`` doing ``specs`` in turn, each take blended into the next.

    Every take is kept in the cameras' view by :func:`simulate_motion`; a blend whose frames would leave the
    view is replaced by a cut at its middle (rare: both ends of a blend are in view).
    """
    count = len(specs)
    blend = int(min(BLEND_SECONDS * FPS, frames // (3 * count)))
    lengths = segment_lengths(frames, count, blend, rng)
    takes = [simulate_motion(spec, int(length), body, volume, rng) for spec, length in zip(specs, lengths, strict=True)]
    positions = takes[0]
    for take in takes[1:]:
        positions = join_takes(positions, take, blend, volume)
    starts = np.cumsum(lengths[:-1] - blend)  # where each later take's blend begins
    segment = np.searchsorted(starts + blend // 2, np.arange(frames), side="right")
    return Recording(positions=positions, segment=segment)


def join_takes(first: np.ndarray, second: np.ndarray, blend: int, volume: CaptureVolume) -> np.ndarray:
    """``first`` then ``second`` ``(T, joints, 3)``, overlapping by ``blend`` frames: ``(T1 + T2 - blend, joints, 3)``.

    Over the overlap the weight of ``second`` rises smoothly from 0 to 1 (see module docstring).
    """
    if blend == 0:
        return np.concatenate([first, second])
    weight = np.linspace(0.0, 1.0, blend + 2)[1:-1, None]
    weight = weight * weight * (3 - 2 * weight)  # smoothstep
    mixed = _blend_poses(first[-blend:], second[:blend], weight)
    if not volume.sees(mixed).all():
        mixed = np.concatenate(
            [first[len(first) - blend : len(first) - blend + blend // 2], second[blend // 2 : blend]]
        )
    return np.concatenate([first[:-blend], mixed, second[blend:]])


def _blend_poses(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Blend ``(T, joints, 3)`` poses with ``weight`` ``(T, 1)`` of ``b``: heading, pelvis and body-frame pose."""
    (root_a, heading_a, local_a), (root_b, heading_b, local_b) = _body_frame(a), _body_frame(b)
    # The turn from a's heading to b's takes the short way, fixed at the middle so it never flips mid-blend.
    turn = _wrap(heading_b - heading_a)
    middle = turn[len(turn) // 2]
    turn = middle + _wrap(turn - middle)
    heading = heading_a + weight[:, 0] * turn
    local = _blend_bones(local_a, local_b, weight)
    positions = (
        local @ axis_rotation(2, heading).transpose(0, 2, 1) + ((1 - weight) * root_a + weight * root_b)[:, None]
    )
    # Ground contact as in the takes: the lowest heel or toe touches the floor.
    positions[..., 2] -= positions[:, list(BODY.indices(CONTACT_JOINTS)), 2].min(axis=1, keepdims=True)
    return positions


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Angles in radians wrapped to [-pi, pi)."""
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _body_frame(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``(T, joints, 3)`` world positions into pelvis ``(T, 3)``, heading ``(T,)`` radians about z and the
    pose ``(T, joints, 3)`` relative to the pelvis, turned by minus the heading.

    The heading is the direction of the right hip -> left hip line in the floor plane (any body-fixed
    direction works: only differences of headings are used).
    """
    root = positions[:, BODY.root]
    left, right = BODY.index("left_hip"), BODY.index("right_hip")
    across = positions[:, left, :2] - positions[:, right, :2]
    heading = np.arctan2(across[:, 1], across[:, 0])
    local = (positions - root[:, None]) @ axis_rotation(2, heading)  # row vectors: p @ R == R^T p
    return root, heading, local


def _blend_bones(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Blend two poses ``(T, joints, 3)`` bone by bone, ``weight`` ``(T, 1)`` of ``b``.

    Each bone turns from its direction in ``a`` to its direction in ``b`` at a steady angular speed (spherical
    interpolation), so it keeps its length and never swings through the parent joint, as averaging positions
    would when the two directions are far apart.
    """
    result = np.zeros_like(a)
    result[:, BODY.root] = (1 - weight) * a[:, BODY.root] + weight * b[:, BODY.root]
    for joint, parent in enumerate(BODY.parents):  # parents come first, so each parent is already placed
        if parent < 0:
            continue
        bone_a, bone_b = a[:, joint] - a[:, parent], b[:, joint] - b[:, parent]
        length_a, length_b = (np.linalg.norm(bone, axis=-1, keepdims=True) for bone in (bone_a, bone_b))
        direction = _slerp(bone_a / np.maximum(length_a, 1e-12), bone_b / np.maximum(length_b, 1e-12), weight)
        result[:, joint] = result[:, parent] + ((1 - weight) * length_a + weight * length_b) * direction
    return result


def _slerp(u: np.ndarray, v: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Unit vectors ``(T, 3)`` a fraction ``weight`` ``(T, 1)`` of the way along the great circle from ``u`` to
    ``v``; (nearly) equal or opposite vectors, where that circle is undefined, are averaged instead."""
    angle = np.arccos(np.clip((u * v).sum(axis=-1, keepdims=True), -1.0, 1.0))
    sine = np.sin(angle)
    degenerate = sine < 1e-6
    sine = np.where(degenerate, 1.0, sine)
    arc = (np.sin((1 - weight) * angle) * u + np.sin(weight * angle) * v) / sine
    mixed = np.where(degenerate, (1 - weight) * u + weight * v, arc)
    return mixed / np.maximum(np.linalg.norm(mixed, axis=-1, keepdims=True), 1e-12)
