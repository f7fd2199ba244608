"""Placing a clip on the floor inside the view of a camera rig.

A take usually travels further than a capture volume is wide, so a clip is cut into pieces that each fit: a
piece is turned about the vertical axis (its path along the volume's long axis, or a seeded facing when it
stays in place) and moved to the volume's centre; it fits when every Human3.6M-17 joint of every frame projects
inside every camera's image. Pieces are as long as fit (found by bisection), at least ``min_frames``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from components.skeleton import H36M_17, H36M_32
from datamodules.mocap.errors import MocapFormatError
from datamodules.synthetic.volume import CaptureVolume

VISIBLE = [H36M_32.index(name) for name in H36M_17.joint_names]
ROOT = H36M_32.index("pelvis")
TOES = [H36M_32.index(name) for name in ("left_toe", "right_toe")]
ANKLE_HEIGHT = 0.08  # metres of an ankle above the floor, for clips whose lowest joints are ankles
SPARSE = 5  # frames between the checks of the sparse look
LENGTH_TOLERANCE = 25  # frames (half a second) within which a piece's longest length is searched
TURNS = (0.0, math.pi / 12, -math.pi / 12, math.pi / 6, -math.pi / 6, math.pi / 2, -math.pi / 2)


@dataclass(frozen=True)
class Piece:
    """Frames ``[start, stop)`` of a clip turned by ``yaw`` (radians, about +z) and moved by ``shift`` (metres,
    xy): ``world`` ``(stop - start, 32, 3)``."""

    start: int
    stop: int
    yaw: float
    shift: tuple[float, float]
    world: np.ndarray


def on_floor(world: np.ndarray, toes_mapped: bool) -> np.ndarray:
    """Lift or lower ``(T, 32, 3)`` so the lowest joint over the clip touches z = 0 (with no toe joints, the
    lowest ankle is set an ankle's height above it)."""
    lowest = float(world[..., 2].min())
    return world - np.array([0.0, 0.0, lowest - (0.0 if toes_mapped else ANKLE_HEIGHT)])


def yaw_matrix(yaw: float) -> np.ndarray:
    cos, sin = math.cos(yaw), math.sin(yaw)
    return np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])


def try_place(world: np.ndarray, volume: CaptureVolume, rng: np.random.Generator, stride: int = 1) -> Piece | None:
    """``world`` ``(T, 32, 3)`` turned and moved into ``volume`` so that all cameras see it, or None.

    ``stride`` > 1 checks every ``stride``-th frame only (a sparse look, used while searching piece lengths).
    """
    path = world[:, ROOT, :2]
    centre = (path.min(0) + path.max(0)) / 2
    spread = path - path.mean(0)
    _, _, directions = np.linalg.svd(spread, full_matrices=False) if len(path) > 1 else (None, None, np.eye(2))
    travel = np.ptp(spread @ directions[0]) if len(path) > 1 else 0.0
    long_axis = volume.axes[:, int(np.argmax(np.linalg.norm(volume.axes, axis=0)))]
    if travel > 0.5:  # a path: along the volume's long axis, either way round
        base = math.atan2(long_axis[1], long_axis[0]) - math.atan2(directions[0][1], directions[0][0])
        base += math.pi * int(rng.integers(2))
    else:  # in place: any facing
        base = float(rng.uniform(0, 2 * math.pi))
    for turn in TURNS:
        rotation = yaw_matrix(base + turn)
        shift = volume.centre - rotation[:2, :2] @ centre
        if not _root_path_near(path @ rotation[:2, :2].T + shift, volume):
            continue
        placed = world @ rotation.T + np.array([*shift, 0.0])
        if volume.sees(placed[::stride, VISIBLE]).all():
            return Piece(0, len(world), base + turn, (float(shift[0]), float(shift[1])), placed)
    return None


def _root_path_near(path: np.ndarray, volume: CaptureVolume, slack: float = 1.5) -> bool:
    """Whether the root path ``(T, 2)`` stays inside the volume's ellipse grown by ``slack``: a cheap necessary
    condition (the ellipse only approximates the visible area, hence the slack)."""
    local = np.linalg.solve(volume.axes, (path - volume.centre).T)  # ellipse coordinates, unit circle = edge
    return bool((local**2).sum(axis=0).max() <= slack**2)


def place_clip(
    world: np.ndarray, volume: CaptureVolume, rng_for, min_frames: int, split: bool, where: str
) -> tuple[list[Piece], int]:
    """Cut ``world`` ``(T, 32, 3)`` into pieces that fit ``volume``; returns them and the frames left over
    (a tail shorter than ``min_frames`` that could not join the last piece).

    Args:
        rng_for: ``start frame -> numpy Generator``, so each piece's facing is reproducible.
        split: False requires the whole clip to fit in one piece.
        where: names the clip in errors.
    """
    total = len(world)
    if not split:
        piece = try_place(world, volume, rng_for(0))
        if piece is None:
            raise _unplaceable(where, 0, total, world, volume)
        return [piece], 0
    pieces, start, guess = [], 0, min(min_frames, total)
    while total - start >= min(min_frames, total):
        piece = _longest_piece(world, volume, rng_for, start, min(min_frames, total), guess, SPARSE)
        if piece is not None and not volume.sees(piece.world[:, VISIBLE]).all():  # the sparse look missed a frame
            piece = _longest_piece(world, volume, rng_for, start, min(min_frames, total), piece.stop - start, 1)
        if piece is None:
            raise _unplaceable(where, start, min(start + min_frames, total), world, volume)
        pieces.append(piece)
        start, guess = piece.stop, piece.stop - piece.start
    return pieces, total - start


def _longest_piece(world, volume, rng_for, start: int, min_frames: int, guess: int, stride: int) -> Piece | None:
    """A piece from ``start`` about as long as fits (within :data:`LENGTH_TOLERANCE` frames), at least
    ``min_frames``, or None. Starting from ``guess`` frames (the previous piece's length), lengths double until
    one fails or the clip ends, then bisection; each try costs its length divided by ``stride``."""
    total = len(world)

    def attempt(length: int) -> Piece | None:
        piece = try_place(world[start : start + length], volume, rng_for(start), stride)
        return None if piece is None else Piece(start, start + piece.stop, piece.yaw, piece.shift, piece.world)

    remaining = total - start
    low, high = min_frames, remaining + 1  # low: to be shown to fit; high: the shortest length known not to fit
    best = attempt(max(min_frames, min(guess, remaining)))
    if best is not None:
        low = best.stop - start
        while low < remaining:
            length = min(remaining, 2 * low)
            piece = attempt(length)
            if piece is None:
                high = length
                break
            low, best = length, piece
    else:
        high = max(min_frames, min(guess, remaining))
        best = attempt(min_frames) if high > min_frames else None
        if best is None:
            return None
    while high - low > LENGTH_TOLERANCE and low < remaining:
        middle = (low + high) // 2
        piece = attempt(middle)
        if piece is None:
            high = middle
        else:
            low, best = middle, piece
    return best


def _unplaceable(where: str, start: int, stop: int, world: np.ndarray, volume: CaptureVolume) -> MocapFormatError:
    part = world[start:stop]
    extent = np.ptp(part[:, ROOT, :2], axis=0)
    height = float(np.ptp(part[..., 2]))
    axes = 2 * np.linalg.norm(volume.axes, axis=0)
    return MocapFormatError(
        f"{where}: frames {start}-{stop} cannot be placed in view of cameras {[c.id for c in volume.cameras]} "
        f"(the root moves over {extent[0]:.2f} x {extent[1]:.2f} m and the body spans {height:.2f} m in height; "
        f"the floor area seen by every camera is about {axes.max():.1f} x {axes.min():.1f} m). Check --units, or "
        "cut the clip shorter"
    )
