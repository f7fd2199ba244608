"""MPI-INF-3DHP evaluation: 3D PCK and AUC as pure functions and torchmetrics ``Metric`` classes.

The official protocol (reference/datasets.md B5, ``mpii_compute_3d_pck.m`` of the MPI-INF-3DHP test utilities):

- poses are root-relative (pelvis at the origin) in the camera frame; the official code works in mm, this code
  base in metres, so its thresholds are the official ones divided by 1000;
- a joint is *correct* at threshold ``t`` when its Euclidean error is strictly below ``t``;
- **PCK** is the percentage of correct joints at 150 mm;
- **AUC** is the mean of the PCK over the 31 thresholds 0, 5, ..., 150 mm, as a percentage;
- both are computed over **14 joints**: the official joint groups Head (head_top), Neck (our ``thorax``),
  Shoulders, Elbows, Wrists, Hips, Knees and Ankles. Pelvis, spine and head are left out: the pelvis is the root
  (error 0 after root alignment) and spine and head are not in the official groups. The "Total" of the official
  tables weighs the groups by their joint count, so it is the plain mean over the 14 joints and all frames.

The ``Metric`` classes sum correct-joint counts into float64 ``(num_groups, thresholds)`` states reduced by
sum, so a DDP run gives the single-process numbers exactly (the counts are integers far below 2**53).
Scene scores (GS / noGS / Outdoor) are frame-weighted means of the sequence scores: :func:`scene_weighted`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor
from torchmetrics import Metric

from components.errors import InputError, MissingKeyError
from components.metrics import check_poses, group_index
from components.skeleton import MPI_INF_3DHP_17, Skeleton

Reduction = Literal["frames", "groups"]

PCK_THRESHOLD = 0.15
"""The official PCK threshold, 150 mm, in metres."""

AUC_THRESHOLDS: tuple[float, ...] = tuple(mm / 1000 for mm in range(0, 151, 5))
"""The 31 official AUC thresholds 0, 5, ..., 150 mm, in metres."""

OFFICIAL_PCK_JOINTS: tuple[str, ...] = (
    "head_top",
    "thorax",
    "right_shoulder",
    "left_shoulder",
    "right_elbow",
    "left_elbow",
    "right_wrist",
    "left_wrist",
    "right_hip",
    "left_hip",
    "right_knee",
    "left_knee",
    "right_ankle",
    "left_ankle",
)
"""The 14 joints of the official PCK/AUC groups, by name (3DHP's "neck" is our ``thorax``)."""

SCENE_SEQUENCES: dict[str, tuple[str, str]] = {
    "GS": ("TS1", "TS2"),
    "noGS": ("TS3", "TS4"),
    "Outdoor": ("TS5", "TS6"),
}
"""Test sequences per scene: studio with green screen, studio without, outdoor."""

SEQUENCE_FRAME_WEIGHTS: dict[str, int] = {"TS1": 603, "TS2": 540, "TS3": 505, "TS4": 553, "TS5": 276, "TS6": 452}
"""Frame weights of the official README for combining sequence scores into scene scores."""


def _thresholds(thresholds: float | Sequence[float] | Tensor, device: torch.device) -> Tensor:
    """``(T,)`` float64 thresholds; a scalar becomes ``(1,)``."""
    values = torch.as_tensor(thresholds, dtype=torch.float64, device=device).reshape(-1)
    if values.numel() == 0:
        raise InputError("thresholds must not be empty")
    return values


def correct_joints(pred: Tensor, target: Tensor, thresholds: float | Sequence[float] | Tensor) -> Tensor:
    """Which joints are correct at each threshold: ``||pred_j - target_j||_2 < t`` (strict, as officially).

    Args:
        pred: ``(..., joints, 3)`` root-relative predicted poses, metres.
        target: ``(..., joints, 3)`` root-relative true poses, metres.
        thresholds: one threshold or ``(T,)`` thresholds, metres.

    Returns:
        ``(..., joints, T)`` bool. The distances are compared in float64, so a threshold is not moved by
        the input precision. A NaN error is never correct.
    """
    check_poses(pred, target)
    errors = torch.linalg.vector_norm(pred.double() - target.double(), dim=-1)
    return errors.unsqueeze(-1) < _thresholds(thresholds, errors.device)


def pck_per_joint(pred: Tensor, target: Tensor, threshold: float = PCK_THRESHOLD) -> Tensor:
    """PCK of every joint of every pose: 1 where the joint error is below ``threshold``, else 0.

    Averaging over any axes gives the PCK of those joints and poses as a fraction; x100 for the percentage.

    Args:
        pred: ``(..., joints, 3)`` root-relative predicted poses, metres.
        target: ``(..., joints, 3)`` root-relative true poses, metres.
        threshold: metres; the official 150 mm by default.

    Returns:
        ``(..., joints)`` float64 in {0, 1}.
    """
    return correct_joints(pred, target, threshold).squeeze(-1).double()


def auc_per_joint(pred: Tensor, target: Tensor, thresholds: Sequence[float] | Tensor = AUC_THRESHOLDS) -> Tensor:
    """AUC of every joint of every pose: the fraction of ``thresholds`` its error is below.

    Averaging over any axes gives the AUC of those joints and poses as a fraction; x100 for the percentage.

    Args:
        pred: ``(..., joints, 3)`` root-relative predicted poses, metres.
        target: ``(..., joints, 3)`` root-relative true poses, metres.
        thresholds: ``(T,)`` metres; the official 0, 5, ..., 150 mm by default.

    Returns:
        ``(..., joints)`` float64 in [0, 1], a multiple of ``1 / T``.
    """
    return correct_joints(pred, target, thresholds).double().mean(dim=-1)


def official_joint_indices(
    skeleton: Skeleton = MPI_INF_3DHP_17, joints: Sequence[str] = OFFICIAL_PCK_JOINTS
) -> tuple[int, ...]:
    """Indices of ``joints`` (by name) in ``skeleton``; the 14 official ones by default.

    Raises:
        KeyError: naming the missing joint and the layout's joints.
    """
    return skeleton.indices(joints)


def pck(
    pred: Tensor,
    target: Tensor,
    threshold: float = PCK_THRESHOLD,
    skeleton: Skeleton = MPI_INF_3DHP_17,
    joints: Sequence[str] = OFFICIAL_PCK_JOINTS,
) -> Tensor:
    """3D PCK in percent over ``joints`` of all poses ``(..., skeleton joints, 3)`` (metres); a float64 scalar."""
    index = list(official_joint_indices(skeleton, joints))
    _check_layout(pred, skeleton)
    return 100.0 * pck_per_joint(pred[..., index, :], target[..., index, :], threshold).mean()


def auc(
    pred: Tensor,
    target: Tensor,
    thresholds: Sequence[float] | Tensor = AUC_THRESHOLDS,
    skeleton: Skeleton = MPI_INF_3DHP_17,
    joints: Sequence[str] = OFFICIAL_PCK_JOINTS,
) -> Tensor:
    """3D AUC in percent over ``joints`` of all poses ``(..., skeleton joints, 3)`` (metres); a float64 scalar."""
    index = list(official_joint_indices(skeleton, joints))
    _check_layout(pred, skeleton)
    return 100.0 * auc_per_joint(pred[..., index, :], target[..., index, :], thresholds).mean()


def _check_layout(pred: Tensor, skeleton: Skeleton) -> None:
    if pred.ndim < 2 or pred.shape[-2] != skeleton.num_joints:
        raise InputError(
            f"poses {tuple(pred.shape)} must be (..., {skeleton.num_joints}, 3) for skeleton {skeleton.name!r}"
        )


class GroupedCorrectJoints(Metric):
    """Base of :class:`Pck3D` and :class:`Auc3D`: counts of correct joints per group and threshold.

    ``update(pred, target, group)`` takes root-relative poses ``(..., skeleton joints, 3)`` in metres, keeps
    ``joints`` (by name; the 14 official ones by default, see the module docstring) and adds, per group, the
    number of kept joints below each threshold (``correct``, ``(num_groups, T)``) and the number of kept joints
    seen (``count``, ``(num_groups,)``). Both states are float64 and reduced by sum across processes.

    A group's score is ``100 * mean_t correct[g, t] / count[g]``: the PCK for one threshold, the AUC for many.
    ``compute()`` with ``reduction="frames"`` (the default) pools all frames, the official "All"/"Total"
    number; ``reduction="groups"`` is the unweighted mean over non-empty groups. Results are float64 percentages,
    NaN with no data.

    Args:
        thresholds: ``(T,)`` metres.
        skeleton: layout of the poses passed to ``update``; ``MPI_INF_3DHP_17`` by default. Any layout that
            names the chosen joints works (e.g. ``H36M_17``).
        joints: names of the scored joints; the 14 official ones by default.
        num_groups: number of groups, e.g. 6 test sequences or 7 activities.
        reduction: ``"frames"`` (pooled over all frames) or ``"groups"`` (mean of group scores).
        kwargs: passed to :class:`torchmetrics.Metric` (e.g. ``sync_on_compute=False``).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    correct: Tensor
    count: Tensor

    def __init__(
        self,
        thresholds: Sequence[float],
        *,
        skeleton: Skeleton = MPI_INF_3DHP_17,
        joints: Sequence[str] = OFFICIAL_PCK_JOINTS,
        num_groups: int = 1,
        reduction: Reduction = "frames",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
            raise InputError(f"num_groups must be a positive int, got {num_groups!r}")
        if reduction not in ("frames", "groups"):
            raise InputError(f"reduction must be 'frames' or 'groups', got {reduction!r}")
        if not joints:
            raise InputError("joints must name at least one joint")
        self.thresholds = tuple(float(t) for t in _thresholds(thresholds, torch.device("cpu")).tolist())
        self.skeleton = skeleton
        self.joints = tuple(joints)
        self.joint_indices = official_joint_indices(skeleton, self.joints)
        self.num_groups = num_groups
        self.reduction = reduction
        zeros = torch.zeros(num_groups, len(self.thresholds), dtype=torch.float64)
        self.add_state("correct", zeros, dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(num_groups, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor, group: Tensor | int | None = None) -> None:
        """Add a batch's correct-joint counts to their groups.

        Args:
            pred: ``(..., skeleton joints, 3)`` root-relative predicted poses, metres, e.g.
                ``(batch, frames, joints, 3)``. Pass valid frames only (``valid_frame`` of the test set).
            target: true poses, same shape.
            group: integer tensor whose shape is a prefix of ``(...)``, e.g. ``(batch,)`` or
                ``(batch, frames)``; an int or None (group 0) for all frames.
        """
        check_poses(pred, target)
        _check_layout(pred, self.skeleton)
        index = list(self.joint_indices)
        hits = correct_joints(pred.detach()[..., index, :], target.detach()[..., index, :], self.thresholds)
        per_pose = hits.double().sum(dim=-2)  # (..., T): correct joints of each pose
        rows = group_index(group, per_pose.shape[:-1], self.num_groups, self.count.device).reshape(-1)
        per_pose = per_pose.reshape(-1, len(self.thresholds))
        # Out-of-place index_add + rebinding, as in components.metrics: in-place updates of states that
        # arrive in shared memory (ddp_spawn) would add across ranks.
        self.correct = self.correct.index_add(0, rows, per_pose)
        seen = torch.full((rows.numel(),), float(len(index)), dtype=torch.float64, device=rows.device)
        self.count = self.count.index_add(0, rows, seen)

    def _group_scores(self) -> Tensor:
        """``(num_groups,)`` percentage per group from the current states; NaN where empty."""
        nan = torch.full_like(self.count, float("nan"))
        return torch.where(self.count > 0, 100.0 * self.correct.mean(dim=-1) / self.count, nan)

    def compute(self) -> Tensor:
        """Score over all frames (``"frames"``) or mean of group scores (``"groups"``), a float64 percentage."""
        if self.reduction == "frames":
            return 100.0 * self.correct.sum(dim=0).mean() / self.count.sum()
        present = self.count > 0
        scores = 100.0 * self.correct.mean(dim=-1) / self.count.clamp_min(1)
        return (scores * present).sum() / present.sum()

    def group_means(self) -> Tensor:
        """``(num_groups,)`` float64 percentage per group, NaN for groups with no frames.

        Under DDP this syncs the states like ``compute()``: call it on every rank, or build the metric with
        ``sync_on_compute=False`` for rank-local values.
        """
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn, process_group=self.process_group, should_sync=self.sync_on_compute
        ):
            return self._group_scores()


class Pck3D(GroupedCorrectJoints):
    """3D PCK in percent per group: joints whose error is below ``threshold`` (150 mm by default).

    See :class:`GroupedCorrectJoints` for ``update``, the joints used, groups and reductions.

    Args:
        threshold: metres.
        kwargs: ``skeleton``, ``joints``, ``num_groups``, ``reduction`` and Metric options.
    """

    def __init__(self, threshold: float = PCK_THRESHOLD, **kwargs: Any) -> None:
        super().__init__((threshold,), **kwargs)
        self.threshold = float(threshold)


class Auc3D(GroupedCorrectJoints):
    """3D AUC in percent per group: the mean PCK over ``thresholds`` (0, 5, ..., 150 mm by default).

    See :class:`GroupedCorrectJoints` for ``update``, the joints used, groups and reductions.

    Args:
        thresholds: ``(T,)`` metres.
        kwargs: ``skeleton``, ``joints``, ``num_groups``, ``reduction`` and Metric options.
    """

    def __init__(self, thresholds: Sequence[float] = AUC_THRESHOLDS, **kwargs: Any) -> None:
        super().__init__(thresholds, **kwargs)


def scene_weighted(values_per_sequence: Mapping[str, float] | Sequence[float] | Tensor) -> dict[str, float]:
    """Scene scores GS, noGS and Outdoor from the six test-sequence scores, with the official frame weights.

    ``GS = (603 TS1 + 540 TS2) / 1143``, ``noGS = (505 TS3 + 553 TS4) / 1058``,
    ``Outdoor = (276 TS5 + 452 TS6) / 728`` (official README). Works for PCK, AUC or MPJPE alike.

    Args:
        values_per_sequence: ``{"TS1": v1, ..., "TS6": v6}``, or six values in the order TS1..TS6 (e.g. the
            ``group_means()`` of a metric grouped by test sequence).

    Returns:
        ``{"GS": ..., "noGS": ..., "Outdoor": ...}`` as floats; NaN inputs give NaN.
    """
    names = tuple(SEQUENCE_FRAME_WEIGHTS)
    if isinstance(values_per_sequence, Mapping):
        missing = [n for n in names if n not in values_per_sequence]
        if missing:
            raise MissingKeyError(f"scene_weighted needs values for {list(names)}; missing {missing}")
        values = {n: float(values_per_sequence[n]) for n in names}
    else:
        flat = [
            float(v)
            for v in (values_per_sequence.tolist() if isinstance(values_per_sequence, Tensor) else values_per_sequence)
        ]
        if len(flat) != len(names):
            raise InputError(f"scene_weighted needs {len(names)} values (TS1..TS6), got {len(flat)}")
        values = dict(zip(names, flat, strict=True))
    scores = {}
    for scene, sequences in SCENE_SEQUENCES.items():
        weights = [SEQUENCE_FRAME_WEIGHTS[s] for s in sequences]
        total = math.fsum(w * values[s] for w, s in zip(weights, sequences, strict=True))
        scores[scene] = total / sum(weights)
    return scores
