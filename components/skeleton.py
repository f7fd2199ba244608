"""Named skeleton layouts.

A :class:`Skeleton` is an ordered list of joint names with a parent for each. Everything else is derived
from the names: left/right partners (``left_x`` <-> ``right_x``), the horizontal-flip permutation, the bones
and conversions between layouts. Code outside this module never writes joint numbers; it asks a skeleton.

The same anatomical point has the same name in every layout, so layouts convert by name. Where a dataset's
own label differs from ours, the layout's docstring says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from components.errors import InputError, MissingKeyError

_SIDES = (("left_", "right_"), ("right_", "left_"))


@dataclass(frozen=True)
class Skeleton:
    """An ordered joint layout.

    Args:
        name: layout name, e.g. ``"h36m"``.
        joints: ``(joint_name, parent_name)`` pairs in array order; the single root has parent ``None``.
    """

    name: str
    joints: tuple[tuple[str, str | None], ...]

    def __post_init__(self) -> None:
        names = self.joint_names
        if len(set(names)) != len(names):
            raise InputError(f"skeleton {self.name!r}: joint names are not unique: {names}")
        roots = [n for n, p in self.joints if p is None]
        if len(roots) != 1:
            raise InputError(f"skeleton {self.name!r}: expected exactly one root, got {roots}")
        for joint, parent in self.joints:
            if parent is not None and parent not in names:
                raise InputError(f"skeleton {self.name!r}: parent {parent!r} of {joint!r} is not a joint")

    def __len__(self) -> int:
        return len(self.joints)

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @cached_property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.joints)

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.joint_names)}

    def index(self, name: str) -> int:
        """Array index of a joint, with an error that lists the layout's joints when it is missing."""
        try:
            return self._positions[name]
        except KeyError:
            raise MissingKeyError(
                f"joint {name!r} is not in skeleton {self.name!r} ({', '.join(self.joint_names)})"
            ) from None

    def indices(self, names: Sequence[str]) -> tuple[int, ...]:
        return tuple(self.index(n) for n in names)

    @cached_property
    def root(self) -> int:
        """Index of the root joint (the pelvis in the body layouts)."""
        return self.parents.index(-1)

    @cached_property
    def parents(self) -> tuple[int, ...]:
        """Parent index per joint, -1 for the root."""
        return tuple(-1 if p is None else self.index(p) for _, p in self.joints)

    @cached_property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """``(child, parent)`` index pairs, one per non-root joint, in joint order."""
        return tuple((i, p) for i, p in enumerate(self.parents) if p >= 0)

    def partner(self, name: str) -> str:
        """The mirror joint's name (``left_knee`` <-> ``right_knee``); central joints are their own partner."""
        for side, other in _SIDES:
            if name.startswith(side):
                mirrored = other + name[len(side) :]
                if mirrored not in self._positions:
                    raise InputError(f"skeleton {self.name!r}: {name!r} has no partner {mirrored!r}")
                return mirrored
        return name

    @cached_property
    def flip_permutation(self) -> tuple[int, ...]:
        """``flipped[..., j, :] = pose[..., flip_permutation[j], :]`` swaps left and right joints."""
        return tuple(self.index(self.partner(n)) for n in self.joint_names)

    @cached_property
    def left(self) -> tuple[int, ...]:
        return tuple(i for i, n in enumerate(self.joint_names) if n.startswith("left_"))

    @cached_property
    def right(self) -> tuple[int, ...]:
        """Right joints, in the order of their partners in :attr:`left`."""
        return tuple(self.index(self.partner(self.joint_names[i])) for i in self.left)

    def selection_from(self, source: Skeleton) -> tuple[int, ...]:
        """Indices into ``source`` that produce this layout's joints, matched by name."""
        missing = [n for n in self.joint_names if n not in source._positions]
        if missing:
            raise InputError(f"cannot convert {source.name!r} to {self.name!r}: {source.name!r} lacks {missing}")
        return source.indices(self.joint_names)

    def convert_from(self, source: Skeleton, points: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Re-order ``points`` of shape ``(..., source joints, C)`` into this layout, ``(..., joints, C)``."""
        if points.shape[-2] != source.num_joints:
            raise InputError(
                f"points have {points.shape[-2]} joints on axis -2 (shape {tuple(points.shape)}), "
                f"expected {source.num_joints} for layout {source.name!r}"
            )
        return points[..., list(self.selection_from(source)), :]


def _chain(*names: str) -> list[tuple[str, str | None]]:
    """``a, b, c`` -> ``[(b, a), (c, b)]``: a kinematic chain hanging from its first joint."""
    return [(child, parent) for parent, child in zip(names[:-1], names[1:], strict=False)]


def _sided(side: str, *names: str) -> list[str]:
    return [f"{side}_{n}" for n in names]


def _limbs(attach: str, *names: str) -> list[tuple[str, str | None]]:
    """Left then right chain of ``names`` hanging from the central joint ``attach``."""
    return _chain(attach, *_sided("left", *names)) + _chain(attach, *_sided("right", *names))


def _ordered(name: str, order: Sequence[str], pairs: list[tuple[str, str | None]]) -> Skeleton:
    parent_of = dict(pairs)
    missing = [n for n in order if n not in parent_of]
    if missing or len(order) != len(parent_of):
        raise InputError(f"layout {name!r}: order and tree disagree (missing {missing})")
    return Skeleton(name, tuple((n, parent_of[n]) for n in order))


H36M_32 = _ordered(
    "h36m_32",
    order=(
        "pelvis",
        "right_hip",
        "right_knee",
        "right_ankle",
        "right_toe",
        "right_toe_end",
        "left_hip",
        "left_knee",
        "left_ankle",
        "left_toe",
        "left_toe_end",
        "lower_spine",
        "spine",
        "thorax",
        "head",
        "head_top",
        "left_clavicle",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "left_thumb",
        "left_thumb_end",
        "left_hand",
        "left_hand_end",
        "right_clavicle",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "right_thumb",
        "right_thumb_end",
        "right_hand",
        "right_hand_end",
    ),  # fmt: skip
    pairs=[("pelvis", None)]
    + _chain("pelvis", "right_hip", "right_knee", "right_ankle", "right_toe", "right_toe_end")
    + _chain("pelvis", "left_hip", "left_knee", "left_ankle", "left_toe", "left_toe_end")
    + _chain("pelvis", "lower_spine", "spine", "thorax", "head", "head_top")
    + _limbs("spine", "clavicle", "shoulder", "elbow", "wrist", "thumb", "thumb_end")
    + _chain("left_wrist", "left_hand", "left_hand_end")
    + _chain("right_wrist", "right_hand", "right_hand_end"),
)
"""Human3.6M motion-capture layout (32 joints) as stored in ``data_3d_h36m.npz``.

Parents equal the dataset's: both clavicles hang from ``spine`` (index 12). ``lower_spine`` (11) coincides
with the pelvis and the clavicles with the thorax in the recorded data; they are dropped in :data:`H36M_17`.
"""

H36M_17 = _ordered(
    "h36m",
    order=(
        "pelvis",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "spine",
        "thorax",
        "head",
        "head_top",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
    ),  # fmt: skip
    pairs=[("pelvis", None)]
    + _limbs("pelvis", "hip", "knee", "ankle")
    + _chain("pelvis", "spine", "thorax", "head", "head_top")
    + _limbs("thorax", "shoulder", "elbow", "wrist"),
)
"""The 17-joint Human3.6M layout used by VideoPose3D and its successors.

Dataset labels: ``head`` is "Neck/Nose", ``head_top`` is "Head", ``*_ankle`` is "*Foot". The shoulders
hang from the thorax (re-wired from the 32-joint tree), as in the published 17-joint skeleton.
"""

COCO_17 = _ordered(
    "coco",
    order=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),  # fmt: skip
    pairs=[("nose", None)]
    + _limbs("nose", "eye", "ear")
    + _limbs("nose", "shoulder", "elbow", "wrist")
    + _chain("left_shoulder", "left_hip", "left_knee", "left_ankle")
    + _chain("right_shoulder", "right_hip", "right_knee", "right_ankle"),
)
"""COCO keypoints (17) as written by 2D detectors. COCO has no pelvis; the tree hangs from the nose."""

MPI_INF_3DHP_28 = _ordered(
    "mpi_inf_3dhp_28",
    order=(
        "spine3",
        "spine4",
        "spine2",
        "spine",
        "pelvis",
        "thorax",
        "head",
        "head_top",
        "left_clavicle",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "left_hand",
        "right_clavicle",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "right_hand",
        "left_hip",
        "left_knee",
        "left_ankle",
        "left_foot",
        "left_toe",
        "right_hip",
        "right_knee",
        "right_ankle",
        "right_foot",
        "right_toe",
    ),  # fmt: skip
    pairs=[("pelvis", None)]
    + _chain("pelvis", "spine", "spine2", "spine3", "spine4", "thorax", "head", "head_top")
    + _limbs("spine4", "clavicle", "shoulder", "elbow", "wrist", "hand")
    + _limbs("pelvis", "hip", "knee", "ankle", "foot", "toe"),
)
"""MPI-INF-3DHP full annotation layout (28 joints) of ``annot.mat``.

Dataset label: ``thorax`` is "neck" (the base of the neck, Human3.6M's thorax); ``head`` is "head".
"""

MPI_INF_3DHP_17 = _ordered(
    "mpi_inf_3dhp",
    order=(
        "head_top",
        "thorax",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "spine",
        "head",
    ),  # fmt: skip
    pairs=[
        ("pelvis", None),
        ("spine", "pelvis"),
        ("thorax", "spine"),
        ("head", "thorax"),
        ("head_top", "thorax"),
    ]
    + _limbs("thorax", "shoulder", "elbow", "wrist")
    + _limbs("pelvis", "hip", "knee", "ankle"),
)
"""MPI-INF-3DHP's 17 evaluation joints in the official test order (``annot_data.mat``).

Parents follow the official evaluation code (``head_top`` and ``head`` both hang from the neck).
Dataset label: ``thorax`` is "neck".
"""


def _feet(side: str) -> list[tuple[str, str | None]]:
    """OpenPose foot points of one side: big toe and heel hang from the ankle, small toe from the big toe."""
    ankle, big_toe, small_toe, heel = _sided(side, "ankle", "big_toe", "small_toe", "heel")
    return [(big_toe, ankle), (small_toe, big_toe), (heel, ankle)]


OPENPOSE_BODY_25 = _ordered(
    "openpose_body25",
    order=(
        "nose",
        "thorax",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "pelvis",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "right_eye",
        "left_eye",
        "right_ear",
        "left_ear",
        "left_big_toe",
        "left_small_toe",
        "left_heel",
        "right_big_toe",
        "right_small_toe",
        "right_heel",
    ),  # fmt: skip
    pairs=[("pelvis", None), ("thorax", "pelvis"), ("nose", "thorax")]
    + _limbs("nose", "eye", "ear")
    + _limbs("thorax", "shoulder", "elbow", "wrist")
    + _limbs("pelvis", "hip", "knee", "ankle")
    + _feet("left")
    + _feet("right"),
)
"""OpenPose BODY_25 (the default OpenPose model).

OpenPose labels: ``thorax`` is "Neck" (the shoulder midpoint), ``pelvis`` is "MidHip" (the hip midpoint).
The tree hangs from the pelvis like the Human3.6M layouts.
"""

OPENPOSE_BODY_25B = _ordered(
    "openpose_body25b",
    order=COCO_17.joint_names
    + ("upper_neck", "head_top")
    + tuple(_sided("left", "big_toe", "small_toe", "heel") + _sided("right", "big_toe", "small_toe", "heel")),
    pairs=[("nose", None)]
    + _chain("nose", "upper_neck", "head_top")
    + [(joint, parent) for joint, parent in COCO_17.joints if parent is not None]
    + _feet("left")
    + _feet("right"),
)
"""OpenPose BODY_25B: the COCO-17 joints in COCO order, then "UpperNeck", "HeadTop" and the six foot points.

It has no neck and no mid-hip. ``upper_neck`` is the top of the neck (MPII's "upper neck", under the chin),
not the thorax; ``head_top`` is the top of the head, as in Human3.6M. The tree hangs from the nose like COCO.
"""

OPENPOSE_COCO_18 = _ordered(
    "openpose_coco18",
    order=(
        "nose",
        "thorax",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "right_eye",
        "left_eye",
        "right_ear",
        "left_ear",
    ),  # fmt: skip
    pairs=[("thorax", None), ("nose", "thorax")]
    + _limbs("nose", "eye", "ear")
    + _limbs("thorax", "shoulder", "elbow", "wrist")
    + _limbs("thorax", "hip", "knee", "ankle"),
)
"""OpenPose COCO-18: COCO's 17 joints re-ordered plus "Neck" (``thorax``, the shoulder midpoint), the root."""

LAYOUTS: dict[str, Skeleton] = {
    s.name: s
    for s in (
        H36M_32,
        H36M_17,
        COCO_17,
        MPI_INF_3DHP_28,
        MPI_INF_3DHP_17,
        OPENPOSE_BODY_25,
        OPENPOSE_BODY_25B,
        OPENPOSE_COCO_18,
    )
}


def layout(name: str) -> Skeleton:
    """Look a layout up by name (``h36m``, ``h36m_32``, ``coco``, ``mpi_inf_3dhp``, ``mpi_inf_3dhp_28``,
    ``openpose_body25``, ``openpose_body25b``, ``openpose_coco18``)."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise MissingKeyError(f"unknown skeleton layout {name!r}; known: {sorted(LAYOUTS)}") from None
