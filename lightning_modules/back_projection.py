"""Back-projection semi-supervised lifting (VideoPose3D): few 3D labels plus many unlabeled 2D sequences.

Each step takes a labeled and an equal-size unlabeled batch (``{"labeled": ..., "unlabeled": ...}`` from the
datamodule's ``CombinedLoader``) and runs them through the pose lifter and the trajectory lifter together,
labeled first, so that BatchNorm statistics cover both. Losses, all with weight 1:

- labeled: MPJPE of the root-relative pose, and the trajectory's MPJPE weighted by 1 / depth;
- unlabeled, from ``warmup_epochs`` on: pose + trajectory projected through each window's own camera (full
  distortion model, or the linear one) against the input 2D of the frames actually predicted;
- bone-length prior (from warm-up on): the unlabeled predictions' mean bone lengths against the labeled ones'.

Two defects of the reference implementation are fixed: in causal mode the reprojection target is the predicted
(last) frame, not the window centre; and when the 2D input layout differs from the 3D output layout, only joints
that correspond by name are compared.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from components.batch import PoseBatch
from components.camera import project_to_2d, project_to_2d_linear
from components.errors import InputError
from components.losses import bone_length_loss, reprojection_loss, trajectory_loss
from lightning_modules.supervised import SupervisedLifting


class BackProjectionLifting(SupervisedLifting):
    """Semi-supervised regime; optimisation as :class:`SupervisedLifting` (AMSGrad, lr decay, BN momentum).

    Args:
        lifter: pose lifter ``(B, T_in, J_in, F) -> (B, T_out, J_out, 3)``.
        trajectory_model: a separate lifter with one output joint (the root in camera space); required.
        warmup_epochs: epochs of labeled-only training before the unlabeled losses start (1 for large labeled
            sets, 20 for small ones in the published protocol).
        linear_projection: reproject without distortion.
        bone_length_prior: add the bone-length term.
        other arguments: see :class:`SupervisedLifting`.
    """

    def __init__(
        self,
        lifter: nn.Module,
        trajectory_model: nn.Module,
        *,
        warmup_epochs: int = 1,
        linear_projection: bool = False,
        bone_length_prior: bool = True,
        **options,
    ) -> None:
        if trajectory_model is None:
            raise InputError("back-projection needs a trajectory_model (a lifter with num_joints_out: 1)")
        super().__init__(lifter, trajectory_model, **options)
        self.warmup_epochs, self.linear_projection = warmup_epochs, linear_projection
        self.bone_length_prior = bone_length_prior
        names_in = set(self.input_skeleton.joint_names)
        shared = [name for name in self.output_skeleton.joint_names if name in names_in]
        if not shared:
            raise InputError(
                f"layouts {self.input_skeleton.name!r} and {self.output_skeleton.name!r} share no joint names to "
                "reproject"
            )
        # Reprojection compares output joints with the input joints of the same name (e.g. COCO in, H36M out).
        self.reprojected_joints = (self.output_skeleton.indices(shared), self.input_skeleton.indices(shared))

    @property
    def training_streams(self) -> tuple[str, ...]:
        return ("labeled", "unlabeled")

    def reprojection(self, poses: Tensor, trajectory: Tensor, batch: PoseBatch) -> Tensor:
        """Reprojection loss of predicted ``poses`` ``(B, T_out, J_out, 3)`` + ``trajectory`` ``(B, T_out, 1, 3)``."""
        project = project_to_2d_linear if self.linear_projection else project_to_2d
        projected = project(poses + trajectory, batch.intrinsics)
        offset = self.timing.input_frame(0)
        observed = batch.keypoints_2d[:, offset : offset + poses.shape[1], :, :2]
        out_joints, in_joints = self.reprojected_joints
        return reprojection_loss(projected[:, :, list(out_joints)], observed[:, :, list(in_joints)])

    def training_step(self, batch: dict[str, PoseBatch], batch_idx: int) -> Tensor:
        if not isinstance(batch, dict) or set(batch) != {"labeled", "unlabeled"}:
            raise TypeError(
                "BackProjectionLifting needs labeled and unlabeled data: set data.init_args.unlabeled_subjects"
            )
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        warm = self.current_epoch >= self.warmup_epochs
        # Labeled first, then unlabeled, in one forward pass: BatchNorm normalises over both.
        inputs = torch.cat([labeled.keypoints_2d, unlabeled.keypoints_2d]) if warm else labeled.keypoints_2d
        strided = inputs.shape[1] == self.receptive_field
        poses = self.lifter(inputs, strided=strided)
        trajectory = self.trajectory_model(inputs, strided=strided)
        count = len(labeled)
        losses = {
            **self.labeled_losses(poses[:count], labeled.poses_3d),
            "traj": trajectory_loss(trajectory[:count], labeled.trajectory),
        }
        if warm:
            losses["reprojection"] = self.reprojection(poses[count:], trajectory[count:], unlabeled)
            if self.bone_length_prior:
                losses["bone"] = bone_length_loss(poses[:count], poses[count:], self.output_skeleton)
        for name in ("traj", "reprojection", "bone"):
            if name in losses:
                self.log(f"train/loss_{name}", losses[name])
        loss = sum(losses.values())
        self.log("train/loss", loss, prog_bar=True)
        return loss
