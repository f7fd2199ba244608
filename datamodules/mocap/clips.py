"""One motion-capture file -> Human3.6M joints in metres, z up, at 50 fps.

The steps, each vectorised over frames: read (BVH or TRC), compute the mapped joints (forward kinematics for
BVH, marker combinations for TRC), scale to metres (the file's units, or guessed from the leg length), turn the
up axis into +z (given, or found from the feet-to-head direction), resample to 50 fps by linear interpolation,
and fill the Human3.6M-32 joints a mapping leaves out from their nearest mapped ancestor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.skeleton import H36M_32
from datamodules.mocap.bvh import BvhMotion, forward_kinematics, read_bvh
from datamodules.mocap.errors import MocapFormatError
from datamodules.mocap.mapping import JointMapping, bare_name, detect_mapping
from datamodules.mocap.trc import read_trc

TARGET_FPS = 50.0
UNIT_SCALES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": 0.0254 / 0.45}
"""Metres per file unit; ``cmu``: the CMU database's ASF length unit (1/0.45 inch), kept by its BVH conversions."""
LEG_LENGTH_M = 0.85  # hip -> knee -> ankle of an adult, for guessing units
AXES = ("x", "y", "z")
FORMATS = (".bvh", ".trc")


@dataclass(frozen=True)
class Clip:
    """A converted clip.

    Attributes:
        path: the source file.
        world: ``(T, 32, 3)`` float64 Human3.6M-32 joints, metres, z up, at :data:`TARGET_FPS`.
        mapping: name of the joint mapping used; ``mapped``: the targets it gives (the rest are filled).
        units: the file's unit (``"cm"`` ...), ``up``: its up axis (``"+y"`` ...), ``source_fps``: its rate.
    """

    path: Path
    world: np.ndarray
    mapping: str
    mapped: tuple[str, ...]
    units: str
    up: str
    source_fps: float

    def __len__(self) -> int:
        return len(self.world)


def load_clip(
    path: str | Path,
    mapping: JointMapping | None = None,
    units: str = "auto",
    up: str = "auto",
    start: float | None = None,
    end: float | None = None,
) -> Clip:
    """Read and convert one BVH or TRC file (see the module docstring).

    Args:
        mapping: the joint mapping (None: the first built-in one that fits the file).
        units: the file's length unit (a key of :data:`UNIT_SCALES`), or ``"auto"`` (TRC: its header; BVH: the
            unit that makes the legs about 0.85 m long).
        up: ``"+y"``, ``"-z"``, ... or ``"auto"`` (the axis of the mean feet-to-head direction).
        start, end: seconds of the file to keep (None: from the start / to the end).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise MocapFormatError(f"{path}: unknown motion-capture format {suffix!r} (known: {', '.join(FORMATS)})")
    if units != "auto" and units not in UNIT_SCALES:
        raise MocapFormatError(f"--units {units!r}: known units are auto, {', '.join(UNIT_SCALES)}")
    if suffix == ".bvh":
        raw, fps, mapping, file_units = _bvh_joints(read_bvh(path), mapping, start, end)
    else:
        raw, fps, mapping, file_units = _trc_joints(path, mapping, start, end)
    units = file_units if units == "auto" and file_units else units
    if units == "auto":
        units = guess_units(path, raw, list(mapping.sources))
    world = fill_unmapped(_extend_bones(raw * UNIT_SCALES[units], _extensions(mapping)), mapping)
    up = find_up_axis(path, world) if up == "auto" else _check_axis(up)
    world = resample(to_z_up(world, up), fps, TARGET_FPS)
    return Clip(path, world, mapping.name, tuple(mapping.sources), units, up, fps)


def _frames(path: Path, count: int, fps: float, start: float | None, end: float | None) -> slice:
    first = 0 if start is None else int(math.ceil(start * fps - 1e-9))
    stop = count if end is None else min(count, int(math.floor(end * fps + 1e-9)) + 1)
    if not 0 <= first < stop - 1:
        raise MocapFormatError(
            f"{path}: the time window {start}-{end} s keeps fewer than 2 of its {count} frames ({count / fps:.2f} s)"
        )
    return slice(first, stop)


def _bvh_joints(motion: BvhMotion, mapping, start, end):
    """Per-source-joint positions ``(T, K, 3)`` in file units, plus the ``extend`` parents' positions."""
    skeleton = motion.skeleton
    mapping = detect_mapping(motion.path, skeleton.names, mapping)
    actual = {bare_name(name): name for name in skeleton.names}
    extended = [s.names[0] for s in mapping.sources.values() if s.extend]
    parents = [bare_name(skeleton.names[skeleton.parents[skeleton.index(actual[name])]]) for name in extended]
    names = sorted(mapping.source_names | set(parents))
    window = _frames(motion.path, len(motion), motion.fps, start, end)
    clipped = BvhMotion(motion.path, skeleton, motion.frame_time, motion.motion[window])
    positions = forward_kinematics(clipped, [actual[name] for name in names])
    raw = _combine(mapping, names, positions, parents)
    return raw, motion.fps, mapping, None


def _trc_joints(path: Path, mapping, start, end):
    markers = read_trc(path)
    mapping = detect_mapping(path, markers.names, mapping)
    if any(source.extend for source in mapping.sources.values()):
        raise MocapFormatError(f"{path}: mapping {mapping.name!r} extends bones, which markers do not have")
    actual = {bare_name(name): name for name in markers.names}
    names = sorted(mapping.source_names)
    window = _frames(path, len(markers), markers.rate, start, end)
    positions = np.stack([markers.marker(actual[name])[window] for name in names], axis=1)
    return _combine(mapping, names, positions, []), markers.rate, mapping, markers.units


def _combine(mapping: JointMapping, names: list[str], positions: np.ndarray, parents: list[str]) -> np.ndarray:
    """``(T, targets + extension parents, 3)``: each target as its weighted sum, in mapping order, then the
    parent of each extended target (used by :func:`_extend_bones`, dropped there)."""
    index = {name: k for k, name in enumerate(names)}
    targets = [sum(w * positions[:, index[n]] for n, w in source.weights) for source in mapping.sources.values()]
    extras = [positions[:, index[parent]] for parent in parents]
    return np.stack(targets + extras, axis=1)


def _extensions(mapping: JointMapping) -> list[tuple[int, int, float]]:
    """``(target, parent column, metres)`` for every extended target (parents follow the targets)."""
    targets = list(mapping.sources)
    extended = [joint for joint in targets if mapping.sources[joint].extend]
    return [(targets.index(j), len(targets) + k, mapping.sources[j].extend) for k, j in enumerate(extended)]


def _extend_bones(world: np.ndarray, extensions: list[tuple[int, int, float]]) -> np.ndarray:
    """Move each extended target along its bone (parent -> joint) by its length in metres; drop the parents."""
    out = world.copy()
    for target, parent, metres in extensions:
        bone = world[:, target] - world[:, parent]
        out[:, target] += metres * bone / np.maximum(np.linalg.norm(bone, axis=-1, keepdims=True), 1e-9)
    count = len(world[0]) - len(extensions)
    return out[:, :count]


def guess_units(path: Path, raw: np.ndarray, columns: list[str]) -> str:
    """The unit of :data:`UNIT_SCALES` that makes the mean leg (hip -> knee -> ankle) closest to 0.85 m;
    ``raw`` ``(T, K, 3)`` holds the joints named by ``columns``."""
    leg = _leg_length(raw, columns)
    best = min(UNIT_SCALES, key=lambda unit: abs(math.log(leg * UNIT_SCALES[unit] / LEG_LENGTH_M)))
    if abs(math.log(leg * UNIT_SCALES[best] / LEG_LENGTH_M)) > math.log(1.6):
        raise MocapFormatError(
            f"{path}: cannot tell the length unit (legs are {leg:.4g} file units long); give --units "
            f"({', '.join(UNIT_SCALES)})"
        )
    return best


def _leg_length(raw: np.ndarray, columns: list[str]) -> float:
    """Mean hip -> knee -> ankle length over both legs and all frames."""
    joint = {name: raw[:, columns.index(name)] for name in columns}
    legs = [
        np.linalg.norm(joint[f"{side}_hip"] - joint[f"{side}_knee"], axis=-1)
        + np.linalg.norm(joint[f"{side}_knee"] - joint[f"{side}_ankle"], axis=-1)
        for side in ("left", "right")
    ]
    return float(np.mean(legs))


def find_up_axis(path: Path, world: np.ndarray) -> str:
    """``"+y"``-style axis of the mean direction from the ankles to the head top (at least 70% along it);
    ``world`` is ``(T, 32, 3)`` Human3.6M-32."""
    ankles = (world[:, H36M_32.index("left_ankle")] + world[:, H36M_32.index("right_ankle")]) / 2
    direction = np.mean(world[:, H36M_32.index("head_top")] - ankles, axis=0)
    axis = int(np.argmax(np.abs(direction)))
    if abs(direction[axis]) < 0.7 * np.linalg.norm(direction):
        raise MocapFormatError(
            f"{path}: cannot tell the up axis (mean feet-to-head direction {np.round(direction, 3).tolist()}); "
            "give --up (+y, +z, ...)"
        )
    return ("+" if direction[axis] > 0 else "-") + AXES[axis]


def _check_axis(up: str) -> str:
    if len(up) != 2 or up[0] not in "+-" or up[1] not in AXES:
        raise MocapFormatError(f"--up {up!r}: expected auto or a signed axis such as +y, +z, -y")
    return up


def to_z_up(points: np.ndarray, up: str) -> np.ndarray:
    """Rotate ``(..., 3)`` points so that the file's ``up`` axis becomes +z (a proper rotation: a cyclic
    permutation of the axes, with two signs flipped for a negative up axis)."""
    axis, sign = AXES.index(up[1]), 1.0 if up[0] == "+" else -1.0
    order = [(axis + 1) % 3, (axis + 2) % 3, axis]
    out = points[..., order].copy()
    out[..., 1:] *= sign  # (a, b, u) -> (a, -b, -u) for a downward axis keeps the determinant +1
    return out


def resample(points: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """Linear interpolation of ``(T, ...)`` samples at ``fps`` to ``target_fps`` over the same time span."""
    if abs(fps - target_fps) < 1e-6 * target_fps:
        return points
    duration = (len(points) - 1) / fps
    # a thousandth of a frame of slack: frame times are stored rounded (1/30 s as 0.033333)
    times = np.arange(int(math.floor(duration * target_fps + 1e-3)) + 1) / target_fps * fps
    lower = np.minimum(np.floor(times).astype(np.int64), len(points) - 2)
    weight = (times - lower).reshape(-1, *[1] * (points.ndim - 1))
    return points[lower] * (1 - weight) + points[lower + 1] * weight


def fill_unmapped(world: np.ndarray, mapping: JointMapping) -> np.ndarray:
    """``(T, len(mapping), 3)`` in mapping order -> ``(T, 32, 3)`` Human3.6M-32, each unmapped joint at its
    nearest mapped ancestor (the way the recorded dataset stores its static duplicates)."""
    targets = list(mapping.sources)
    columns = []
    for joint in H36M_32.joint_names:
        index = H36M_32.index(joint)
        while H36M_32.joint_names[index] not in mapping.sources:
            index = H36M_32.parents[index]
        columns.append(targets.index(H36M_32.joint_names[index]))
    return world[:, columns]
