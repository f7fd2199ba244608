"""PosePredictionWriter: chunks in any order assemble to exact sequences; files hold the same numbers in mm."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from components.networks.temporal_conv import TemporalConvLifter
from components.skeleton import COCO_17, H36M_17
from datamodules.detections import VideoTrack
from lightning_modules.prediction_writer import (
    PosePredictionWriter,
    assemble_sequences,
    check_model_fits_data,
    output_stem,
)
from lightning_modules.supervised import SupervisedLifting

LENGTHS = [5, 3]


def frames_of(lengths: list[int], joints: int = 17, channels: int = 3) -> list[np.ndarray]:
    """Distinct values per sequence, frame, joint and channel: any misplaced frame shows."""
    return [
        (1000.0 * s + np.arange(n * joints * channels, dtype=np.float32)).reshape(n, joints, channels)
        for s, n in enumerate(lengths)
    ]


def chunk(sequences: list[np.ndarray], sequence: list[int], start: list[int], length: int) -> dict[str, np.ndarray]:
    values = np.stack([sequences[s][t : t + length] for s, t in zip(sequence, start, strict=True)])
    return {"poses_3d": values, "sequence": np.asarray(sequence), "start": np.asarray(start)}


def test_chunks_in_any_order_assemble_to_the_exact_sequences():
    truth = frames_of(LENGTHS)
    chunks = [  # out of order, different lengths, one batch of two windows
        chunk(truth, [0], [3], 2),
        chunk(truth, [1, 0], [0, 0], 3),
    ]
    assembled = assemble_sequences(chunks, LENGTHS, "poses_3d")
    assert [a.shape for a in assembled] == [(5, 17, 3), (3, 17, 3)]
    for got, expected in zip(assembled, truth, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_assembly_refuses_missing_frames_and_chunks_past_the_end():
    truth = frames_of(LENGTHS)
    with pytest.raises(ValueError, match=r"2 frames have no prediction, first frame 3 of sequence 0 \(5 frames\)"):
        assemble_sequences([chunk(truth, [0], [0], 3), chunk(truth, [1], [0], 3)], LENGTHS, "poses_3d")
    past = chunk(truth, [1], [0], 3) | {"start": np.asarray([1])}
    with pytest.raises(ValueError, match=r"frames 1\.\.3 lie outside sequence 1 \(3 frames\)"):
        assemble_sequences([past], LENGTHS, "poses_3d")
    with pytest.raises(ValueError, match="has no 'trajectory'"):
        assemble_sequences([chunk(truth, [1], [0], 3)], LENGTHS, "trajectory")


def track(name: str, frames: int, joints: int = 17) -> VideoTrack:
    keypoints = frames_of([frames], joints)[0] % 640
    empty = np.arange(frames) == 1
    return VideoTrack(
        name=name,
        keypoints=keypoints.astype(np.float32),
        filled=np.broadcast_to(empty[:, None], (frames, joints)).copy(),
        empty_frames=empty,
        person=np.where(empty, -1, 0),
        width=640.0,
        height=480.0,
        fps=25.0,
    )


def test_epoch_end_writes_each_video_in_millimetres_with_its_json_twin(tmp_path, capsys):
    videos = [track("walk.mp4", 5), track("sub/jump", 3)]
    poses = [p / 1000 for p in frames_of(LENGTHS)]  # metres, as the lifter predicts
    trajectories = [p[:, :1] for p in frames_of(LENGTHS)]
    predictions = [  # predict_step outputs (tensors), out of order
        {"poses_3d": poses[0][None, 2:], "trajectory": trajectories[0][None, 2:], "sequence": [0], "start": [2]},
        {"poses_3d": poses[1][None], "trajectory": trajectories[1][None], "sequence": [1], "start": [0]},
        {"poses_3d": poses[0][None, :2], "trajectory": trajectories[0][None, :2], "sequence": [0], "start": [0]},
    ]
    predictions = [{k: torch.as_tensor(np.asarray(v)) for k, v in p.items()} for p in predictions]
    writer = PosePredictionWriter(out_dir=str(tmp_path / "out"))
    trainer = SimpleNamespace(datamodule=SimpleNamespace(videos=videos))
    module = SimpleNamespace(input_skeleton=COCO_17, output_skeleton=H36M_17)
    writer.write_on_epoch_end(trainer, module, predictions, [])

    written = sorted(p.name for p in (tmp_path / "out").iterdir())  # and no temporary file left behind
    assert written == ["sub_jump.json", "sub_jump.npz", "walk.mp4.json", "walk.mp4.npz"]
    with np.load(tmp_path / "out/walk.mp4.npz") as saved:
        np.testing.assert_allclose(saved["poses_3d"], poses[0] * 1000, rtol=1e-6)  # metres -> mm
        np.testing.assert_array_equal(saved["trajectory"], trajectories[0] * 1000)
        np.testing.assert_array_equal(saved["keypoints_2d"], videos[0].keypoints[..., :2])
        np.testing.assert_array_equal(saved["empty_frames"], [False, True, False, False, False])
        np.testing.assert_array_equal(saved["person"], [0, -1, 0, 0, 0])
        assert saved["joint_names"].tolist() == list(H36M_17.joint_names)
        assert saved["input_joint_names"].tolist() == list(COCO_17.joint_names)
        assert (float(saved["fps"]), float(saved["width"]), float(saved["height"])) == (25.0, 640.0, 480.0)
        document = json.loads((tmp_path / "out/walk.mp4.json").read_text())
        frame = document["frames"][3]
        assert (frame["frame"], frame["empty"], frame["person"]) == (3, False, 0)
        np.testing.assert_allclose(frame["poses_3d"], saved["poses_3d"][3], atol=0.005, rtol=0)
        np.testing.assert_allclose(frame["trajectory"], saved["trajectory"][3, 0], atol=0.005, rtol=0)
        np.testing.assert_allclose(np.asarray(frame["keypoints_2d"])[:, 2], saved["scores"][3], atol=0.005, rtol=0)
    assert document["joint_names"] == list(H36M_17.joint_names) and document["fps"] == 25.0
    assert len(document["frames"]) == 5 and document["frames"][1]["empty"] and all(document["frames"][1]["filled"])
    out = capsys.readouterr().out
    assert "walk.mp4: 5 frames (1 empty)" in out and "sub/jump: 3 frames (1 empty)" in out
    assert writer.written[1]["npz"].name == "sub_jump.npz"


def test_output_names_are_plain_file_names():
    assert output_stem("walk.mp4") == "walk.mp4"
    assert output_stem("../a b/c") == "_a_b_c"
    assert output_stem("...") == "video"


def test_the_model_must_have_been_trained_on_the_data_layout_and_features(tmp_path):
    model = SupervisedLifting(TemporalConvLifter(filter_widths=(3,), channels=8), input_layout="h36m")
    path = tmp_path / "coco_model.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"input_layout": "coco", "output_layout": "h36m"}}, path)
    data = SimpleNamespace(features=2)
    with pytest.raises(ValueError, match=r"trained with input_layout 'coco'.*--data\.init_args\.input_layout coco"):
        check_model_fits_data(model, data, str(path))
    check_model_fits_data(model, data, None)  # nothing stored to compare
    with pytest.raises(ValueError, match=r"takes 2 features per joint but the data gives 3.*features 2"):
        check_model_fits_data(model, SimpleNamespace(features=3), None)
