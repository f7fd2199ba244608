"""Multiview-consistent metric learning (MCSS idea, on 2D keypoints): few 3D labels plus synchronized views.

Each step takes a labeled batch and a batch of synchronized multi-view instants (``{"labeled": ...,
"multiview": ...}``, the streams it declares to the datamodule; the multi-view windows come from labeled and
unlabeled subjects alike and carry no 3D). One forward pass of the lifter over both (BatchNorm sees both):

- labeled: MPJPE of the root-relative pose from the pose head;
- multi-view: ``metric_weight`` x a metric loss on the embeddings: positives are the other views of the same
  instant, negatives the instants of other recordings and of the same recording more than ``tau`` frames away
  (``components.metric_learning``). ``triplet``: batch-hard triplet with ``margin``; ``infonce``: contrastive with
  ``temperature``. No camera parameters are used.

The lifter must offer ``forward_with_embedding(x, strided) -> (poses, embeddings)``
(:class:`components.networks.multiview.MultiviewLifter`). Evaluation is the shared one of ``LiftingModule``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from components.batch import PoseBatch
from components.errors import InputError
from components.metric_learning import batch_hard_triplet_loss, info_nce_loss, multiview_pairs
from lightning_modules.supervised import SupervisedLifting

METRIC_LOSSES = ("triplet", "infonce")


class MultiviewLifting(SupervisedLifting):
    """Metric-learning regime; optimisation as :class:`SupervisedLifting` (AMSGrad, lr decay, BN momentum).

    Args:
        lifter: a pose lifter with an embedding (``forward_with_embedding``).
        metric_loss: ``"triplet"`` (batch-hard, ``margin``) or ``"infonce"`` (``temperature``).
        metric_weight: lambda, the weight of the metric loss against the labeled MPJPE (metres).
        tau: frames within which two instants of one recording are neither positive nor negative.
        margin: triplet margin, in distance between unit-norm embeddings (0..2).
        temperature: InfoNCE temperature.
        retrieval_stride: frame stride of the cross-view retrieval report after testing (``RetrievalReport``).
        options: the options of :class:`SupervisedLifting` (learning rate, losses, layouts, flip test ...).
    """

    def __init__(
        self,
        lifter: nn.Module,
        trajectory_model: None = None,
        *,
        metric_loss: Literal["triplet", "infonce"] = "triplet",
        metric_weight: float = 0.1,
        tau: int = 25,
        margin: float = 0.2,
        temperature: float = 0.1,
        retrieval_stride: int = 10,
        **options,
    ) -> None:
        if metric_loss not in METRIC_LOSSES:
            raise InputError(f"metric_loss must be one of {METRIC_LOSSES}, got {metric_loss!r}")
        if not hasattr(lifter, "forward_with_embedding"):
            raise TypeError(
                f"{type(lifter).__name__} has no forward_with_embedding(); use "
                "components.networks.multiview.MultiviewLifter"
            )
        if trajectory_model is not None:  # the argument exists so that saved hyper-parameters load back
            raise InputError("multiview metric learning trains no trajectory model: leave trajectory_model unset")
        super().__init__(lifter, None, **options)
        self.metric_loss, self.metric_weight = metric_loss, metric_weight
        self.tau, self.margin, self.temperature = tau, margin, temperature
        self.retrieval = {"stride": retrieval_stride}

    @property
    def training_streams(self) -> tuple[str, ...]:
        return ("labeled", "multiview")

    def metric(self, embeddings: Tensor, batch: PoseBatch) -> Tensor:
        """The metric loss of ``(B, T_out, D)`` embeddings of a multi-view batch (every output frame an instant)."""
        frames = embeddings.shape[1]
        recording = batch.recording[:, None].expand(-1, frames).reshape(-1)
        frame = (batch.start[:, None] + torch.arange(frames, device=batch.start.device)).reshape(-1)
        positive, negative = multiview_pairs(recording, frame, self.tau)
        flat = embeddings.reshape(-1, embeddings.shape[-1])
        if self.metric_loss == "triplet":
            return batch_hard_triplet_loss(flat, positive, negative, self.margin)
        return info_nce_loss(flat, positive, negative, self.temperature)

    def training_step(self, batch: dict[str, PoseBatch], batch_idx: int) -> Tensor:
        if not isinstance(batch, dict) or set(batch) != {"labeled", "multiview"}:
            raise TypeError("MultiviewLifting needs labeled and multi-view batches (its training_streams)")
        labeled, views = batch["labeled"], batch["multiview"]
        if views.recording is None:
            raise InputError("multi-view batches must carry `recording` labels (PoseDataModule multiview loader)")
        inputs = torch.cat([labeled.keypoints_2d, views.keypoints_2d])
        poses, embeddings = self.lifter.forward_with_embedding(inputs, strided=inputs.shape[1] == self.receptive_field)
        count = len(labeled)
        metric = self.metric(embeddings[count:], views)
        self.log("train/loss_metric", metric)
        loss = sum(self.labeled_losses(poses[:count], labeled.poses_3d).values()) + self.metric_weight * metric
        self.log("train/loss", loss)
        return loss
