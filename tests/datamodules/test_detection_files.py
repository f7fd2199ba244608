"""Detection readers: small files written in each real format, read back to exact values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datamodules.detection_files import (
    Detections,
    read_coco_json,
    read_csv,
    read_detections,
    read_npy,
    read_openpose_folder,
    read_videopose3d_npz,
)

NAN = np.nan


def _grid(frames: int, joints: int, channels: int, start: float = 0.0) -> np.ndarray:
    """``(frames, joints, channels)`` float32 with distinct values start, start + 1, ..."""
    return start + np.arange(frames * joints * channels, dtype=np.float32).reshape(frames, joints, channels)


# --------------------------------------------------------------------------- VideoPose3D npz


def _write_videopose3d(path: Path, positions: dict, metadata: dict) -> Path:
    # np.savez stores a dict as a pickled 0-d object array, exactly as prepare_data_2d_custom.py does.
    np.savez_compressed(path, positions_2d=positions, metadata=metadata)
    return path


def _coco_metadata(**videos: tuple[int, int]) -> dict:
    return {
        "layout_name": "coco",
        "num_joints": 17,
        "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]],
        "video_metadata": {name: {"w": w, "h": h} for name, (w, h) in videos.items()},
    }


def test_videopose3d_npz_one_detections_per_video(tmp_path):
    walk, jump = _grid(4, 17, 2), _grid(3, 17, 3, start=1000)
    positions = {"walk.mp4": {"custom": [walk]}, "jump.mp4": {"custom": [jump, walk]}}
    path = _write_videopose3d(
        tmp_path / "data_2d_custom_mine.npz", positions, _coco_metadata(**{"walk.mp4": (1920, 1080)})
    )
    walk_read, jump_read = read_videopose3d_npz(path, width=640, height=480)
    assert (walk_read.name, walk_read.layout, walk_read.width, walk_read.height) == ("walk.mp4", "coco", 1920, 1080)
    assert walk_read.keypoints.shape == (4, 1, 17, 3) and walk_read.keypoints.dtype == np.float32
    np.testing.assert_array_equal(walk_read.keypoints[:, 0, :, :2], walk)
    np.testing.assert_array_equal(walk_read.keypoints[..., 2], 1.0)  # x, y only: score 1
    assert (jump_read.width, jump_read.height) == (640, 480)  # not in video_metadata: the arguments
    np.testing.assert_array_equal(jump_read.keypoints[:, 0], jump)  # first camera, own scores
    assert read_detections(path)[0].skeleton.name == "coco"


def test_videopose3d_npz_errors(tmp_path):
    good = {"v": {"custom": [_grid(2, 17, 2)]}}
    path = tmp_path / "only_positions.npz"
    np.savez(path, positions_2d=good)
    with pytest.raises(KeyError, match=r"only_positions.npz: missing key\(s\) \['metadata'\]"):
        read_videopose3d_npz(path)
    mpii = _write_videopose3d(tmp_path / "mpii.npz", good, {**_coco_metadata(), "layout_name": "mpii"})
    with pytest.raises(ValueError, match="mpii.npz: metadata layout_name 'mpii' is not a known layout"):
        read_videopose3d_npz(mpii)
    count = _write_videopose3d(tmp_path / "count.npz", good, {**_coco_metadata(), "num_joints": 16})
    with pytest.raises(ValueError, match="num_joints 16 disagrees with layout 'coco' \\(17 joints\\)"):
        read_videopose3d_npz(count)
    shape = _write_videopose3d(tmp_path / "shape.npz", {"v": {"custom": [_grid(2, 16, 2)]}}, _coco_metadata())
    with pytest.raises(ValueError, match=r"positions_2d\['v'\]\['custom'\]\[0\] has shape \(2, 16, 2\), expected"):
        read_videopose3d_npz(shape)
    h36m = _write_videopose3d(tmp_path / "h36m.npz", {"v": {"S1": [_grid(2, 17, 2)]}}, _coco_metadata())
    with pytest.raises(ValueError, match=r"positions_2d\['v'\] must be a dict with a non-empty list under 'custom'"):
        read_videopose3d_npz(h36m)
    sizes = _write_videopose3d(tmp_path / "sizes.npz", good, {**_coco_metadata(), "video_metadata": {"v": {"w": 3}}})
    with pytest.raises(ValueError, match=r"metadata\['video_metadata'\]\['v'\] must be a dict with 'w' and 'h'"):
        read_videopose3d_npz(sizes)
    with pytest.raises(ValueError, match="metadata says layout 'coco', but layout 'h36m' was given"):
        read_detections(_write_videopose3d(tmp_path / "ok.npz", good, _coco_metadata()), layout="h36m")


def test_npz_that_is_no_archive_is_refused_before_unpickling(tmp_path):
    pointer = tmp_path / "data_2d_custom_lfs.npz"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1234\n")
    with pytest.raises(ValueError, match=r"data_2d_custom_lfs.npz: not a NumPy .npz archive \(no zip signature"):
        read_detections(pointer)
    pickled = tmp_path / "pickled.npz"
    np.save(pickled.with_suffix(".npy"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
    pickled.write_bytes(pickled.with_suffix(".npy").read_bytes())  # a pickle under a .npz name
    with pytest.raises(ValueError, match="pickled.npz: not a NumPy .npz archive"):
        read_detections(pickled)
    damaged = _write_videopose3d(tmp_path / "damaged.npz", {"v": {"custom": [_grid(2, 17, 2)]}}, _coco_metadata())
    damaged.write_bytes(damaged.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"damaged.npz: damaged .npz archive \("):
        read_detections(damaged)


def test_json_that_is_not_utf8_names_the_file_and_byte(tmp_path):
    path = _write_json(tmp_path / "results.json", [_coco_entry(0, 0, 0.9)])
    data = bytearray(path.read_bytes())
    data[8] = 0xB2
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"results.json: not UTF-8 text \(byte 8: invalid start byte\)"):
        read_detections(path)


# --------------------------------------------------------------------------- COCO keypoint results


def _coco_entry(image_id: int, first: float, score: float, category: int = 1) -> dict:
    keypoints = np.column_stack([first + np.arange(17), first + 100 + np.arange(17), np.full(17, 0.5)])
    return {"image_id": image_id, "category_id": category, "keypoints": keypoints.ravel().tolist(), "score": score}


def _write_json(path: Path, content: object) -> Path:
    path.write_text(json.dumps(content))
    return path


def test_coco_json_orders_persons_by_score_and_marks_missing_joints(tmp_path):
    weak, strong, later = _coco_entry(5, 0, 0.3), _coco_entry(5, 1000, 0.9), _coco_entry(7, 2000, 0.8)
    later["keypoints"][3:6] = [0, 0, 0]  # left_eye not found
    entries = [weak, later, strong, _coco_entry(5, 3000, 1.0, category=2)]  # a non-person entry is skipped
    path = _write_json(tmp_path / "results.json", entries)
    detections = read_coco_json(path, width=640, height=480, first_image_id=5)
    assert (detections.name, detections.layout, detections.width, detections.height) == ("results", "coco", 640, 480)
    assert detections.keypoints.shape == (3, 2, 17, 3)  # image ids 5, 6 (no entry: empty), 7
    np.testing.assert_array_equal(detections.keypoints[0, 0, :, 0], 1000 + np.arange(17))  # strong first
    np.testing.assert_array_equal(detections.keypoints[0, 1, :, 1], 100 + np.arange(17))
    assert np.isnan(detections.keypoints[1]).all()  # a frame without detections keeps its place
    np.testing.assert_array_equal(detections.keypoints[2, 0, 0], [2000, 2100, 0.5])
    assert np.isnan(detections.keypoints[2, 0, 1]).all()  # the (0, 0, 0) triple
    assert np.isnan(detections.keypoints[2, 1]).all()  # one person in frame 2: padding
    np.testing.assert_array_equal(detections.keypoints[2, 0, 2:, 2], 0.5)


def test_coco_json_keeps_empty_frames_in_place_and_alphapose_file_names(tmp_path):
    path = _write_json(tmp_path / "results.json", [_coco_entry(3, 0, 0.9), _coco_entry(1, 500, 0.9)])
    detections = read_coco_json(path, frames=4, first_image_id=1)
    assert detections.keypoints.shape == (4, 1, 17, 3)
    assert [bool(np.isnan(frame).all()) for frame in detections.keypoints] == [False, True, False, True]
    assert detections.keypoints[0, 0, 0, 0] == 500 and detections.keypoints[2, 0, 0, 0] == 0
    with pytest.raises(ValueError, match="image_id 3 is outside the 2 frames starting at 1"):
        read_coco_json(path, frames=2, first_image_id=1)
    by_default = read_coco_json(path)  # image id = frame index: frame 0 and 2 empty, up to the last entry
    assert [bool(np.isnan(frame).all()) for frame in by_default.keypoints] == [True, False, True, False]
    alphapose = [dict(_coco_entry(0, 0, 0.9), image_id="0.jpg"), dict(_coco_entry(0, 9, 0.9), image_id="4.jpg")]
    found = read_detections(_write_json(tmp_path / "alphapose-results.json", alphapose), num_frames=6)[0]
    assert found.keypoints.shape == (6, 1, 17, 3) and found.keypoints[4, 0, 0, 0] == 9
    assert [bool(np.isnan(frame).all()) for frame in found.keypoints] == [False, True, True, True, False, True]
    nameless = _write_json(tmp_path / "nameless.json", [dict(_coco_entry(0, 0, 0.9), image_id="left.jpg")])
    with pytest.raises(ValueError, match=r"nameless.json: entry 0 'image_id': 'left.jpg' holds no frame number"):
        read_coco_json(nameless)


def test_mmpose_predictions_json(tmp_path):
    def instance(first: float, score: float) -> dict:
        points = np.column_stack([first + np.arange(17), first + 100 + np.arange(17)])
        return {
            "keypoints": points.tolist(),
            "keypoint_scores": [0.9] * 17,
            "bbox": [[0, 0, 9, 9]],
            "bbox_score": score,
        }

    info = [{"frame_id": 1, "instances": [instance(0, 0.2), instance(50, 0.8)]}, {"frame_id": 2, "instances": []},
            {"frame_id": 3, "instances": [instance(7, 0.9)]}]  # fmt: skip
    path = _write_json(tmp_path / "predictions.json", {"meta_info": {"dataset_name": "coco"}, "instance_info": info})
    (detections,) = read_detections(path, width=640, height=480)
    assert detections.keypoints.shape == (3, 2, 17, 3) and detections.layout == "coco"
    np.testing.assert_array_equal(detections.keypoints[0, 0, :, 0], 50 + np.arange(17))  # higher bbox score first
    np.testing.assert_array_equal(detections.keypoints[0, 1, 0], np.float32([0, 100, 0.9]))
    assert np.isnan(detections.keypoints[1]).all() and detections.keypoints[2, 0, 0, 0] == 7
    assert read_detections(_write_json(tmp_path / "list.json", info), num_frames=5)[0].keypoints.shape == (5, 2, 17, 3)
    info[0]["instances"][0]["keypoints"] = info[0]["instances"][0]["keypoints"][:16]
    with pytest.raises(ValueError, match=r"bad.json: frame_id 1 instance 0: expected 17 keypoints \[x, y\]"):
        read_detections(_write_json(tmp_path / "bad.json", {"instance_info": info}))


def test_coco_json_errors(tmp_path):
    short = _coco_entry(4, 0, 0.9)
    short["keypoints"] = short["keypoints"][:50]
    path = _write_json(tmp_path / "short.json", [_coco_entry(3, 0, 0.9), short])
    with pytest.raises(
        ValueError, match=r"short.json: entry 1 \(image_id 4\) 'keypoints': expected a list of 51 .*got 50"
    ):
        read_coco_json(path)
    text = _coco_entry(4, 0, 0.9)
    text["keypoints"][7] = "x"
    with pytest.raises(ValueError, match=r"text.json: entry 0 \(image_id 4\) 'keypoints': expected numbers"):
        read_coco_json(_write_json(tmp_path / "text.json", [text]))
    with pytest.raises(ValueError, match="dict.json: expected a JSON list of detections, got dict"):
        read_coco_json(_write_json(tmp_path / "dict.json", {"annotations": []}))
    with pytest.raises(ValueError, match="entry 0: expected an object with 'image_id' and 'keypoints'"):
        read_coco_json(_write_json(tmp_path / "keys.json", [{"image": 1, "keypoints": []}]))
    broken = tmp_path / "broken.json"
    broken.write_text('[{"image_id": 1,')
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        read_coco_json(broken)


# --------------------------------------------------------------------------- OpenPose folder


def _openpose_person(values: np.ndarray) -> dict:
    return {"person_id": [-1], "pose_keypoints_2d": values.ravel().tolist(), "face_keypoints_2d": []}


def _write_openpose(folder: Path, frame: int, people: list[dict], prefix: str = "clip") -> None:
    folder.mkdir(exist_ok=True)
    _write_json(folder / f"{prefix}_{frame:012d}_keypoints.json", {"version": 1.3, "people": people})


def test_openpose_folder_multi_person_empty_and_missing_frames(tmp_path):
    folder = tmp_path / "openpose_out"
    first, second, third = _grid(1, 25, 3)[0], _grid(1, 25, 3, 100)[0], _grid(1, 25, 3, 200)[0]
    third[4] = 0  # right_wrist not found
    _write_openpose(folder, 10, [_openpose_person(first), _openpose_person(second)])
    _write_openpose(folder, 11, [])  # nobody
    _write_openpose(folder, 13, [_openpose_person(third)])  # frame 12 has no file
    (folder / "notes.txt").write_text("not a frame")
    detections = read_openpose_folder(folder, width=1280, height=720)
    assert (detections.name, detections.layout, detections.width) == ("openpose_out", "openpose_body25", 1280)
    assert detections.keypoints.shape == (4, 2, 25, 3)
    np.testing.assert_array_equal(detections.keypoints[0], np.stack([first, second]))
    assert np.isnan(detections.keypoints[1:3]).all() and np.isnan(detections.keypoints[3, 1]).all()
    assert np.isnan(detections.keypoints[3, 0, 4]).all()
    np.testing.assert_array_equal(np.delete(detections.keypoints[3, 0], 4, axis=0), np.delete(third, 4, axis=0))
    assert read_detections(folder, layout="openpose_body25b")[0].layout == "openpose_body25b"


def test_openpose_folder_errors(tmp_path):
    coco18 = tmp_path / "coco18"
    _write_openpose(coco18, 0, [_openpose_person(_grid(1, 25, 3)[0]), _openpose_person(_grid(1, 18, 3)[0])])
    with pytest.raises(
        ValueError, match=r"clip_000000000000_keypoints.json: person 1 .*'openpose_body25'.*75 .*got 54"
    ):
        read_openpose_folder(coco18)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "clip_000000000000_keypoints.json").write_text("{people: ")
    with pytest.raises(ValueError, match="clip_000000000000_keypoints.json: not valid JSON"):
        read_openpose_folder(broken)
    no_people = tmp_path / "no_people"
    no_people.mkdir()
    _write_json(no_people / "a_000000000002_keypoints.json", {"version": 1.3, "persons": []})
    with pytest.raises(ValueError, match="a_000000000002_keypoints.json: expected an object whose key 'people'"):
        read_openpose_folder(no_people)
    twice = tmp_path / "twice"
    _write_openpose(twice, 0, [], prefix="a")
    _write_openpose(twice, 0, [], prefix="b")
    with pytest.raises(ValueError, match="a_000000000000_keypoints.json and b_000000000000_keypoints.json both"):
        read_openpose_folder(twice)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: no JSON files whose name ends in a frame number"):
        read_openpose_folder(tmp_path / "empty")


def test_openpose_style_folders_of_any_naming(tmp_path):
    folder = tmp_path / "cam01"
    folder.mkdir()
    for frame in (0, 1, 3):
        people = [_openpose_person(_grid(1, 25, 3)[0] + frame)] if frame != 1 else []
        _write_json(folder / f"cam01.{frame:04d}.json", {"version": 1.3, "people": people})
    detections = read_openpose_folder(folder)
    assert detections.keypoints.shape == (4, 1, 25, 3)  # frames 0-3; 1 has nobody, 2 has no file
    assert [bool(np.isnan(frame).all()) for frame in detections.keypoints] == [False, True, True, False]
    assert detections.keypoints[3, 0, 0, 0] == detections.keypoints[0, 0, 0, 0] + 3


def test_openpose_coco18_with_nobody_anywhere(tmp_path):
    folder = tmp_path / "empty"
    _write_openpose(folder, 0, [])
    _write_openpose(folder, 1, [])
    detections = read_openpose_folder(folder, layout="openpose_coco18")
    assert detections.keypoints.shape == (2, 0, 18, 3)


# --------------------------------------------------------------------------- plain arrays and dispatch


def test_npy_adds_scores_and_checks_shape(tmp_path):
    np.save(tmp_path / "track.npy", _grid(3, 17, 2))
    detections = read_npy(tmp_path / "track.npy", layout="h36m")
    assert (detections.name, detections.keypoints.shape) == ("track", (3, 1, 17, 3))
    np.testing.assert_array_equal(detections.keypoints[:, 0, :, :2], _grid(3, 17, 2))
    np.testing.assert_array_equal(detections.keypoints[..., 2], 1.0)
    np.save(tmp_path / "bad.npy", _grid(3, 17, 4))
    with pytest.raises(ValueError, match=r"bad.npy: array has shape \(3, 17, 4\), expected \(frames, 17, 2 or 3\)"):
        read_npy(tmp_path / "bad.npy", layout="coco")
    with pytest.raises(ValueError, match="a layout is required for plain npy arrays"):
        read_detections(tmp_path / "track.npy")


def test_csv_with_and_without_header(tmp_path):
    values = _grid(2, 17, 3)
    values[1, 5] = NAN
    header = ",".join(f"{n}_{c}" for n in range(17) for c in "xys")
    rows = "\n".join(",".join(f"{v:g}" for v in frame.ravel()) for frame in values)
    (tmp_path / "scored.csv").write_text(header + "\n" + rows + "\n")
    scored = read_detections(tmp_path / "scored.csv", layout="coco", width=100, height=50)[0]
    np.testing.assert_array_equal(scored.keypoints[:, 0], values)
    assert (scored.width, scored.height) == (100, 50)
    (tmp_path / "xy.csv").write_text("1,2," * 16 + "1,2\n")
    xy = read_csv(tmp_path / "xy.csv", layout="h36m")
    np.testing.assert_array_equal(xy.keypoints[0, 0], np.tile([1.0, 2.0, 1.0], (17, 1)))


def test_csv_errors(tmp_path):
    (tmp_path / "count.csv").write_text(",".join(["1"] * 40) + "\n")
    with pytest.raises(ValueError, match="count.csv: rows have 40 values, expected 34 \\(x, y\\) or 51"):
        read_csv(tmp_path / "count.csv", layout="coco")
    (tmp_path / "text.csv").write_text("1,2\n3,oops\n")
    with pytest.raises(ValueError, match="text.csv: not a table of numbers"):
        read_csv(tmp_path / "text.csv", layout="coco")
    with pytest.raises(ValueError, match="unknown layout 'mpii'"):
        read_csv(tmp_path / "text.csv", layout="mpii")


def test_dispatch_by_suffix_and_errors(tmp_path):
    path = _write_json(tmp_path / "dets.json", [_coco_entry(0, 0, 0.9)])
    (found,) = read_detections(path, width=10, height=20)
    assert isinstance(found, Detections) and (found.layout, found.width, found.height) == ("coco", 10, 20)
    with pytest.raises(ValueError, match=r"cannot tell the detection format from suffix '.txt'"):
        read_detections(tmp_path / "dets.txt")
    with pytest.raises(ValueError, match="unknown detection format 'yaml'"):
        read_detections(path, format="yaml")
    with pytest.raises(ValueError, match=r"keypoints have shape \(2, 1, 16, 3\), expected \(frames, persons, 17, 3\)"):
        Detections("x", np.zeros((2, 1, 16, 3), np.float32), "coco")


def test_openpose_folder_to_a_filled_h36m_track(tmp_path):
    from components.detections import convert_keypoints, fill_missing, follow_person
    from components.skeleton import H36M_17

    folder = tmp_path / "clip"
    person = _grid(1, 25, 3)[0] / 100 + 1  # x, y and scores in (1, 1.75): all usable
    _write_openpose(folder, 0, [_openpose_person(person)])
    _write_openpose(folder, 1, [])
    _write_openpose(folder, 2, [_openpose_person(person + 0.25)])  # moved a quarter of its box
    (detections,) = read_detections(folder)
    track, chosen = follow_person(detections.keypoints)
    result = fill_missing(convert_keypoints(track, detections.skeleton, H36M_17), H36M_17, min_score=0.5)
    assert chosen.tolist() == [0, -1, 0] and result.empty_frames.tolist() == [False, True, False]
    pelvis = detections.skeleton.index("pelvis")
    expected = [person[pelvis, :2] + shift for shift in (0, 0.125, 0.25)]  # frame 1 interpolated
    np.testing.assert_allclose(result.keypoints[:, H36M_17.root, :2], expected, rtol=1e-6)
