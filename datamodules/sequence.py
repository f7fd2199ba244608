"""PoseSequence: one camera's view of one recording, as readers hand it to the window sampler."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from components.errors import InputError


@dataclass(frozen=True)
class PoseSequence:
    """One continuous sequence, already in the framework's conventions (docs/conventions.md).

    Attributes:
        subject: e.g. ``"S9"``.
        action: the dataset's action key, e.g. ``"Walking 1"``.
        camera: camera identifier, e.g. ``"54138969"``.
        keypoints_2d: ``(T, J_in, F)`` float32 screen-normalised 2D keypoints.
        poses_3d: ``(T, J_out, 3)`` float32 camera-space poses in metres, root-relative (root joint zero);
            ``None`` for unlabeled sequences.
        trajectory: ``(T, 1, 3)`` float32 root position in camera space, metres; ``None`` when unlabeled.
        intrinsics: ``(9,)`` float32 normalised intrinsics, or ``None`` when the camera is unknown.
        fps: frame rate after any downsampling.
        valid: ``(T,)`` bool, the frames an evaluation scores (e.g. 3DHP ``valid_frame``); ``None``: all.
        activity: ``(T,)`` int64 per-frame activity, an index into the datamodule's ``activities`` (-1: none);
            ``None`` when the dataset has no per-frame activity labels.
    """

    subject: str
    action: str
    camera: str
    keypoints_2d: np.ndarray
    poses_3d: np.ndarray | None = None
    trajectory: np.ndarray | None = None
    intrinsics: np.ndarray | None = None
    fps: float = 50.0
    valid: np.ndarray | None = None
    activity: np.ndarray | None = None

    def __post_init__(self) -> None:
        frames = len(self.keypoints_2d)
        where = f"sequence {self.subject}/{self.action}/{self.camera}"
        if self.keypoints_2d.ndim != 3:
            raise InputError(f"{where}: keypoints_2d must be (frames, joints, features), got {self.keypoints_2d.shape}")
        for name in ("poses_3d", "trajectory"):
            value = getattr(self, name)
            if value is not None and (value.ndim != 3 or len(value) != frames or value.shape[-1] != 3):
                raise InputError(f"{where}: {name} must be ({frames}, joints, 3), got {value.shape}")
        for name in ("valid", "activity"):
            value = getattr(self, name)
            if value is not None and value.shape != (frames,):
                raise InputError(f"{where}: {name} must be ({frames},), got {value.shape}")
        if (self.poses_3d is None) != (self.trajectory is None):
            raise InputError(f"{where}: poses_3d and trajectory must both be given or both be None")

    def __len__(self) -> int:
        return len(self.keypoints_2d)

    @property
    def labeled(self) -> bool:
        return self.poses_3d is not None

    def frames(self, start: int, stop: int, copy: bool = False) -> PoseSequence:
        """Frames ``[start, stop)`` as a sequence of their own (views of this one's arrays unless ``copy``)."""
        take = (lambda a: a[start:stop].copy()) if copy else (lambda a: a[start:stop])
        arrays = ("keypoints_2d", "poses_3d", "trajectory", "valid", "activity")
        return replace(self, **{name: take(getattr(self, name)) for name in arrays if getattr(self, name) is not None})
