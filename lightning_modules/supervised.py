"""Supervised lifting (VideoPose3D): MPJPE on labeled windows, with the published optimisation recipe.

Training runs the lifter's strided single-frame twin on windows of exactly ``receptive_field`` frames;
evaluation runs the dilated model on whole sequences (``LiftingModule``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from components.batch import PoseBatch
from components.errors import InputError
from components.losses import pose_loss, scaled_pose_loss, trajectory_loss, velocity_loss
from lightning_modules.base import LiftingModule


class SupervisedLifting(LiftingModule):
    """Supervised regime.

    Args:
        lifter, trajectory_model, input_layout, output_layout, flip_test, flip_val, by_subject: see
            :class:`LiftingModule`.
        lr: Adam learning rate, multiplied by ``lr_decay`` after every epoch.
        lr_decay: per-epoch learning-rate factor (0.95 in the published recipe).
        bn_momentum: BatchNorm momentum at the start and at the end of training; decays geometrically.
        bn_schedule: ``"step"`` decays per optimizer step over the planned run (robust when epochs are short);
            ``"epoch"`` reproduces the published per-epoch decay.
        velocity_weight: weight of the velocity loss (:func:`components.losses.velocity_loss`) added to the
            labeled pose loss; 0 (the default) leaves it out. Sequence-to-sequence recipes use it.
        scale_weight: weight of the scale-aligned loss (:func:`components.losses.scaled_pose_loss`, N-MPJPE)
            added to the labeled pose loss; 0 leaves it out (MotionBERT's recipe: 0.5).
        weight_decay: decoupled weight decay (AdamW) when > 0; 0 is Adam (VideoPose3D's recipe).
        amsgrad: the AMSGrad variant (VideoPose3D's recipe); MotionBERT's uses plain AdamW.
    """

    def __init__(
        self,
        lifter: nn.Module,
        trajectory_model: nn.Module | None = None,
        *,
        lr: float = 1e-3,
        lr_decay: float = 0.95,
        bn_momentum: tuple[float, float] = (0.1, 0.001),
        bn_schedule: Literal["step", "epoch"] = "step",
        velocity_weight: float = 0.0,
        scale_weight: float = 0.0,
        weight_decay: float = 0.0,
        amsgrad: bool = True,
        input_layout: str = "h36m",
        output_layout: str = "h36m",
        flip_test: bool = True,
        flip_val: bool = False,
        by_subject: bool = False,
    ) -> None:
        super().__init__(
            lifter,
            trajectory_model,
            input_layout=input_layout,
            output_layout=output_layout,
            flip_test=flip_test,
            flip_val=flip_val,
            by_subject=by_subject,
        )
        self.save_hyperparameters()
        if bn_schedule not in ("step", "epoch"):
            raise InputError(f"bn_schedule must be 'step' or 'epoch', got {bn_schedule!r}")
        for name, weight in (("velocity_weight", velocity_weight), ("scale_weight", scale_weight),
                             ("weight_decay", weight_decay)):  # fmt: skip
            if weight < 0:
                raise InputError(f"{name} must be >= 0, got {weight}")
        self.velocity_weight, self.scale_weight = velocity_weight, scale_weight

    def training_step(self, batch: PoseBatch, batch_idx: int) -> torch.Tensor:
        if not isinstance(batch, PoseBatch):
            raise TypeError(
                "SupervisedLifting trains on labeled windows only, but the data also yields unlabeled ones: remove "
                "data.init_args.unlabeled_subjects, or train lightning_modules.back_projection.BackProjectionLifting"
            )
        strided = batch.keypoints_2d.shape[1] == self.receptive_field
        pred = self.lifter(batch.keypoints_2d, strided=strided)
        labeled = self.labeled_losses(pred, batch.poses_3d)
        loss = sum(labeled.values())
        if self.trajectory_model is not None:
            trajectory = self.trajectory_model(batch.keypoints_2d, strided=strided)
            loss_trajectory = trajectory_loss(trajectory, batch.trajectory)
            self.log("train/loss_traj", loss_trajectory)
            loss = loss + loss_trajectory
        self.log("train/loss", loss)
        return loss

    def labeled_losses(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        """The losses against 3D labels, logged (mm): the pose loss, and the weighted velocity loss when asked."""
        losses = {"pose": pose_loss(pred, target)}
        if self.velocity_weight > 0:
            losses["velocity"] = self.velocity_weight * velocity_loss(pred, target)
        if self.scale_weight > 0:
            losses["scaled"] = self.scale_weight * scaled_pose_loss(pred, target)
        for name, value in losses.items():
            self.log(f"train/loss_{name}_mm", value * 1000, prog_bar=name == "pose")
        return losses

    def on_train_batch_start(self, batch: PoseBatch, batch_idx: int) -> None:
        super().on_train_batch_start(batch, batch_idx)
        momentum = self.bn_momentum_now()
        for model in (self.lifter, self.trajectory_model):
            if hasattr(model, "set_bn_momentum"):  # networks without BatchNorm (e.g. transformers) have none
                model.set_bn_momentum(momentum)
        self.log("train/bn_momentum", momentum)

    def bn_momentum_now(self) -> float:
        """``m0 * (m1 / m0) ** progress`` with progress in [0, 1] over the planned run."""
        start, end = self.hparams.bn_momentum
        if self.hparams.bn_schedule == "epoch":
            progress = self.current_epoch / max(1, self.trainer.max_epochs or 1)
        else:
            progress = self.global_step / max(1, self.trainer.estimated_stepping_batches)
        return start * math.exp(min(progress, 1.0) * math.log(end / start))

    def configure_optimizers(self):
        hp = self.hparams
        if hp.weight_decay > 0:
            optimizer = torch.optim.AdamW(self.parameters(), hp.lr, weight_decay=hp.weight_decay, amsgrad=hp.amsgrad)
        else:
            optimizer = torch.optim.Adam(self.parameters(), lr=hp.lr, amsgrad=hp.amsgrad)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.hparams.lr_decay)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
