"""A lifter with a view-invariant pose embedding: encoder -> L2-normalised embedding -> pose head.

Encoder: the temporal-convolution trunk of :class:`TemporalConvLifter` (filter widths ``(1, 1, 1)`` make it a
single-frame residual MLP) on 2D keypoints that are centred on their joint mean and scaled to unit RMS per frame,
so position and size in the image carry no information; a linear map to ``embedding_dim`` and L2 normalisation.
The metric loss makes the embedding the same for the synchronized views of one instant.

Pose head: the embedding alone cannot give a camera-frame pose (it is meant to be the same for every view), so the
head also sees the view: the screen-normalised 2D of the predicted frame. An MLP maps ``[embedding, 2D]`` to the
root-relative pose in metres.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.lifter import Timing
from components.networks.temporal_conv import TemporalConvLifter


def normalise_views(keypoints_2d: Tensor, eps: float = 1e-6) -> Tensor:
    """Centre ``(..., J, F)`` keypoints on their joint mean and scale x, y to unit RMS per frame (scores kept)."""
    xy = keypoints_2d[..., :2]
    centred = xy - xy.mean(dim=-2, keepdim=True)
    scale = centred.square().sum(dim=-1).mean(dim=-1, keepdim=True).sqrt().clamp_min(eps)
    return torch.cat([centred / scale[..., None], keypoints_2d[..., 2:]], dim=-1)


class MultiviewLifter(nn.Module):
    """Lifter contract (``receptive_field``, ``causal``, ``forward(x, strided)``) plus :meth:`embed`.

    Args:
        num_joints_in, num_joints_out, in_features, filter_widths, channels, dropout, causal: as
            :class:`TemporalConvLifter` (the encoder's trunk).
        embedding_dim: size ``D`` of the L2-normalised embedding.
        head_channels: width of the pose head's two hidden layers.
    """

    def __init__(
        self,
        num_joints_in: int = 17,
        num_joints_out: int = 17,
        in_features: int = 2,
        filter_widths: Sequence[int] = (3, 3, 3),
        channels: int = 256,
        dropout: float = 0.25,
        causal: bool = False,
        embedding_dim: int = 64,
        head_channels: int = 512,
    ) -> None:
        super().__init__()
        self.num_joints_in, self.num_joints_out, self.in_features = num_joints_in, num_joints_out, in_features
        self.embedding_dim = embedding_dim
        self.trunk = TemporalConvLifter(num_joints_in, 1, in_features, filter_widths, channels, dropout, causal)
        self.trunk.shrink = None  # the embedding replaces the trunk's output layer
        self.embedding = nn.Linear(channels, embedding_dim)
        self.head = nn.Sequential(
            nn.Linear(embedding_dim + num_joints_in * in_features, head_channels),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(head_channels, head_channels),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(head_channels, num_joints_out * 3),
        )

    @property
    def receptive_field(self) -> int:
        return self.trunk.receptive_field

    @property
    def causal(self) -> bool:
        return self.trunk.causal

    @property
    def filter_widths(self) -> tuple[int, ...]:
        return self.trunk.filter_widths

    def set_bn_momentum(self, momentum: float) -> None:
        self.trunk.set_bn_momentum(momentum)

    def embed(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor:
        """``(B, T, J_in, F)`` -> ``(B, T - receptive_field + 1, D)`` unit-norm embeddings."""
        features = self.trunk.features(normalise_views(keypoints_2d), strided)
        return F.normalize(self.embedding(features), dim=-1)

    def forward_with_embedding(self, keypoints_2d: Tensor, strided: bool = False) -> tuple[Tensor, Tensor]:
        """Poses ``(B, T_out, J_out, 3)`` (metres, root-relative) and embeddings ``(B, T_out, D)`` in one pass."""
        embedding = self.embed(keypoints_2d, strided)
        frames = embedding.shape[1]
        first = Timing.of(self).input_frame(0)
        view = keypoints_2d[:, first : first + frames].flatten(2)
        poses = self.head(torch.cat([embedding, view], dim=-1))
        return poses.reshape(*poses.shape[:2], self.num_joints_out, 3), embedding

    def forward(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor:
        """``(B, T, J_in, F)`` -> ``(B, T - receptive_field + 1, J_out, 3)`` root-relative poses in metres."""
        return self.forward_with_embedding(keypoints_2d, strided)[0]
