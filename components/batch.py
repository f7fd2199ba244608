"""PoseBatch: the one typed batch that datamodules produce and regimes consume.

Shapes use ``B`` windows, ``T_in`` input frames, ``T_out`` output frames (``T_in = T_out + receptive_field - 1``),
``J_in``/``J_out`` input/output joints and ``F`` input features per joint (x, y and optionally a score).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from torch import Tensor


@dataclass(frozen=True)
class PoseBatch:
    """A batch of 2D keypoint windows with their 3D targets when labeled.

    Attributes:
        keypoints_2d: ``(B, T_in, J_in, F)`` screen-normalised 2D input (see docs/conventions.md).
        poses_3d: ``(B, T_out, J_out, 3)`` camera-space poses in metres, root-relative (root joint is zero);
            ``None`` for unlabeled data.
        trajectory: ``(B, T_out, 1, 3)`` root position in camera space, metres; ``None`` when unknown.
        intrinsics: ``(B, 9)`` normalised intrinsics ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``; ``None`` when
            the camera is unknown.
        sequence: ``(B,)`` index of each window's sequence in its split.
        start: ``(B,)`` first output frame of each window within its sequence.
        action: ``(B,)`` action-group index into the datamodule's ``action_groups``.
        subject: ``(B,)`` subject index into the datamodule's ``subjects``.
        flipped: ``(B,)`` bool, True for horizontally mirrored windows (training augmentation).
        valid: ``(B, T_out)`` bool, the output frames an evaluation scores; ``None``: all of them.
        activity: ``(B, T_out)`` int64 per-frame activity index into the datamodule's ``activities`` (-1: none);
            ``None`` when the dataset has no per-frame activities.
        recording: ``(B,)`` int64 index of the synchronized recording (one subject, action and block of frames,
            seen by several cameras) a window belongs to: windows with equal ``recording`` and ``start`` show
            the same instant from different views. ``None`` outside multi-view batches.
    """

    keypoints_2d: Tensor
    sequence: Tensor
    start: Tensor
    action: Tensor
    subject: Tensor
    flipped: Tensor
    poses_3d: Tensor | None = None
    trajectory: Tensor | None = None
    intrinsics: Tensor | None = None
    valid: Tensor | None = None
    activity: Tensor | None = None
    recording: Tensor | None = None

    def __len__(self) -> int:
        return self.keypoints_2d.shape[0]

    @property
    def labeled(self) -> bool:
        return self.poses_3d is not None

    def _map(self, fn) -> PoseBatch:
        return replace(self, **{f.name: fn(v) for f in fields(self) if (v := getattr(self, f.name)) is not None})

    def to(self, *args, **kwargs) -> PoseBatch:
        """Move every tensor (Lightning calls this to transfer the batch to the training device)."""
        return self._map(lambda t: t.to(*args, **kwargs))

    def pin_memory(self) -> PoseBatch:
        """Pin every tensor (the DataLoader calls this when ``pin_memory=True``)."""
        return self._map(lambda t: t.pin_memory())
