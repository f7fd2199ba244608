"""Every detections reader under random corruption: a clean result or one error naming the file, never a traceback.

Each case writes a valid file of one format, damages it (truncation, byte flips, an edited entry) and loads it
through :class:`datamodules.detections.DetectionsDataModule`, the path ``poselift predict`` takes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from components.errors import PoseliftError
from datamodules.detections import DetectionsDataModule

FRAMES, JOINTS = 6, 17
CASES_PER_FORMAT = 40
ODD_VALUES = (None, "x", -1, 1e40, [], {}, True, float("nan"), [1, 2], "3.jpg", {"keypoints": 1})


def _person(frame: int, shift: float = 0.0) -> np.ndarray:
    rows = np.arange(JOINTS, dtype=np.float32)
    return np.stack([300 + 40 * (rows % 4) + 10 * frame + shift, 100 + 20 * rows, np.full(JOINTS, 0.9)], -1)


def _coco(path: Path) -> Path:
    entries = [
        {"image_id": f, "category_id": 1, "keypoints": _person(f, s).reshape(-1).tolist(), "score": 0.9 - s / 1000}
        for f in range(FRAMES) for s in (0.0, 400.0)
    ]  # fmt: skip
    path.write_text(json.dumps(entries))
    return path


def _mmpose(path: Path) -> Path:
    info = [
        {"frame_id": f + 1, "instances": [{"keypoints": _person(f)[:, :2].tolist(), "keypoint_scores": [0.9] * JOINTS,
                                           "bbox": [[0, 0, 9, 9]], "bbox_score": 0.8}]}
        for f in range(FRAMES)
    ]  # fmt: skip
    path.write_text(json.dumps({"meta_info": {"dataset_name": "coco"}, "instance_info": info}))
    return path


def _openpose(folder: Path) -> Path:
    folder.mkdir()
    for frame in range(FRAMES):
        people = [{"pose_keypoints_2d": _person(frame).reshape(-1).tolist()}]
        (folder / f"cam01.{frame:04d}.json").write_text(json.dumps({"version": 1.3, "people": people}))
    return folder


def _videopose3d(path: Path) -> Path:
    positions = {"walk.mp4": {"custom": [np.stack([_person(f)[:, :2] for f in range(FRAMES)])]}}
    metadata = {"layout_name": "coco", "num_joints": JOINTS, "video_metadata": {"walk.mp4": {"w": 1000, "h": 500}}}
    np.savez_compressed(path, positions_2d=positions, metadata=metadata)
    return path


def _npy(path: Path) -> Path:
    np.save(path, np.stack([_person(f) for f in range(FRAMES)]))
    return path


def _csv(path: Path) -> Path:
    rows = np.stack([_person(f).reshape(-1) for f in range(FRAMES)])
    header = ",".join(f"v{i}" for i in range(rows.shape[1]))
    np.savetxt(path, rows, delimiter=",", header=header, comments="")
    return path


WRITERS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "coco_json": (_coco, "walk.json"),
    "mmpose_json": (_mmpose, "predictions.json"),
    "openpose": (_openpose, "walk_json"),
    "videopose3d": (_videopose3d, "walk.npz"),
    "npy": (_npy, "walk.npy"),
    "csv": (_csv, "walk.csv"),
}


def _victim(path: Path, rng: np.random.Generator) -> Path:
    """The file to damage: the file itself, or one file of an OpenPose folder."""
    return sorted(path.glob("*.json"))[rng.integers(FRAMES)] if path.is_dir() else path


def _truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: rng.integers(len(data))]


def _flip_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    damaged = bytearray(data)
    for at in rng.integers(len(data), size=rng.integers(1, 6)):
        damaged[at] = rng.integers(256)
    return bytes(damaged)


def _edit_entry(data: bytes, rng: np.random.Generator) -> bytes:
    """Replace one value anywhere in the JSON tree (JSON files only; other formats get byte flips)."""
    try:
        content = json.loads(data)
    except ValueError:
        return _flip_bytes(data, rng)
    places = []

    def walk(node: object) -> None:
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            places.append((node, key))
            walk(child)

    walk(content)
    node, key = places[rng.integers(len(places))]
    node[key] = ODD_VALUES[rng.integers(len(ODD_VALUES))]
    return json.dumps(content).encode()


DAMAGES = (_truncate, _flip_bytes, _edit_entry)


@pytest.mark.parametrize("format", list(WRITERS))
def test_damaged_files_load_cleanly_or_fail_naming_the_file(tmp_path, format):
    writer, name = WRITERS[format]
    rng = np.random.default_rng(sum(map(ord, format)))
    failures = []
    for case in range(CASES_PER_FORMAT):
        (tmp_path / str(case)).mkdir()
        path = writer(tmp_path / str(case) / name)
        victim = _victim(path, rng)
        damage = DAMAGES[case % len(DAMAGES)]
        victim.write_bytes(damage(victim.read_bytes(), rng))
        options = {"source_layout": "coco"} if format in ("npy", "csv", "openpose") else {}
        data = DetectionsDataModule(str(path), width=1000.0, height=500.0, input_layout="coco", **options)
        try:
            data.setup("predict")
        except PoseliftError as error:
            message = str(error)
            if "\n" in message or (str(path) not in message and victim.name not in message):
                failures.append(f"case {case} ({damage.__name__}): message does not name the file: {message}")
        except Exception as error:  # noqa: BLE001 - the point of the test: any other exception is a bug
            failures.append(f"case {case} ({damage.__name__}): {type(error).__name__}: {error}")
        else:
            assert all(np.isfinite(s.keypoints_2d).all() for s in data.sequences["test"]), f"case {case}: non-finite"
    assert not failures, "\n".join(failures)
