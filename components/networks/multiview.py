"""A lifter with a view-invariant pose embedding: encoder -> L2-normalised embedding -> pose head.

Encoder: a lifter's trunk (its ``features``, without its output layers ``output_layers``) on 2D keypoints that are
centred on their joint mean and scaled to unit RMS per frame, so position and size in the image carry no
information; a linear map to ``embedding_dim`` and L2 normalisation. By default the trunk is a
:class:`TemporalConvLifter`'s (filter widths ``(1, 1, 1)`` make it a single-frame residual MLP); any lifter with
``features``, ``feature_width`` and ``output_layers`` can be given instead (a sequence-to-sequence DSTformer's
per-joint representation is flattened over the joints).
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

from components.errors import InputError
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
        num_joints_in, num_joints_out, in_features: of the 2D input and the 3D output.
        filter_widths, channels, dropout, causal: of the default trunk, a :class:`TemporalConvLifter`.
        embedding_dim: size ``D`` of the L2-normalised embedding.
        head_channels: width of the pose head's two hidden layers.
        trunk: another lifter as the encoder's trunk (its joints and features must be ``num_joints_in`` and
            ``in_features``); its output layers are dropped.
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
        trunk: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.num_joints_in, self.num_joints_out, self.in_features = num_joints_in, num_joints_out, in_features
        self.embedding_dim = embedding_dim
        if trunk is None:
            trunk = TemporalConvLifter(num_joints_in, 1, in_features, filter_widths, channels, dropout, causal)
        _check_trunk(trunk, num_joints_in, in_features)
        for name in trunk.output_layers:  # the embedding replaces the trunk's output layers
            if getattr(trunk, name, None) is not None:
                setattr(trunk, name, None)
        self.trunk = trunk
        self.embedding = nn.Linear(trunk.feature_width, embedding_dim)
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
        """The convolutional trunk's filter widths; ``(1,)`` for a trunk without convolutions over time."""
        return tuple(getattr(self.trunk, "filter_widths", (1,)))

    @property
    def max_frames(self) -> int | None:
        return getattr(self.trunk, "max_frames", None)

    def set_bn_momentum(self, momentum: float) -> None:
        if hasattr(self.trunk, "set_bn_momentum"):  # trunks without BatchNorm (transformers) have none
            self.trunk.set_bn_momentum(momentum)

    def embed(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor:
        """``(B, T, J_in, F)`` -> ``(B, T - receptive_field + 1, D)`` unit-norm embeddings."""
        features = self.trunk.features(normalise_views(keypoints_2d), strided).flatten(2)  # joints, if any, flattened
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


def _check_trunk(trunk: nn.Module, num_joints_in: int, in_features: int) -> None:
    """Raise naming what a trunk lacks or what differs from the lifter's input."""
    missing = [name for name in ("features", "feature_width", "output_layers") if not hasattr(trunk, name)]
    if missing:
        raise InputError(f"trunk {type(trunk).__name__} lacks {missing}: it cannot serve as the encoder's trunk")
    given = (getattr(trunk, "num_joints_in", None), getattr(trunk, "in_features", None))
    if given != (num_joints_in, in_features):
        raise InputError(
            f"trunk {type(trunk).__name__} takes (joints, features) {given}, the lifter's input is "
            f"{(num_joints_in, in_features)}"
        )
