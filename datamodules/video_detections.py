"""2D detections of a video or image folder by a pose detector, cached as COCO keypoint results.

The detector's output is written as a standard COCO keypoint results file (``image_id`` = frame index,
``category_id`` 1, 17 ``[x, y, score]`` triples, the box score as ``score``) and read back by the same reader
as any user's COCO file, so lifting does not depend on where the 2D came from. A small sidecar records the
video (size, modification time), the detector and the frame count; a later run on the same video with the same
detector reuses the file and skips detection (re-lifting with another model is then cheap).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from components.atomic import write_text_atomic
from components.errors import InputError
from datamodules.detection_files import Detections, read_coco_json
from datamodules.video import FrameSource

Detector = Callable[[np.ndarray], Sequence]
"""``frames (B, H, W, 3) uint8 RGB -> per frame an object with keypoints (N, 17, 3) [x, y, score] pixels and
boxes (N, 5) [x1, y1, x2, y2, score]`` (:class:`components.detectors.yolo_pose.YoloPoseDetector`)."""


def cache_paths(source: FrameSource, cache_dir: Path, detector_name: str) -> tuple[Path, Path]:
    """The COCO results file and its sidecar for ``source`` detected by ``detector_name``."""
    stem = f"{source.path.stem}.{Path(detector_name).stem}"
    return cache_dir / f"{stem}.keypoints.json", cache_dir / f"{stem}.keypoints.meta.json"


def _fingerprint(source: FrameSource, detector_name: str) -> dict:
    stat = source.path.stat() if not source.images else source.images[-1].stat()
    return {
        "source": str(source.path.resolve()),
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "images": len(source.images),
        "detector": detector_name,
    }


def detect(
    source: FrameSource,
    load_detector: Callable[[], Detector],
    detector_name: str,
    cache_dir: Path,
    batch_size: int = 8,
    progress: bool = True,
) -> Detections:
    """The COCO-17 detections of every frame of ``source`` (cached under ``cache_dir``; see the module docs).

    ``load_detector`` is called only when the cache cannot serve, so re-lifting neither loads nor fetches a
    model. Frames where nobody is detected stay in the timeline as empty frames. Nothing is written unless
    every frame was decoded and detected.
    """
    results, meta = cache_paths(source, cache_dir, detector_name)
    fingerprint = _fingerprint(source, detector_name)
    stored = _read_meta(meta)
    if stored is None or stored.get("fingerprint") != fingerprint or not results.is_file():
        entries, frames = _run(source, load_detector(), batch_size, progress)
        if not entries:
            raise InputError(f"{source.path}: nobody is detected in any of its {frames} frames")
        write_text_atomic(results, json.dumps(entries))
        write_text_atomic(meta, json.dumps({"fingerprint": fingerprint, "frames": frames}, indent=1))
        stored = {"frames": frames}
    found = read_coco_json(results, source.width, source.height, frames=stored["frames"])
    return dataclasses.replace(found, name=source.path.stem)


def _read_meta(path: Path) -> dict | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # no cache, or an unreadable one: detect again
    return meta if isinstance(meta, dict) and isinstance(meta.get("frames"), int) else None


def _run(source: FrameSource, detector: Detector, batch_size: int, progress: bool) -> tuple[list[dict], int]:
    from tqdm import tqdm

    entries: list[dict] = []
    frame = 0
    total = source.expected_frames or None
    with tqdm(total=total, unit="frame", desc=f"detecting {source.path.name}", disable=not progress) as bar:
        for batch in source.batches(batch_size):
            for people in detector(batch):
                entries.extend(_entries(frame, people.keypoints, people.boxes))
                frame += 1
            bar.update(len(batch))
    return entries, frame


def _entries(frame: int, keypoints: np.ndarray, boxes: np.ndarray) -> list[dict]:
    """COCO results entries of one frame's people (``bbox`` as x, y, width, height)."""
    corners = boxes[:, :4].astype(np.float64)
    sizes = np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], axis=1)
    return [
        {
            "image_id": frame,
            "category_id": 1,
            "keypoints": np.round(points.astype(np.float64), 3).reshape(-1).tolist(),
            "score": round(float(box[4]), 5),
            "bbox": np.round(size, 2).tolist(),
        }
        for points, box, size in zip(keypoints, boxes, sizes, strict=True)
    ]
