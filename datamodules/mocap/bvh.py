"""BVH (Biovision Hierarchy) motion capture: the reader and vectorised forward kinematics.

A BVH file has a ``HIERARCHY`` (a joint tree: ``ROOT``/``JOINT`` blocks with an ``OFFSET`` from the parent and
``CHANNELS``, leaves closed by ``End Site`` blocks) and a ``MOTION`` section (``Frames: N``, ``Frame Time: dt``,
then one line of channel values per frame). Conventions this reader follows, as the common exporters do:

- rotation channels are Euler angles in degrees, composed in the order listed
  (``Zrotation Xrotation Yrotation`` -> ``R = Rz @ Rx @ Ry``, for column vectors);
- position channels give the joint's translation from its parent and replace the ``OFFSET`` components they
  name (the root's are its position in the file's world);
- an ``End Site`` becomes a joint named ``<parent>_end`` without channels.

Forward kinematics runs over joints (a few dozen), never over frames: every frame of a joint in one array
operation, in chunks of frames so that memory stays bounded for hour-long takes.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.file_checks import read_text
from datamodules.mocap.errors import MocapFormatError

ROTATIONS = ("Xrotation", "Yrotation", "Zrotation")
POSITIONS = ("Xposition", "Yposition", "Zposition")
CHUNK_FRAMES = 65536


@dataclass(frozen=True)
class BvhSkeleton:
    """The joint tree of a BVH file, in file order (parents before children).

    Attributes:
        names: joint names (end sites as ``<parent>_end``).
        parents: parent index per joint, -1 for the root.
        offsets: ``(J, 3)`` offsets from the parent in the file's units.
        channels: per joint, its channel names (empty for end sites).
        first_channel: per joint, the column of its first channel in the motion array.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    first_channel: tuple[int, ...]

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def ancestors(self, joints: Sequence[int]) -> list[int]:
        """``joints`` and all their ancestors, in file order (parents first)."""
        needed = set()
        for joint in joints:
            while joint >= 0 and joint not in needed:
                needed.add(joint)
                joint = self.parents[joint]
        return sorted(needed)


@dataclass(frozen=True)
class BvhMotion:
    """A BVH file's contents: the skeleton, the frame time (s) and the ``(T, channels)`` float64 motion."""

    path: Path
    skeleton: BvhSkeleton
    frame_time: float
    motion: np.ndarray

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def __len__(self) -> int:
        return len(self.motion)


class _Tokens:
    """Whitespace tokens of the hierarchy with their line numbers, for errors that name the line."""

    def __init__(self, path: Path, lines: list[str]) -> None:
        self.path = path
        self.items = [(token, number) for number, line in enumerate(lines, 1) for token in line.split()]
        self.position = 0

    def error(self, message: str) -> MocapFormatError:
        line = self.items[min(self.position, len(self.items) - 1)][1] if self.items else 1
        return MocapFormatError(f"{self.path}, line {line}: {message}")

    def next(self, expected: str | None = None, what: str | None = None) -> str:
        """The next token; it must equal ``expected`` when given (``what`` names it in the end-of-file error)."""
        if self.position >= len(self.items):
            raise self.error(f"file ends inside the hierarchy (expected {expected or what or 'more'})")
        token = self.items[self.position][0]
        if expected is not None and token != expected:
            raise self.error(f"expected {expected!r}, found {token!r}")
        self.position += 1
        return token

    def number(self, what: str) -> float:
        token = self.next()
        try:
            return float(token)
        except ValueError:
            self.position -= 1
            raise self.error(f"{what}: {token!r} is not a number") from None


def read_bvh(path: str | Path) -> BvhMotion:
    """Read a BVH file; errors name the file and line (:class:`MocapFormatError`)."""
    path = Path(path)
    text = read_text(path, MocapFormatError)
    match = re.search(r"^\s*MOTION\s*$", text, flags=re.MULTILINE)
    if match is None:
        raise MocapFormatError(f"{path}: no MOTION section (a BVH file has HIERARCHY, then MOTION)")
    header_lines = text[: match.start()].splitlines()
    skeleton = _skeleton(path, header_lines)
    motion_line = len(header_lines) + 1
    frames, frame_time, values, first_value_line = _motion(path, text[match.end() :], motion_line)
    columns = skeleton.num_channels
    complete = len(values) // columns if columns else 0
    if len(values) != frames * columns:
        line = first_value_line + complete
        raise MocapFormatError(
            f"{path}, line {line}: truncated MOTION data: {frames} frames of {columns} channels announced, "
            f"{len(values)} values found ({complete} complete frames)"
        )
    motion = values.reshape(frames, columns)
    bad = ~np.isfinite(motion)
    if bad.any():
        frame, column = (int(i) for i in np.argwhere(bad)[0])
        joint = max(j for j, first in enumerate(skeleton.first_channel) if first <= column and skeleton.channels[j])
        channel = skeleton.channels[joint][column - skeleton.first_channel[joint]]
        raise MocapFormatError(
            f"{path}, line {first_value_line + frame}: NaN/inf in channel {channel} of joint "
            f"{skeleton.names[joint]!r} (frame {frame}); {int(bad.any(axis=1).sum())} frames are affected"
        )
    return BvhMotion(path, skeleton, frame_time, motion)


def _skeleton(path: Path, header_lines: list[str]) -> BvhSkeleton:
    return _parse_tree(_Tokens(path, header_lines))


def _parse_tree(tokens: _Tokens) -> BvhSkeleton:
    """Depth-first recursive descent over the joint blocks (the tree is shallow: a few dozen levels at most)."""
    names, parents, offsets, channels = [], [], [], []

    def block(name: str, parent: int) -> None:
        if name in names:
            raise tokens.error(f"joint {name!r} is defined twice")
        index = len(names)
        names.append(name)
        parents.append(parent)
        tokens.next("{")
        tokens.next("OFFSET")
        offsets.append([tokens.number(f"OFFSET of {name}") for _ in range(3)])
        tokens.next("CHANNELS")
        count = int(tokens.number(f"CHANNELS count of {name}"))
        joint_channels = tuple(tokens.next() for _ in range(count))
        unknown = [c for c in joint_channels if c not in ROTATIONS + POSITIONS]
        if unknown:
            raise tokens.error(f"joint {name!r}: unknown channel(s) {unknown}")
        channels.append(joint_channels)
        ends = 0
        while True:
            token = tokens.next(what="JOINT, End Site or '}'")
            if token == "}":
                return
            if token == "JOINT":
                block(tokens.next(), index)
            elif token == "End":
                tokens.next("Site")
                end = f"{name}_end" if ends == 0 else f"{name}_end{ends}"
                ends += 1
                end_site(end, index)
            else:
                raise tokens.error(f"inside joint {name!r}: expected JOINT, End Site or '}}', found {token!r}")

    def end_site(name: str, parent: int) -> None:
        names.append(name)
        parents.append(parent)
        channels.append(())
        tokens.next("{")
        tokens.next("OFFSET")
        offsets.append([tokens.number(f"OFFSET of {name}") for _ in range(3)])
        tokens.next("}")

    tokens.next("HIERARCHY")
    tokens.next("ROOT")
    block(tokens.next(), -1)
    first, total = [], 0
    for joint_channels in channels:
        first.append(total)
        total += len(joint_channels)
    offsets = np.asarray(offsets, dtype=np.float64)
    return BvhSkeleton(tuple(names), tuple(parents), offsets, tuple(channels), tuple(first))


def _motion(path: Path, body: str, motion_line: int) -> tuple[int, float, np.ndarray, int]:
    """``Frames:``, ``Frame Time:`` and every value after them; the line number of the first frame."""
    lines = body.split("\n", 3)
    frames_match = re.match(r"\s*Frames:\s*(\d+)\s*$", lines[1] if len(lines) > 1 else "")
    time_match = re.match(r"\s*Frame\s+Time:\s*([0-9.eE+-]+)\s*$", lines[2] if len(lines) > 2 else "")
    if frames_match is None:
        raise MocapFormatError(f"{path}, line {motion_line + 1}: expected 'Frames: <count>' after MOTION")
    if time_match is None:
        raise MocapFormatError(f"{path}, line {motion_line + 2}: expected 'Frame Time: <seconds>'")
    frame_time = float(time_match.group(1))
    if not frame_time > 0:
        raise MocapFormatError(f"{path}, line {motion_line + 2}: Frame Time must be positive, got {frame_time}")
    data = lines[3] if len(lines) > 3 else ""
    # One frame a line, as exporters write it: numpy's C table reader is the fastest path. Ragged, wrapped or
    # broken rows fall through to the value-by-value reader below, which names what is wrong.
    with contextlib.suppress(ValueError):
        values = np.loadtxt(io.StringIO(data), dtype=np.float64, ndmin=2).reshape(-1)
        return int(frames_match.group(1)), frame_time, values, motion_line + 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            values = np.fromstring(data, dtype=np.float64, sep=" ")
        except (DeprecationWarning, ValueError):
            values = _values_up_to_error(path, data, motion_line + 3)
    return int(frames_match.group(1)), frame_time, values, motion_line + 3


def _values_up_to_error(path: Path, data: str, first_line: int) -> np.ndarray:
    """Find the first token that is not a number (slow path, only reached for a broken file) and name it."""
    for number, line in enumerate(data.splitlines(), first_line):
        for token in line.split():
            try:
                float(token)
            except ValueError:
                raise MocapFormatError(f"{path}, line {number}: {token!r} is not a number") from None
    raise MocapFormatError(f"{path}, line {first_line}: MOTION data could not be read")


def euler_matrices(angles_deg: np.ndarray, axes: str) -> np.ndarray:
    """Rotation matrices ``(T, 3, 3)`` of Euler angles ``(T, k)`` (degrees) composed in the order of ``axes``
    (e.g. ``"ZXY"`` -> ``Rz @ Rx @ Ry``), for column vectors.

    Right-multiplying by a rotation about axis ``i`` only mixes the two other columns, so each step is two
    column updates instead of a batched 3x3 product.
    """
    result = np.zeros((len(angles_deg), 3, 3))
    result[:, [0, 1, 2], [0, 1, 2]] = 1.0
    radians = np.deg2rad(angles_deg)
    for k, axis in enumerate(axes):
        cos, sin = np.cos(radians[:, k])[:, None], np.sin(radians[:, k])[:, None]
        i = "XYZ".index(axis)
        j, l = (i + 1) % 3, (i + 2) % 3
        column_j, column_l = result[:, :, j].copy(), result[:, :, l]
        result[:, :, j] = column_j * cos + column_l * sin
        result[:, :, l] = column_l * cos - column_j * sin
    return result


def forward_kinematics(motion: BvhMotion, joints: Sequence[str], local_offsets: np.ndarray | None = None) -> np.ndarray:
    """World positions ``(T, K, 3)`` (the file's units and axes) of ``joints``, each displaced by its
    ``local_offsets[k]`` ``(K, 3)`` expressed in that joint's own frame (zeros when None).

    Only the joints asked for and their ancestors are evaluated, a joint at a time over every frame.
    """
    skeleton = motion.skeleton
    wanted = [skeleton.index(name) for name in joints]
    local_offsets = np.zeros((len(wanted), 3)) if local_offsets is None else np.asarray(local_offsets, np.float64)
    out = np.empty((len(motion), len(wanted), 3))
    for start in range(0, len(motion), CHUNK_FRAMES):
        chunk = motion.motion[start : start + CHUNK_FRAMES]
        rotations, positions = _chain(skeleton, chunk, skeleton.ancestors(wanted))
        for k, joint in enumerate(wanted):
            out[start : start + len(chunk), k] = positions[joint] + rotations[joint] @ local_offsets[k]
    return out


def _chain(skeleton: BvhSkeleton, chunk: np.ndarray, joints: list[int]) -> tuple[dict, dict]:
    """Global rotations ``(T, 3, 3)`` and positions ``(T, 3)`` of ``joints`` (parents first) for one chunk."""
    rotations, positions = {}, {}
    for joint in joints:
        names = skeleton.channels[joint]
        values = chunk[:, skeleton.first_channel[joint] : skeleton.first_channel[joint] + len(names)]
        translation = np.broadcast_to(skeleton.offsets[joint], (len(chunk), 3)).copy()
        for column, name in enumerate(names):
            if name in POSITIONS:
                translation[:, POSITIONS.index(name)] = values[:, column]
        rotation_columns = [column for column, name in enumerate(names) if name in ROTATIONS]
        axes = "".join(names[column][0] for column in rotation_columns)
        local = euler_matrices(values[:, rotation_columns], axes) if axes else None
        parent = skeleton.parents[joint]
        if parent < 0:
            positions[joint] = translation
            rotations[joint] = local if local is not None else np.broadcast_to(np.eye(3), (len(chunk), 3, 3))
            continue
        positions[joint] = positions[parent] + np.einsum("tij,tj->ti", rotations[parent], translation)
        rotations[joint] = rotations[parent] @ local if local is not None else rotations[parent]
    return rotations, positions


def format_bvh(skeleton: BvhSkeleton, frame_time: float, motion: np.ndarray) -> str:
    """The text of a BVH file holding ``motion`` ``(T, channels)`` for ``skeleton`` (end sites from the
    ``<parent>_end`` joints); :func:`read_bvh` reads it back."""
    children = {index: [] for index in range(len(skeleton.names))}
    for index, parent in enumerate(skeleton.parents):
        if parent >= 0:
            children[parent].append(index)
    lines = ["HIERARCHY"]

    def block(index: int, depth: int) -> None:
        pad, name = "  " * depth, skeleton.names[index]
        offset = " ".join(f"{v:.6f}" for v in skeleton.offsets[index])
        if not skeleton.channels[index] and skeleton.parents[index] >= 0:
            lines.extend([f"{pad}End Site", f"{pad}{{", f"{pad}  OFFSET {offset}", f"{pad}}}"])
            return
        lines.append(f"{pad}{'ROOT' if skeleton.parents[index] < 0 else 'JOINT'} {name}")
        lines.extend([f"{pad}{{", f"{pad}  OFFSET {offset}"])
        channels = skeleton.channels[index]
        lines.append(f"{pad}  CHANNELS {len(channels)} {' '.join(channels)}")
        for child in children[index]:
            block(child, depth + 1)
        lines.append(f"{pad}}}")

    block(0, 0)
    lines += ["MOTION", f"Frames: {len(motion)}", f"Frame Time: {frame_time:.8f}"]
    body = io.StringIO()
    np.savetxt(body, np.asarray(motion), fmt="%.6f", delimiter=" ")
    return "\n".join(lines) + "\n" + body.getvalue()


def skeleton_from_tree(joints: Sequence[tuple[str, str | None, Sequence[float], Sequence[str]]]) -> BvhSkeleton:
    """A :class:`BvhSkeleton` from ``(name, parent name, offset, channels)`` rows, parents first (end sites:
    ``<parent>_end`` with no channels)."""
    names = [name for name, *_ in joints]
    parents = tuple(-1 if parent is None else names.index(parent) for _, parent, _, _ in joints)
    channels = tuple(tuple(c) for *_, c in joints)
    first = tuple(int(v) for v in np.concatenate([[0], np.cumsum([len(c) for c in channels])[:-1]]))
    offsets = np.asarray([offset for _, _, offset, _ in joints], dtype=np.float64)
    return BvhSkeleton(tuple(names), parents, offsets, channels, first)
