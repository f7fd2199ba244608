"""Which detector a name gives, and the Ultralytics backend's conversion (with a stand-in ``ultralytics`` module:
the real package replaces the CPU torch with a CUDA build, so it is not installed here)."""

import sys
import types

import numpy as np
import pytest
import torch

from components.detectors.loading import UltralyticsPoseDetector, load_detector
from components.detectors.yolo_pose import YoloPoseDetector


class _Result:
    def __init__(self, people: int, with_conf: bool = True) -> None:
        xy = torch.arange(people * 17 * 2, dtype=torch.float32).reshape(people, 17, 2)
        conf = torch.full((people, 17), 0.5) if with_conf else None
        self.keypoints = types.SimpleNamespace(xy=xy, conf=conf)
        boxes = torch.tensor([[1.0, 2.0, 30.0, 40.0]]).repeat(people, 1)
        self.boxes = types.SimpleNamespace(xyxy=boxes, conf=torch.linspace(0.9, 0.8, people))


class _FakeYOLO:
    seen: list = []

    def __init__(self, name: str) -> None:
        if name == "broken.pt":
            raise FileNotFoundError("broken.pt not found online")
        self.name, self.task = name, "detect" if name.startswith("yolo11n.") else "pose"

    def predict(self, images, device, verbose):
        _FakeYOLO.seen.append((np.stack(images), device, verbose))
        return [_Result(2), _Result(0), _Result(1, with_conf=False)][: len(images)]


@pytest.fixture
def fake_ultralytics(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ultralytics", types.SimpleNamespace(YOLO=_FakeYOLO))
    monkeypatch.chdir(tmp_path)  # no weights file of that name here
    _FakeYOLO.seen = []


def test_a_model_name_goes_to_ultralytics_and_its_results_are_converted(fake_ultralytics):
    detector = load_detector("yolo11n-pose.pt")
    assert isinstance(detector, UltralyticsPoseDetector) and detector.model.name == "yolo11n-pose.pt"
    frames = np.zeros((3, 4, 5, 3), np.uint8)
    frames[..., 0] = 200  # red in RGB
    two, none, one = detector(frames)
    images, device, verbose = _FakeYOLO.seen[0]
    assert images[..., 2].min() == 200 and images[..., 0].max() == 0  # handed over as OpenCV's BGR
    assert (device, verbose) == ("cpu", False)
    assert two.keypoints.shape == (2, 17, 3) and two.keypoints.dtype == np.float32
    np.testing.assert_array_equal(two.keypoints[1, 3], [40.0, 41.0, 0.5])  # person 1, joint 3: x, y, score
    np.testing.assert_allclose(two.boxes, [[1, 2, 30, 40, 0.9], [1, 2, 30, 40, 0.8]], rtol=0, atol=1e-6)
    assert none.keypoints.shape == (0, 17, 3) and none.boxes.shape == (0, 5)
    np.testing.assert_array_equal(one.keypoints[0, :, 2], np.ones(17))  # no visibility: score 1


def test_names_that_cannot_become_a_pose_detector(fake_ultralytics):
    with pytest.raises(ValueError, match="detector 'yolo11n.pt': a detect model, not a pose model"):
        load_detector("yolo11n.pt")
    with pytest.raises(ValueError, match="detector 'broken.pt': Ultralytics cannot load it"):
        load_detector("broken.pt")


def test_an_existing_weights_file_runs_on_poselifts_own_network(yolo_weights, fake_ultralytics):
    assert isinstance(load_detector(str(yolo_weights)), YoloPoseDetector)
    assert _FakeYOLO.seen == []
