"""DetectionsDataModule on small files of every format: exact pixels, masks, followed persons and screen units."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from components.skeleton import COCO_17, H36M_17, OPENPOSE_BODY_25
from datamodules.detections import DetectionsDataModule

WIDTH, HEIGHT = 1000.0, 500.0
STEP = 10.0  # pixels the person moves right per frame: interpolated frames then have exact values


def coco_person(shift: float = 0.0, scale: float = 1.0, score: float = 0.9) -> np.ndarray:
    """``(17, 3)`` COCO keypoints of a standing person, nose at ``(250, 125)`` when unshifted and unscaled."""
    rows = np.arange(17, dtype=np.float32)
    x = 250.0 + scale * 40.0 * (rows % 4)  # a few distinct columns
    y = 125.0 + scale * 20.0 * rows  # head at the top, ankles at the bottom
    points = np.stack([x + shift, y, np.full(17, score, np.float32)], -1)
    return points.astype(np.float32)


def coco_entry(image_id: int, points: np.ndarray, score: float) -> dict:
    return {"image_id": image_id, "category_id": 1, "keypoints": points.reshape(-1).tolist(), "score": score}


def screen(pixels: np.ndarray) -> np.ndarray:
    return pixels / WIDTH * 2 - np.asarray([1.0, HEIGHT / WIDTH], np.float32)


@pytest.fixture
def coco_video(tmp_path: Path) -> Path:
    """5 frames: the walker (entry slot 1) and a small, confidently scored bystander far right (slot 0); the walker
    is absent in frame 2 and his left wrist undetected in frame 3."""
    entries = []
    for frame in range(5):
        entries.append(coco_entry(frame, coco_person(shift=600.0, scale=0.2, score=1.0), score=0.99))
        if frame == 2:
            continue
        walker = coco_person(shift=STEP * frame)
        if frame == 3:
            walker[COCO_17.index("left_wrist")] = 0.0  # COCO's "not detected"
        entries.append(coco_entry(frame, walker, score=0.8))
    path = tmp_path / "walk.json"
    path.write_text(json.dumps(entries))
    return path


def loaded(path, **options) -> DetectionsDataModule:
    data = DetectionsDataModule(str(path), **options)
    data.setup("predict")
    return data


def test_coco_json_follows_the_walker_and_fills_the_gaps(coco_video):
    data = loaded(coco_video, width=WIDTH, height=HEIGHT, input_layout="coco")
    (video,) = data.videos
    assert (video.name, video.width, video.height, video.fps) == ("walk", WIDTH, HEIGHT, 50.0)
    np.testing.assert_array_equal(video.person, [1, 1, -1, 1, 1])  # the bystander is never followed
    np.testing.assert_array_equal(video.empty_frames, [False, False, True, False, False])
    expected_filled = np.zeros((5, 17), bool)
    expected_filled[2] = True
    expected_filled[3, COCO_17.index("left_wrist")] = True
    np.testing.assert_array_equal(video.filled, expected_filled)
    # The walker moves linearly, so the interpolated frame 2 and wrist of frame 3 are exactly where he was.
    walker = np.stack([coco_person(shift=STEP * frame) for frame in range(5)])
    np.testing.assert_array_equal(video.keypoints[..., :2], walker[..., :2])
    np.testing.assert_array_equal(video.keypoints[..., 2], np.where(expected_filled, 0.0, 0.9).astype(np.float32))
    (sequence,) = data.sequences["test"]
    assert (sequence.subject, sequence.labeled, sequence.keypoints_2d.shape) == ("walk", False, (5, 17, 2))
    np.testing.assert_array_equal(sequence.keypoints_2d[0, COCO_17.index("nose")], [-0.5, -0.25])  # (250, 125) px
    np.testing.assert_allclose(sequence.keypoints_2d, screen(walker[..., :2]), atol=1e-7, rtol=0)


def test_people_all_lifts_every_tracked_person_as_its_own_video(coco_video):
    data = loaded(coco_video, width=WIDTH, height=HEIGHT, input_layout="coco", people="all")
    walker, bystander = data.videos  # the walker is more prominent (larger), so track 0
    assert (walker.name, walker.track, bystander.name, bystander.track) == ("walk_person0", 0, "walk_person1", 1)
    np.testing.assert_array_equal(walker.person, [1, 1, -1, 1, 1])
    np.testing.assert_array_equal(bystander.person, [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(
        walker.keypoints, loaded(coco_video, width=WIDTH, height=HEIGHT, input_layout="coco").videos[0].keypoints
    )
    np.testing.assert_array_equal(
        bystander.keypoints[..., :2], np.broadcast_to(coco_person(600.0, 0.2)[..., :2], (5, 17, 2))
    )
    assert [s.subject for s in data.sequences["test"]] == ["walk_person0", "walk_person1"]
    with pytest.raises(ValueError, match="people must be 'one' or 'all', got 'both'"):
        DetectionsDataModule(str(coco_video), people="both")


def test_video_length_and_first_image_id_place_the_frames(coco_video):
    shifted = [dict(entry, image_id=entry["image_id"] + 100) for entry in json.loads(coco_video.read_text())]
    path = coco_video.with_name("shifted.json")
    path.write_text(json.dumps(shifted))
    data = loaded(path, width=WIDTH, height=HEIGHT, input_layout="coco", num_frames=7, first_image_id=100)
    (video,) = data.videos
    np.testing.assert_array_equal(video.person, [1, 1, -1, 1, 1, -1, -1])  # frames 5 and 6: nobody detected
    np.testing.assert_array_equal(video.empty_frames, [False, False, True, False, False, True, True])
    last = coco_person(shift=STEP * 4)
    np.testing.assert_array_equal(video.keypoints[5:, :, :2], np.stack([last[:, :2]] * 2))  # held at the end
    with pytest.raises(ValueError, match="num_frames must be a positive frame count, got 0"):
        DetectionsDataModule(str(path), num_frames=0)


def test_conversion_to_h36m_derives_the_joints_coco_lacks(coco_video):
    data = loaded(coco_video, width=WIDTH, height=HEIGHT, input_layout="h36m", output_layout="h36m")
    (video,) = data.videos
    walker = coco_person(shift=STEP * 4)[:, :2]
    frame = video.keypoints[4, :, :2]
    hips = walker[[COCO_17.index("left_hip"), COCO_17.index("right_hip")]].mean(0)
    shoulders = walker[[COCO_17.index("left_shoulder"), COCO_17.index("right_shoulder")]].mean(0)
    np.testing.assert_allclose(frame[H36M_17.index("pelvis")], hips, rtol=0, atol=1e-4)
    np.testing.assert_allclose(frame[H36M_17.index("thorax")], shoulders, rtol=0, atol=1e-4)
    np.testing.assert_allclose(frame[H36M_17.index("spine")], (hips + shoulders) / 2, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(frame[H36M_17.index("head")], walker[COCO_17.index("nose")])
    np.testing.assert_array_equal(frame[H36M_17.index("left_knee")], walker[COCO_17.index("left_knee")])
    # frame 3 lacks only the left wrist, which no derived joint uses: it alone is filled
    assert video.filled[3].tolist() == [name == "left_wrist" for name in H36M_17.joint_names]
    assert data.sequences["test"][0].keypoints_2d.shape == (5, 17, 2)


def write_openpose(folder: Path, frames: dict[int, list[np.ndarray]]) -> Path:
    folder.mkdir()
    for number, people in frames.items():
        content = {"version": 1.3, "people": [{"pose_keypoints_2d": p.reshape(-1).tolist()} for p in people]}
        (folder / f"clip_{number:012d}_keypoints.json").write_text(json.dumps(content))
    return folder


def body25(shift: float) -> np.ndarray:
    rows = np.arange(25, dtype=np.float32)
    return np.stack([100.0 + 4.0 * rows + shift, 50.0 + 10.0 * rows, np.full(25, 0.7, np.float32)], -1)


def test_openpose_folder_missing_files_are_empty_frames_held_at_the_ends(tmp_path):
    # frame 2 has no file, frame 4 a file with nobody: both are empty frames
    folder = write_openpose(tmp_path / "clip", {0: [body25(0)], 1: [body25(STEP)], 3: [body25(3 * STEP)], 4: []})
    data = loaded(folder, width=WIDTH, height=HEIGHT, input_layout="openpose_body25")
    (video,) = data.videos
    np.testing.assert_array_equal(video.empty_frames, [False, False, True, False, True])
    np.testing.assert_array_equal(video.person, [0, 0, -1, 0, -1])
    expected = np.stack([body25(STEP * min(frame, 3))[:, :2] for frame in range(5)])  # held after the last frame
    np.testing.assert_array_equal(video.keypoints[..., :2], expected)
    converted = loaded(folder, width=WIDTH, height=HEIGHT, input_layout="h36m").videos[0]
    np.testing.assert_array_equal(  # BODY_25 has its own pelvis (MidHip): taken as is, not derived
        converted.keypoints[:, H36M_17.index("pelvis"), :2], expected[:, OPENPOSE_BODY_25.index("pelvis")]
    )


def write_videopose3d(path: Path, videos: dict[str, np.ndarray], sizes: dict[str, tuple[int, int]]) -> Path:
    metadata = {
        "layout_name": "coco",
        "num_joints": 17,
        "keypoints_symmetry": [list(COCO_17.left), list(COCO_17.right)],
        "video_metadata": {name: {"w": w, "h": h} for name, (w, h) in sizes.items()},
    }
    np.savez_compressed(path, positions_2d={n: {"custom": [a]} for n, a in videos.items()}, metadata=metadata)
    return path


def test_videopose3d_npz_one_sequence_per_video_each_normalised_with_its_own_size(tmp_path):
    walk = np.stack([coco_person(shift=STEP * f, score=0.5) for f in range(4)])
    jump = np.stack([coco_person(shift=-STEP * f) for f in range(6)])
    path = write_videopose3d(
        tmp_path / "data_2d_custom_mine.npz", {"walk.mp4": walk, "jump.mp4": jump},
        {"walk.mp4": (1000, 500), "jump.mp4": (500, 1000)},
    )  # fmt: skip
    data = loaded(path, input_layout="coco", features=3, width=123, height=45)  # the metadata's sizes win
    assert [v.name for v in data.videos] == [s.subject for s in data.sequences["test"]] == ["walk.mp4", "jump.mp4"]
    walk_sequence, jump_sequence = data.sequences["test"]
    assert (walk_sequence.keypoints_2d.shape, jump_sequence.keypoints_2d.shape) == ((4, 17, 3), (6, 17, 3))
    np.testing.assert_allclose(walk_sequence.keypoints_2d[..., :2], screen(walk[..., :2]), atol=1e-7, rtol=0)
    tall = jump[..., :2] / 500 * 2 - np.asarray([1.0, 2.0], np.float32)
    np.testing.assert_allclose(jump_sequence.keypoints_2d[..., :2], tall, atol=1e-7, rtol=0)
    np.testing.assert_array_equal(walk_sequence.keypoints_2d[..., 2], 0.5)  # features=3 appends the score


def test_npy_and_csv_need_a_layout_and_low_scores_are_interpolated(tmp_path):
    points = np.stack([coco_person(shift=STEP * f) for f in range(3)])
    points[1, COCO_17.index("nose"), 2] = 0.1  # a doubtful joint
    np.save(tmp_path / "track.npy", points)
    with pytest.raises(ValueError, match="layout is required"):
        loaded(tmp_path / "track.npy", width=WIDTH, height=HEIGHT)
    kept = loaded(tmp_path / "track.npy", source_layout="coco", input_layout="coco", width=WIDTH, height=HEIGHT)
    dropped = loaded(
        tmp_path / "track.npy", source_layout="coco", input_layout="coco", width=WIDTH, height=HEIGHT, min_score=0.5
    )
    nose, doubtful = COCO_17.index("nose"), dropped.videos[0]
    assert kept.videos[0].filled.sum() == 0 and doubtful.filled.sum() == 1 and doubtful.filled[1, nose]
    np.testing.assert_array_equal(doubtful.keypoints[1, nose], np.float32([250 + STEP, 125, 0.1]))  # score kept
    np.savetxt(tmp_path / "track.csv", points[..., :2].reshape(3, -1), delimiter=",")
    from_csv = loaded(tmp_path / "track.csv", source_layout="coco", input_layout="coco", width=WIDTH, height=HEIGHT)
    np.testing.assert_array_equal(from_csv.sequences["test"][0].keypoints_2d, kept.sequences["test"][0].keypoints_2d)


def test_predict_loader_serves_each_whole_video_edge_padded(coco_video):
    data = DetectionsDataModule(str(coco_video), width=WIDTH, height=HEIGHT, input_layout="coco", receptive_field=3)
    data.setup("predict")
    (batch,) = list(data.predict_dataloader())
    assert batch.keypoints_2d.shape == (1, 5 + 2, 17, 2) and not batch.labeled
    assert batch.sequence.tolist() == [0] and batch.start.tolist() == [0]
    keypoints = data.sequences["test"][0].keypoints_2d
    np.testing.assert_array_equal(batch.keypoints_2d[0, 1:-1].numpy(), keypoints)
    np.testing.assert_array_equal(batch.keypoints_2d[0, 0].numpy(), keypoints[0])  # edge replication


def test_errors_name_the_file_the_video_and_the_fix(coco_video, tmp_path):
    with pytest.raises(ValueError, match=r"walk\.json: video 'walk'.*frame size.*--data\.init_args\.width"):
        loaded(coco_video)
    data = DetectionsDataModule(str(coco_video), width=WIDTH, height=HEIGHT)
    for stage in ("fit", "validate", "test"):
        with pytest.raises(ValueError, match=rf"predict.*{stage!r} needs 3D labels"):
            data.setup(stage)
    never = [coco_entry(f, np.where(np.arange(17)[:, None] == 0, 0.0, coco_person()), 0.9) for f in range(3)]
    (tmp_path / "noseless.json").write_text(json.dumps(never))
    with pytest.raises(ValueError, match=r"noseless\.json: video 'noseless'.*\['nose'\].*never detected"):
        loaded(tmp_path / "noseless.json", width=WIDTH, height=HEIGHT, input_layout="coco")
    nobody = [coco_entry(f, np.zeros((17, 3)), 0.9) for f in range(3)]  # every joint (0, 0, 0): undetected
    (tmp_path / "nobody.json").write_text(json.dumps(nobody))
    with pytest.raises(ValueError, match=r"nobody\.json: video 'nobody': nobody is detected in any of its 3 frames"):
        loaded(tmp_path / "nobody.json", width=WIDTH, height=HEIGHT)
    with pytest.raises(ValueError, match="features must be 2"):
        DetectionsDataModule(str(coco_video), features=4)
    with pytest.raises(ValueError, match=r"cannot convert 'coco' to 'mpi_inf_3dhp_28'"):
        loaded(coco_video, width=WIDTH, height=HEIGHT, input_layout="mpi_inf_3dhp_28")
