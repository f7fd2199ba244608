"""Evaluation protocols: which metrics a dataset is scored with, how a batch updates them, and the tables.

A protocol is chosen by the datamodule (``PoseDataModule.evaluation_protocol``) and driven by the shared
evaluation step of ``LiftingModule``, so a model trained on one dataset is scored on another with that
dataset's official numbers and no code change:

- :class:`ActionwiseProtocol` (Human3.6M): P1, P2, P3 and MPJVE per action group, averaged over actions, and
  optionally per subject; the trajectory error when the model has a trajectory lifter.
- :class:`PckProtocol` (MPI-INF-3DHP): PCK and AUC on the 14 official joints, MPJPE and P-MPJPE on all joints,
  over valid frames only, per sequence (with the official scene scores) and per activity.

With ``scale_free`` (lifters without a metric scale, e.g. unsupervised ones) the action-wise protocol reports P2
(headline, no reflection), P2 with reflections, P3 and MPJPE at the ground-truth scale (an oracle); the 3DHP
protocol scales each prediction by its least-squares scale before PCK/AUC/MPJPE.

Every metric holds float64 sums reduced across processes, so DDP numbers equal single-process ones.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import partial

from torch import Tensor, nn

from components.batch import PoseBatch
from components.metrics import MPJPE, MPJVE, NMPJPE, PMPJPE, GTScaleMPJPE, least_squares_scaled
from components.pck import SEQUENCE_FRAME_WEIGHTS, Auc3D, Pck3D, scene_weighted
from components.report import ResultTable, group_table
from components.skeleton import Skeleton

MM = 1000.0  # reports are in millimetres; the code works in metres


class EvaluationProtocol(nn.Module, ABC):
    """Metrics of one evaluation stage. Call ``update`` per batch, then ``summary``/``tables`` on every rank
    (they synchronise across processes), then ``reset``."""

    @abstractmethod
    def update(self, batch: PoseBatch, pred: Tensor, trajectory: Tensor | None = None) -> None:
        """Score ``pred`` ``(B, T_out, J_out, 3)`` (and ``trajectory`` ``(B, T_out, 1, 3)``) against ``batch``."""

    @abstractmethod
    def summary(self) -> dict[str, float]:
        """The headline numbers keyed by log name (``p1_mm`` for the P1 in millimetres, ``pck`` ...)."""

    @abstractmethod
    def tables(self, stage: str) -> list[ResultTable]:
        """The protocol's result tables, names prefixed with ``stage``."""

    def reset(self) -> None:
        for metric in self.modules():
            if metric is not self and hasattr(metric, "reset"):
                metric.reset()


def _log_name(column: str) -> str:
    """``"P2 with reflection"`` -> ``"p2_with_reflection_mm"``."""
    return column.lower().replace(" ", "_").replace("-", "_") + "_mm"


def _finite(values: dict[str, float]) -> dict[str, float]:
    """Drop NaN entries (metrics that saw no frames, e.g. MPJVE of single-frame chunks)."""
    return {name: value for name, value in values.items() if math.isfinite(value)}


class ActionwiseProtocol(EvaluationProtocol):
    """The Human3.6M protocols P1, P2, P3 and MPJVE per action group (and per subject), millimetres.

    Args:
        action_groups: names of the action groups, indexed by ``PoseBatch.action``.
        subjects: names of the subjects, indexed by ``PoseBatch.subject``.
        by_subject: also tabulate each subject separately.
        trajectory: also score the trajectory (``traj``: MPJPE of the root position).
    """

    PROTOCOLS = {"P1": MPJPE, "P2": PMPJPE, "P3": NMPJPE, "MPJVE": MPJVE}
    SCALE_FREE = {
        "P2": PMPJPE,
        "P2 with reflection": partial(PMPJPE, allow_reflection=True),
        "P3": NMPJPE,
        "MPJPE GT scale": GTScaleMPJPE,
    }
    """For lifters without a metric scale (unsupervised): P2 (no reflection) is the headline; the last column uses
    the ground truth's scale (an oracle, labelled as such)."""

    def __init__(
        self,
        action_groups: Sequence[str] = (),
        subjects: Sequence[str] = (),
        by_subject: bool = False,
        trajectory: bool = False,
        scale_free: bool = False,
    ) -> None:
        super().__init__()
        self.action_groups, self.subjects = tuple(action_groups), tuple(subjects)
        self.by_subject, self.trajectory = by_subject, trajectory
        self.protocols = self.SCALE_FREE if scale_free else self.PROTOCOLS
        actions = max(1, len(self.action_groups))
        self.overall = self._metric_set(actions)
        # groups of the per-subject set are (subject, action) pairs
        self.per_subject = self._metric_set(actions * max(1, len(self.subjects))) if by_subject else None

    def _metric_set(self, groups: int) -> nn.ModuleDict:
        metrics = {name: cls(num_groups=groups) for name, cls in self.protocols.items()}
        if self.trajectory:
            metrics["traj"] = MPJPE(num_groups=groups)
        return nn.ModuleDict(metrics)

    def update(self, batch: PoseBatch, pred: Tensor, trajectory: Tensor | None = None) -> None:
        self._update(self.overall, batch, pred, trajectory, batch.action)
        if self.per_subject is not None:
            group = batch.subject * max(1, len(self.action_groups)) + batch.action
            self._update(self.per_subject, batch, pred, trajectory, group)

    @staticmethod
    def _update(metrics: nn.ModuleDict, batch: PoseBatch, pred: Tensor, trajectory: Tensor | None, group: Tensor):
        for name, metric in metrics.items():
            if name == "MPJVE":
                if pred.shape[1] > 1:  # a velocity needs two frames
                    metric.update(pred, batch.poses_3d, group)
            elif name != "traj":
                metric.update(pred, batch.poses_3d, group)
        if "traj" in metrics and trajectory is not None and batch.trajectory is not None:
            metrics["traj"].update(trajectory, batch.trajectory, group)

    def summary(self) -> dict[str, float]:
        """Each protocol's action-wise mean in millimetres, keyed ``p1_mm``, ``p2_mm``, ..."""
        return _finite({_log_name(name): float(m.compute()) * MM for name, m in self.overall.items()})

    def tables(self, stage: str) -> list[ResultTable]:
        """The protocol table per action group, then one per subject when ``by_subject``; millimetres."""
        actions = list(self.action_groups) or ["all"]
        tables = [self._table(self.overall, 0, actions, f"{stage}_protocols", f"{stage}: all subjects (mm)")]
        for i, subject in enumerate(self.subjects if self.per_subject is not None else ()):
            name, title = f"{stage}_protocols_{subject}", f"{stage}: {subject} (mm)"
            table = self._table(self.per_subject, i * len(actions), actions, name, title)
            if len(table.rows) > 1:  # subjects of other splits have no rows here
                tables.append(table)
        return tables

    @staticmethod
    def _table(metrics: nn.ModuleDict, offset: int, actions: list[str], name: str, title: str) -> ResultTable:
        columns = {
            key: (metric.group_means()[offset : offset + len(actions)] * MM).tolist() for key, metric in metrics.items()
        }
        return group_table(name, title, "action", actions, columns, "average")


class PckProtocol(EvaluationProtocol):
    """The MPI-INF-3DHP evaluation: PCK@150 mm and AUC (percent) on the 14 official joints, MPJPE and P-MPJPE
    (millimetres) on all joints, over valid frames only (``PoseBatch.valid``).

    Tables: per sequence (``PoseBatch.subject``: TS1..TS6 on the test set) followed by the scene scores GS, noGS
    and Outdoor (frame-weighted as in the official README, when their sequences are present) and ``all``
    (every valid frame pooled: the official "Total"); per activity (``PoseBatch.activity``) and ``all``.

    Args:
        sequences: names indexed by ``PoseBatch.subject`` (the datamodule's subjects).
        activities: names indexed by ``PoseBatch.activity``.
        skeleton: the output layout; PCK/AUC pick the official joints from it by name.
    """

    COLUMNS = ("PCK", "AUC", "MPJPE", "P-MPJPE")

    def __init__(
        self, sequences: Sequence[str], activities: Sequence[str], skeleton: Skeleton, scale_free: bool = False
    ) -> None:
        super().__init__()
        self.sequences, self.activities = tuple(sequences), tuple(activities)
        self.scale_free = scale_free
        self.by_sequence = self._metric_set(max(1, len(self.sequences)), skeleton)
        self.by_activity = self._metric_set(max(1, len(self.activities)), skeleton)

    @staticmethod
    def _metric_set(groups: int, skeleton: Skeleton) -> nn.ModuleDict:
        return nn.ModuleDict(
            {
                "PCK": Pck3D(skeleton=skeleton, num_groups=groups),
                "AUC": Auc3D(skeleton=skeleton, num_groups=groups),
                "MPJPE": MPJPE(num_groups=groups, reduction="frames"),
                "P-MPJPE": PMPJPE(num_groups=groups, reduction="frames"),
            }
        )

    def update(self, batch: PoseBatch, pred: Tensor, trajectory: Tensor | None = None) -> None:
        frames = pred.shape[:2]
        valid = batch.valid if batch.valid is not None else pred.new_ones(frames, dtype=bool)
        pred, target = pred[valid], batch.poses_3d[valid]  # (N, J, 3): valid frames only
        if self.scale_free:  # no metric scale: the least-squares scale of each pose first (as N-MPJPE)
            pred = least_squares_scaled(pred, target)
        sequence = batch.subject[:, None].expand(frames)[valid]
        for metric in self.by_sequence.values():
            metric.update(pred, target, sequence)
        if batch.activity is not None:
            labeled = batch.activity[valid] >= 0
            for metric in self.by_activity.values():
                metric.update(pred[labeled], target[labeled], batch.activity[valid][labeled])

    def summary(self) -> dict[str, float]:
        """Over every valid frame: ``pck``, ``auc`` (percent), ``p1_mm``, ``p2_mm``."""
        metrics = self.by_sequence
        values = {"pck": metrics["PCK"], "auc": metrics["AUC"], "p1_mm": metrics["MPJPE"], "p2_mm": metrics["P-MPJPE"]}
        return _finite({key: float(m.compute()) * (MM if key.endswith("_mm") else 1) for key, m in values.items()})

    def _columns(self, metrics: nn.ModuleDict, groups: int) -> dict[str, list[float]]:
        scale = {"PCK": 1.0, "AUC": 1.0, "MPJPE": MM, "P-MPJPE": MM}
        return {key: (metrics[key].group_means()[:groups] * scale[key]).tolist() for key in self.COLUMNS}

    def _pooled(self, metrics: nn.ModuleDict) -> tuple[float, ...]:
        scale = {"PCK": 1.0, "AUC": 1.0, "MPJPE": MM, "P-MPJPE": MM}
        return tuple(float(metrics[key].compute()) * scale[key] for key in self.COLUMNS)

    def tables(self, stage: str) -> list[ResultTable]:
        sequences = list(self.sequences) or ["all"]
        columns = self._columns(self.by_sequence, len(sequences))
        rows = _present_rows(sequences, columns)
        rows += self._scene_rows(sequences, columns)
        title = f"{stage}: MPI-INF-3DHP per sequence (PCK, AUC %; errors mm)"
        tables = [
            ResultTable(
                f"{stage}_3dhp_sequences",
                title,
                "sequence",
                self.COLUMNS,
                (*rows, ("all", self._pooled(self.by_sequence))),
            )
        ]
        if self.activities and float(self.by_activity["PCK"].count.sum()) > 0:
            columns = self._columns(self.by_activity, len(self.activities))
            rows = _present_rows(list(self.activities), columns)
            title = f"{stage}: MPI-INF-3DHP per activity (PCK, AUC %; errors mm)"
            tables.append(
                ResultTable(
                    f"{stage}_3dhp_activities",
                    title,
                    "activity",
                    self.COLUMNS,
                    (*rows, ("all", self._pooled(self.by_activity))),
                )
            )
        return tables

    def _scene_rows(self, sequences: list[str], columns: dict[str, list[float]]) -> list[tuple[str, tuple[float, ...]]]:
        """GS / noGS / Outdoor from the sequence scores, when all six official sequences were scored."""
        index = {name: i for i, name in enumerate(sequences)}
        if not all(name in index and math.isfinite(columns["PCK"][index[name]]) for name in SEQUENCE_FRAME_WEIGHTS):
            return []
        scenes = {
            key: scene_weighted({n: values[index[n]] for n in SEQUENCE_FRAME_WEIGHTS})
            for key, values in columns.items()
        }
        return [(scene, tuple(scenes[key][scene] for key in self.COLUMNS)) for scene in scenes["PCK"]]


def _present_rows(names: list[str], columns: dict[str, list[float]]) -> list[tuple[str, tuple[float, ...]]]:
    """One row per group that saw frames."""
    keys = tuple(columns)
    rows = [(name, tuple(float(columns[k][i]) for k in keys)) for i, name in enumerate(names)]
    return [(name, values) for name, values in rows if any(math.isfinite(v) for v in values)]
