"""Pose-error metrics: pure functions on torch tensors and torchmetrics ``Metric`` classes over them.

Protocols (Human3.6M conventions, as published with VideoPose3D):

- **P1, MPJPE**: mean per-joint position error, the Euclidean distance between predicted and true joints.
- **P2, P-MPJPE**: MPJPE after aligning each predicted pose to its target by the best similarity transform
  (scale, rotation, translation), one alignment per frame.
- **P3, N-MPJPE**: MPJPE after the least-squares scale of each predicted pose, one scale per frame.
- **MPJVE**: mean per-joint velocity error, the distance between the frame-to-frame differences.

Every function takes poses of shape ``(..., joints, 3)`` and returns errors in the unit of its inputs
(metres in this code base; reports multiply by 1000 for millimetres). Each ``*_per_frame`` function keeps
one joint-mean error per pose; the scalar functions average those over all poses, which is the mean over
every joint of every pose because each pose has the same number of joints.

The ``Metric`` classes sum per-frame errors into ``(num_groups,)`` float64 states, so that sums across
processes are exact and ``compute()`` can give the Human3.6M action-wise protocol: each action's
frame-averaged error, then the unweighted mean over actions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor
from torchmetrics import Metric

from components.errors import InputError
from components.geometry import procrustes_align

Reduction = Literal["groups", "frames"]


def check_poses(pred: Tensor, target: Tensor, min_ndim: int = 2, layout: str = "(..., joints, 3)") -> None:
    """Raise a ValueError unless ``pred`` and ``target`` share one shape of the given layout."""
    if pred.shape != target.shape or pred.ndim < min_ndim or pred.shape[-1] != 3:
        raise InputError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape {layout}")


def mpjpe_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """Protocol #1 (MPJPE) per pose: ``mean_j ||pred_j - target_j||_2``.

    Args:
        pred: ``(..., joints, 3)`` predicted poses.
        target: ``(..., joints, 3)`` true poses, same shape and unit.

    Returns:
        ``(...,)`` joint-mean Euclidean error of each pose, in the unit of the inputs.
    """
    check_poses(pred, target)
    return torch.linalg.vector_norm(pred - target, dim=-1).mean(dim=-1)


def p_mpjpe_per_frame(pred: Tensor, target: Tensor, allow_reflection: bool = False) -> Tensor:
    """Protocol #2 (P-MPJPE) per pose: MPJPE after ``pred`` is aligned to ``target`` by Procrustes.

    The alignment ``a * pred @ R + t`` minimises the squared error over one scale ``a``, rotation ``R`` and
    translation ``t`` per pose (see :func:`components.geometry.procrustes_align`). The published definition
    excludes reflections (det R = +1); ``allow_reflection=True`` lets ``R`` be any orthogonal matrix.

    Args:
        pred: ``(..., joints, 3)`` predicted poses.
        target: ``(..., joints, 3)`` true poses, same shape and unit.
        allow_reflection: also allow mirror images (det R = -1) in the alignment.

    Returns:
        ``(...,)`` joint-mean Euclidean error of each aligned pose, in the unit of the inputs.
    """
    check_poses(pred, target)
    return mpjpe_per_frame(procrustes_align(pred, target, allow_reflection=allow_reflection), target)


def n_mpjpe_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """Protocol #3 (N-MPJPE) per pose: MPJPE after the least-squares scale of ``pred``.

    ``s = sum_j <target_j, pred_j> / sum_j ||pred_j||^2`` minimises ``sum_j ||s pred_j - target_j||^2``;
    there is one ``s`` per pose and no rotation or translation.

    Args:
        pred: ``(..., joints, 3)`` predicted poses.
        target: ``(..., joints, 3)`` true poses, same shape and unit.

    Returns:
        ``(...,)`` joint-mean Euclidean error of each scaled pose, in the unit of the inputs.
    """
    return mpjpe_per_frame(least_squares_scaled(pred, target), target)


def least_squares_scaled(pred: Tensor, target: Tensor) -> Tensor:
    """``s * pred`` with the per-pose scale ``s`` minimising ``||s pred - target||^2`` (the scale of N-MPJPE).

    Args:
        pred, target: ``(..., joints, 3)``. Returns ``(..., joints, 3)``.
    """
    check_poses(pred, target)
    dot = (target * pred).sum(dim=(-2, -1), keepdim=True)
    # An all-zero prediction has dot == 0; the clamp makes its scale 0 instead of 0/0 = NaN.
    norm = pred.square().sum(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(pred.dtype).tiny)
    return dot / norm * pred


def gt_scale_mpjpe_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """MPJPE after scaling ``pred`` to the size of ``target``: ``s = ||target||_F / ||pred||_F`` per pose.

    An oracle: the scale comes from the ground truth (label it so in reports). Used for lifters whose output has
    no metric scale; the norm ratio is not the least-squares scale of N-MPJPE, so the two are not comparable.

    Args:
        pred, target: ``(..., joints, 3)`` root-relative poses. Returns ``(...,)`` errors in the target's unit.
    """
    check_poses(pred, target)
    tiny = torch.finfo(pred.dtype).tiny
    ratio = target.square().sum(dim=(-2, -1), keepdim=True).sqrt() / pred.square().sum(
        dim=(-2, -1), keepdim=True
    ).sqrt().clamp_min(tiny)
    return mpjpe_per_frame(ratio * pred, target)


def mpjve_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """MPJVE per frame step: ``mean_j ||(pred[t+1] - pred[t])_j - (target[t+1] - target[t])_j||_2``.

    Velocities are first differences along the frames axis (-3), in the input unit per frame.

    Args:
        pred: ``(..., frames, joints, 3)`` predicted sequences, ``frames >= 2``.
        target: ``(..., frames, joints, 3)`` true sequences, same shape and unit.

    Returns:
        ``(..., frames - 1)`` joint-mean velocity error of each step, in the input unit per frame.
    """
    check_poses(pred, target, min_ndim=3, layout="(..., frames >= 2, joints, 3)")
    if pred.shape[-3] < 2:
        raise InputError(f"pred and target {tuple(pred.shape)} need at least 2 frames on axis -3 for a velocity")
    velocity_error = torch.diff(pred, dim=-3) - torch.diff(target, dim=-3)
    return torch.linalg.vector_norm(velocity_error, dim=-1).mean(dim=-1)


def mpjpe(pred: Tensor, target: Tensor) -> Tensor:
    """Protocol #1 (MPJPE): mean of :func:`mpjpe_per_frame` over all poses ``(..., joints, 3)``; a scalar."""
    return mpjpe_per_frame(pred, target).mean()


def p_mpjpe(pred: Tensor, target: Tensor, allow_reflection: bool = False) -> Tensor:
    """Protocol #2 (P-MPJPE): mean of :func:`p_mpjpe_per_frame` over all poses ``(..., joints, 3)``."""
    return p_mpjpe_per_frame(pred, target, allow_reflection=allow_reflection).mean()


def n_mpjpe(pred: Tensor, target: Tensor) -> Tensor:
    """Protocol #3 (N-MPJPE): mean of :func:`n_mpjpe_per_frame` over all poses ``(..., joints, 3)``."""
    return n_mpjpe_per_frame(pred, target).mean()


def mpjve(pred: Tensor, target: Tensor) -> Tensor:
    """MPJVE: mean of :func:`mpjve_per_frame` over all steps of sequences ``(..., frames, joints, 3)``."""
    return mpjve_per_frame(pred, target).mean()


def group_index(group: Tensor | int | None, shape: torch.Size, num_groups: int, device: torch.device) -> Tensor:
    """The int64 group of every entry of a ``shape`` tensor, broadcast from a prefix-shaped ``group``.

    Args:
        group: integer tensor whose shape is a prefix of ``shape`` (e.g. ``(batch,)`` for per-frame errors
            ``(batch, frames)``), an int, or None (group 0 everywhere).
        num_groups: groups must lie in ``[0, num_groups)``.
    """
    if group is None:
        return torch.zeros(shape, dtype=torch.long, device=device)
    group = torch.as_tensor(group, device=device)
    if group.is_floating_point() or group.is_complex() or group.dtype == torch.bool:
        raise InputError(f"group must be an integer tensor, got dtype {group.dtype}")
    if tuple(group.shape) != tuple(shape[: group.ndim]):
        raise InputError(
            f"group {tuple(group.shape)} must be a prefix of the per-frame shape {tuple(shape)}, "
            "e.g. (batch,) for (batch, frames, joints, 3) poses"
        )
    # One host sync per update; index_add would otherwise fail with an opaque device assert.
    if bool(((group < 0) | (group >= num_groups)).any()):
        raise InputError(f"group values must lie in [0, {num_groups}), got {group.unique().tolist()}")
    trailing = (1,) * (len(shape) - group.ndim)
    return group.long().reshape(*group.shape, *trailing).expand(shape)


class GroupedPoseError(Metric, ABC):
    """Base of the pose-error metrics: per-frame errors summed per group (e.g. per action).

    States ``error_sum`` and ``count`` are float64 ``(num_groups,)`` tensors reduced by sum, so their values
    across processes equal the single-process ones up to float64 rounding of the additions.

    ``compute()`` with ``reduction="groups"`` (the default) is the Human3.6M action-wise protocol: the
    unweighted mean over non-empty groups of each group's frame-averaged error. With one group it is the
    frame-weighted mean, which ``reduction="frames"`` gives for any number of groups. Results are float64
    scalars in the unit of the inputs; with no data they are NaN.

    Subclasses define :meth:`per_frame`.

    Args:
        num_groups: number of groups, e.g. ``len(group_names)`` from :func:`group_actions`.
        reduction: ``"groups"`` (mean of group means) or ``"frames"`` (mean over all frames).
        kwargs: passed to :class:`torchmetrics.Metric` (e.g. ``sync_on_compute=False``).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    error_sum: Tensor
    count: Tensor

    def __init__(self, *, num_groups: int = 1, reduction: Reduction = "groups", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
            raise InputError(f"num_groups must be a positive int, got {num_groups!r}")
        if reduction not in ("groups", "frames"):
            raise InputError(f"reduction must be 'groups' or 'frames', got {reduction!r}")
        self.num_groups = num_groups
        self.reduction = reduction
        self.add_state("error_sum", torch.zeros(num_groups, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(num_groups, dtype=torch.float64), dist_reduce_fx="sum")

    @abstractmethod
    def per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-frame errors of ``pred`` against ``target``; shapes are the subclass's."""

    def update(self, pred: Tensor, target: Tensor, group: Tensor | int | None = None) -> None:
        """Add the per-frame errors of a batch to their groups.

        Args:
            pred: predicted poses, e.g. ``(batch, frames, joints, 3)``.
            target: true poses, same shape.
            group: integer tensor whose shape is a prefix of the per-frame error shape, e.g. ``(batch,)``
                (one group per sequence) or ``(batch, frames)``; an int or None (group 0) for all frames.
        """
        errors = self.per_frame(pred.detach(), target.detach()).double()
        index = group_index(group, errors.shape, self.num_groups, errors.device).reshape(-1)
        # Out-of-place index_add + rebinding, not index_add_: under ddp_spawn the states arrive in shared
        # memory and in-place updates would add across ranks (reference/lightning_stack.md 4(b)).
        self.error_sum = self.error_sum.index_add(0, index, errors.reshape(-1))
        self.count = self.count.index_add(0, index, torch.ones_like(errors).reshape(-1))

    def _group_means(self) -> Tensor:
        """``(num_groups,)`` frame-averaged error per group from the current states; NaN where empty."""
        nan = torch.full_like(self.error_sum, float("nan"))
        return torch.where(self.count > 0, self.error_sum / self.count, nan)

    def compute(self) -> Tensor:
        """Action-wise (``"groups"``) or frame-weighted (``"frames"``) mean error, a float64 scalar."""
        if self.reduction == "frames":
            return self.error_sum.sum() / self.count.sum()
        present = self.count > 0
        # Empty groups get mean 0 here and weight 0 below; a NaN error in a present group still shows.
        means = self.error_sum / self.count.clamp_min(1)
        return (means * present).sum() / present.sum()

    def group_means(self) -> Tensor:
        """``(num_groups,)`` float64 frame-averaged error per group, NaN for groups with no frames.

        Under DDP this syncs the states like ``compute()``: call it on every rank, or build the metric with
        ``sync_on_compute=False`` for rank-local values.
        """
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn, process_group=self.process_group, should_sync=self.sync_on_compute
        ):
            return self._group_means()


class MPJPE(GroupedPoseError):
    """Protocol #1 (MPJPE) per group: see :func:`mpjpe_per_frame`.

    ``update(pred, target, group)`` takes poses ``(..., joints, 3)``; ``group`` is a prefix of ``(...)``.
    """

    def per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        return mpjpe_per_frame(pred, target)


class PMPJPE(GroupedPoseError):
    """Protocol #2 (P-MPJPE) per group: see :func:`p_mpjpe_per_frame`.

    ``update(pred, target, group)`` takes poses ``(..., joints, 3)``; ``group`` is a prefix of ``(...)``.

    Args:
        allow_reflection: also allow mirror images in the alignment (off in the published protocol).
        num_groups, reduction, kwargs: as in :class:`GroupedPoseError`.
    """

    def __init__(self, *, allow_reflection: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_reflection = allow_reflection

    def per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        return p_mpjpe_per_frame(pred, target, allow_reflection=self.allow_reflection)


class NMPJPE(GroupedPoseError):
    """Protocol #3 (N-MPJPE) per group: see :func:`n_mpjpe_per_frame`.

    ``update(pred, target, group)`` takes poses ``(..., joints, 3)``; ``group`` is a prefix of ``(...)``.
    """

    def per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        return n_mpjpe_per_frame(pred, target)


class GTScaleMPJPE(GroupedPoseError):
    """MPJPE after the ground-truth norm-ratio scale per group: see :func:`gt_scale_mpjpe_per_frame` (an oracle)."""

    def per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        return gt_scale_mpjpe_per_frame(pred, target)


class MPJVE(GroupedPoseError):
    """MPJVE per group: see :func:`mpjve_per_frame`; each sequence adds ``frames - 1`` steps.

    ``update(pred, target, group)`` takes sequences ``(..., frames, joints, 3)``; ``group`` is a prefix of
    ``(..., frames - 1)``, e.g. ``(batch,)``. Steps across update calls are not seen, so pass whole
    sequences (or long chunks) per update.
    """

    def per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        return mpjve_per_frame(pred, target)


def action_group(name: str) -> str:
    """Human3.6M action group of an action key: its first word (``"Walking 1"`` -> ``"Walking"``).

    Keys such as ``"WalkDog"`` or ``"SittingDown 2"`` keep their first word, so the 30 sequences per
    subject merge into the 15 actions of the published per-action tables.
    """
    words = name.split()
    if not words:
        raise InputError(f"action name {name!r} is empty")
    return words[0]


def group_actions(action_names: Sequence[str]) -> tuple[list[str], Tensor]:
    """Group action keys for the action-wise protocol.

    Args:
        action_names: ``(n,)`` action keys, e.g. ``["Walking 1", "Walking", "Eating 2"]``.

    Returns:
        ``(group_names, group_index)``: the sorted unique groups (:func:`action_group`) and an int64 tensor
        ``(n,)`` with the position of each name's group in ``group_names``, ready for ``Metric.update``.
    """
    groups = [action_group(name) for name in action_names]
    group_names = sorted(set(groups))
    position = {g: i for i, g in enumerate(group_names)}
    return group_names, torch.tensor([position[g] for g in groups], dtype=torch.long)


_PCK_NAMES = {"pck", "auc", "Pck3D", "Auc3D", "pck_per_joint", "auc_per_joint", "scene_weighted"}


def __getattr__(name: str):
    """MPI-INF-3DHP PCK/AUC are part of this module's public API but live in ``components.pck``.

    Resolved lazily because ``components.pck`` builds on this module.
    """
    if name in _PCK_NAMES:
        from components import pck as official_3dhp

        return getattr(official_3dhp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
