"""Choosing a detector by what the user names: a local weights file runs on poselift's own network; a model name
is fetched and run by the Ultralytics package when it is installed (its own download, only on the user's word).

Every detector has one interface: ``frames (B, H, W, 3) uint8 RGB -> list of per-frame results`` with
``keypoints (N, 17, 3)`` float32 ``[x, y, score]`` in pixels (COCO-17 order) and ``boxes (N, 5)`` float32
``[x1, y1, x2, y2, score]``, people sorted by score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.errors import InputError


def load_detector(name: str, device: str | torch.device = "cpu"):
    """The detector ``name`` names: an existing YOLO pose ``.pt`` file (no Ultralytics needed), else a model name
    for the Ultralytics package (e.g. ``yolo11n-pose.pt``, fetched by it)."""
    path = Path(name)
    if path.is_file():
        from components.detectors.yolo_pose import YoloPoseDetector

        return YoloPoseDetector.from_weights(path, device=device)
    if path.parent != Path("."):
        raise InputError(f"detector weights {name}: file not found")
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        raise InputError(
            f"detector {name!r}: no such weights file here, and fetching a model by name needs the Ultralytics "
            "package (pip install ultralytics); or give a local YOLO pose weights file "
            "(--data.init_args.detector PATH/yolo11n-pose.pt)"
        ) from None
    return UltralyticsPoseDetector(name, device)


class UltralyticsPoseDetector:
    """A YOLO pose model run by the Ultralytics package (which fetches a named model on first use)."""

    def __init__(self, name: str, device: str | torch.device = "cpu") -> None:
        from ultralytics import YOLO

        try:
            self.model = YOLO(name)
        except (FileNotFoundError, OSError, RuntimeError, ValueError) as error:
            raise InputError(f"detector {name!r}: Ultralytics cannot load it ({error})") from None
        if getattr(self.model, "task", "pose") != "pose":
            raise InputError(f"detector {name!r}: a {self.model.task} model, not a pose model (e.g. yolo11n-pose)")
        self.device = str(device)

    def __call__(self, frames: np.ndarray) -> list:
        from components.detectors.yolo_pose import PersonDetections

        # Ultralytics reads numpy images as OpenCV's BGR.
        results = self.model.predict(list(frames[..., ::-1]), device=self.device, verbose=False)
        return [PersonDetections(keypoints=_keypoints(result), boxes=_boxes(result)) for result in results]


def _keypoints(result) -> np.ndarray:
    xy = result.keypoints.xy.cpu().numpy().astype(np.float32)
    conf = result.keypoints.conf
    score = np.ones(xy.shape[:2], np.float32) if conf is None else conf.cpu().numpy().astype(np.float32)
    return np.concatenate([xy, score[..., None]], -1)


def _boxes(result) -> np.ndarray:
    boxes = result.boxes
    return np.concatenate([boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy()[:, None]], 1).astype(np.float32)
