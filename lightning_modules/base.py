"""LiftingModule: the lifter, its evaluation and the shared validation / test / predict steps.

Every regime subclasses it and writes its own ``training_step`` (and ``configure_optimizers``); evaluation is
written once here so that all regimes report comparable numbers.

A lifter maps ``(B, T_in, J_in, F)`` screen-normalised 2D to ``(B, T_in - receptive_field + 1, J_out, 3)``
root-relative camera-space poses in metres, exposes ``receptive_field`` and ``causal``, and accepts
``strided=True`` for training windows of exactly ``receptive_field`` frames (its fast single-frame twin).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import lightning.pytorch as pl
from torch import Tensor, nn

from components.batch import PoseBatch
from components.geometry import flip_horizontal
from components.metrics import MPJPE, MPJVE, NMPJPE, PMPJPE
from components.report import ResultTable, group_table
from components.skeleton import layout
from lightning_modules.figures import pose_figure
from lightning_modules.hparams import complete_specs

PROTOCOLS = {"P1": MPJPE, "P2": PMPJPE, "P3": NMPJPE, "MPJVE": MPJVE}
EVAL_STAGES = ("val", "test")

# Regimes call plain save_hyperparameters(): under the CLI the networks are stored as class_path specs (which
# load_from_checkpoint rebuilds); built in Python they are stored as objects. Either way is intended.
warnings.filterwarnings("ignore", message=r"Attribute '(lifter|trajectory_model|discriminator)' is an instance of")


class LiftingModule(pl.LightningModule):
    """Shared evaluation for every regime.

    Args:
        lifter: the 2D -> 3D network (see the module docstring for its contract).
        trajectory_model: optional network of the same contract with one output joint: the root position in
            camera space; its error is reported as ``traj``.
        input_layout, output_layout: skeleton layouts of the 2D input and 3D output (flip needs the names).
        flip_test: average the prediction with the un-mirrored prediction of the mirrored input at test time.
        flip_val: the same during validation (off by default, as in the published protocol).
        by_subject: also report the protocol table per subject.
    """

    def __init__(
        self,
        lifter: nn.Module,
        trajectory_model: nn.Module | None = None,
        input_layout: str = "h36m",
        output_layout: str = "h36m",
        flip_test: bool = True,
        flip_val: bool = False,
        by_subject: bool = False,
    ) -> None:
        super().__init__()
        self.lifter, self.trajectory_model = lifter, trajectory_model
        self.input_skeleton, self.output_skeleton = layout(input_layout), layout(output_layout)
        self.flip = {"val": flip_val, "test": flip_test, "predict": flip_test}
        self.by_subject = by_subject
        self.action_groups: tuple[str, ...] = ()
        self.subjects: tuple[str, ...] = ()
        self.metrics = nn.ModuleDict()
        self.last_tables: dict[str, list[ResultTable]] = {}

    # -- the lifter's timing, read by the data (linked by the CLI) ------------------------------------------
    @property
    def receptive_field(self) -> int:
        return int(self.lifter.receptive_field)

    @property
    def causal(self) -> bool:
        return bool(getattr(self.lifter, "causal", False))

    # -- prediction ------------------------------------------------------------------------------------------
    def lift(self, keypoints_2d: Tensor, model: nn.Module | None = None, flip: bool = False) -> Tensor:
        """Run ``model`` (default: the lifter) on whole windows; with ``flip`` average with the mirrored input.

        Args:
            keypoints_2d: ``(B, T_in, J_in, F)``. Returns ``(B, T_out, J_out, 3)`` (or ``(B, T_out, 1, 3)``).
        """
        model = self.lifter if model is None else model
        pred = model(keypoints_2d)
        if flip:
            mirrored = model(flip_horizontal(keypoints_2d, self.input_skeleton))
            if pred.shape[-2] == self.output_skeleton.num_joints:
                mirrored = flip_horizontal(mirrored, self.output_skeleton)
            else:  # a trajectory: only x changes sign
                mirrored = mirrored * mirrored.new_tensor([-1.0, 1.0, 1.0])
            pred = (pred + mirrored) / 2
        return pred

    # -- evaluation ------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        data = self.trainer.datamodule if self._trainer is not None else None
        if data is not None:
            self.action_groups, self.subjects = tuple(data.action_groups), tuple(data.subjects)
        actions = max(1, len(self.action_groups))
        for stage_name in EVAL_STAGES:
            self.metrics[stage_name] = self._metric_set(actions)
            if self.by_subject:  # groups are (subject, action) pairs
                self.metrics[f"{stage_name}_by_subject"] = self._metric_set(actions * max(1, len(self.subjects)))

    def _metric_set(self, groups: int) -> nn.ModuleDict:
        metrics = {name: cls(num_groups=groups) for name, cls in PROTOCOLS.items()}
        if self.trajectory_model is not None:
            metrics["traj"] = MPJPE(num_groups=groups)
        return nn.ModuleDict(metrics)

    def _evaluate(self, batch: PoseBatch, stage: str) -> Tensor:
        if not batch.labeled:
            raise ValueError(f"{stage} batches need 3D targets: the {stage} split is unlabeled")
        flip = self.flip[stage]
        pred = self.lift(batch.keypoints_2d, flip=flip)
        trajectory = None
        if self.trajectory_model is not None and batch.trajectory is not None:
            trajectory = self.lift(batch.keypoints_2d, self.trajectory_model, flip)
        self._update(self.metrics[stage], batch, pred, trajectory, batch.action)
        if self.by_subject:
            group = batch.subject * max(1, len(self.action_groups)) + batch.action
            self._update(self.metrics[f"{stage}_by_subject"], batch, pred, trajectory, group)
        return pred

    @staticmethod
    def _update(metrics: nn.ModuleDict, batch: PoseBatch, pred: Tensor, trajectory: Tensor | None, group: Tensor):
        for name in ("P1", "P2", "P3"):
            metrics[name].update(pred, batch.poses_3d, group)
        if pred.shape[1] > 1:  # a velocity needs two frames
            metrics["MPJVE"].update(pred, batch.poses_3d, group)
        if trajectory is not None:
            metrics["traj"].update(trajectory, batch.trajectory, group)

    def validation_step(self, batch: PoseBatch, batch_idx: int) -> None:
        pred = self._evaluate(batch, "val")
        if batch_idx == 0 and self.trainer.is_global_zero and not self.trainer.sanity_checking:
            self._log_figure(batch, pred)

    def test_step(self, batch: PoseBatch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: PoseBatch, batch_idx: int) -> dict[str, Tensor]:
        """Poses ``(B, T_out, J_out, 3)`` (and ``trajectory`` when a trajectory model exists) with their ids."""
        out = {"poses_3d": self.lift(batch.keypoints_2d, flip=self.flip["predict"])}
        if self.trajectory_model is not None:
            out["trajectory"] = self.lift(batch.keypoints_2d, self.trajectory_model, self.flip["predict"])
        return out | {"sequence": batch.sequence, "start": batch.start}

    def on_validation_epoch_end(self) -> None:
        values = self._log_stage("val")
        if "P1" in values:
            self.log("hp/val_p1_mm", values["P1"], sync_dist=True)

    def on_test_epoch_end(self) -> None:
        self._log_stage("test")
        tables = self.result_tables("test")
        self.last_tables["test"] = tables
        if self.trainer.is_global_zero:
            self._report(tables)
        self._reset("test")

    def _reset(self, stage: str) -> None:
        for key in (stage, f"{stage}_by_subject"):
            for metric in self.metrics[key].values() if key in self.metrics else ():
                metric.reset()

    def _log_stage(self, stage: str) -> dict[str, float]:
        """Log each protocol's action-wise mean in millimetres (every rank computes: it syncs); returns them."""
        values = {}
        for name, metric in self.metrics[stage].items():
            value = float(metric.compute()) * 1000
            if math.isfinite(value):  # NaN: no frames, e.g. MPJVE of single-frame chunks
                values[name] = value
                self.log(f"{stage}/{name.lower()}_mm", value, sync_dist=True)
        if stage == "val":
            self._reset("val")
        return values

    def result_tables(self, stage: str) -> list[ResultTable]:
        """The protocol table per action group, then one per subject when ``by_subject``; millimetres."""
        actions = list(self.action_groups) or ["all"]
        tables = [self._table(self.metrics[stage], 0, actions, f"{stage}_protocols", f"{stage}: all subjects (mm)")]
        for i, subject in enumerate(self.subjects if self.by_subject else ()):
            offset = i * len(actions)
            by_subject = self.metrics[f"{stage}_by_subject"]
            table = self._table(by_subject, offset, actions, f"{stage}_protocols_{subject}", f"{stage}: {subject} (mm)")
            if len(table.rows) > 1:  # subjects of other splits have no rows here
                tables.append(table)
        return tables

    @staticmethod
    def _table(metrics: nn.ModuleDict, offset: int, actions: list[str], name: str, title: str) -> ResultTable:
        columns = {
            name: (metric.group_means()[offset : offset + len(actions)] * 1000).tolist()
            for name, metric in metrics.items()
        }
        return group_table(name, title, "action", actions, columns, "average")

    def _report(self, tables: list[ResultTable]) -> None:
        folder = self._report_folder()
        for table in tables:
            print(table.format(), flush=True)
        if folder is not None:
            for table in tables:
                table.write(folder)

    def _report_folder(self) -> Path | None:
        """Next to the evaluated checkpoint, else the logger's run folder."""
        ckpt = getattr(self.trainer, "ckpt_path", None)
        if ckpt:
            return Path(ckpt).parent
        log_dir = self.trainer.log_dir
        return Path(log_dir) if log_dir else None

    def _log_figure(self, batch: PoseBatch, pred: Tensor) -> None:
        experiment = getattr(self.logger, "experiment", None)
        if experiment is None or not hasattr(experiment, "add_figure"):
            return
        figure = pose_figure(batch, pred, self.input_skeleton, self.output_skeleton, self.receptive_field)
        experiment.add_figure("val/poses", figure, self.global_step)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        complete_specs(
            checkpoint.get("hyper_parameters", {}), {"lifter": self.lifter, "trajectory_model": self.trajectory_model}
        )

    def on_fit_start(self) -> None:
        if self.logger is not None and hasattr(self.logger, "log_hyperparams"):
            self.logger.log_hyperparams(self.hparams, {"hp/val_p1_mm": float("nan")})
