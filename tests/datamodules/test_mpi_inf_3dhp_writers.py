"""MPI-INF-3DHP writers: exact round trips through the real readers, and atomic writing."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from scipy.io import loadmat
from scipy.spatial.transform import Rotation

from components.camera import CameraParameters
from components.geometry import random_rotation_matrices
from datamodules.mpi_inf_3dhp_files import (
    TEST_CAMERAS,
    load_annot_mat,
    load_calibration,
    load_preprocessed_npz,
    load_test_annotations,
)
from datamodules.mpi_inf_3dhp_writers import (
    MATLAB_73_HEADER,
    save_annot_mat,
    save_calibration,
    save_preprocessed_npz,
    save_test_annotations,
)

CAMERAS, FRAMES = 3, 7


def _poses(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.normal(size=shape) * 500


def _camera(name: str, seed: int) -> CameraParameters:
    rng = np.random.default_rng(seed)
    rotation = random_rotation_matrices(1, torch.Generator().manual_seed(seed))[0].numpy()
    quaternion = Rotation.from_matrix(rotation).as_quat(scalar_first=True)
    return CameraParameters(
        id=name,
        width=2048,
        height=2048,
        focal_length=(1497.693, 1497.103),
        center=(1024.704, 1051.394),
        radial_distortion=(0.0, 0.0, 0.0),
        tangential_distortion=(0.0, 0.0),
        orientation=tuple(float(v) for v in quaternion * np.sign(quaternion[0])),
        translation=tuple(float(v) for v in rng.normal(size=3) * 3),
    )


def test_annot_mat_round_trip_cuts_the_extra_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    annot2, annot3, univ = (_poses(rng, CAMERAS, FRAMES, 28, dims) for dims in (2, 3, 3))
    path = save_annot_mat(tmp_path / "annot.mat", annot2, annot3, univ, frames=np.arange(5, 5 + FRAMES), extra_rows=4)
    raw = loadmat(path)
    assert raw["annot3"].shape == (CAMERAS, 1) and raw["annot3"][0, 0].shape == (FRAMES + 4, 84)
    assert raw["annot2"][2, 0].shape == (FRAMES + 4, 56)
    annot = load_annot_mat(path)
    np.testing.assert_array_equal(annot.annot2, annot2)
    np.testing.assert_array_equal(annot.annot3, annot3)
    np.testing.assert_array_equal(annot.univ_annot3, univ)
    assert annot.frames.tolist() == list(range(5, 5 + FRAMES)) and annot.cameras.tolist() == [0, 1, 2]
    assert list(tmp_path.iterdir()) == [path]


def test_annot_mat_rejects_inconsistent_shapes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    annot2, annot3 = _poses(rng, CAMERAS, FRAMES, 28, 2), _poses(rng, CAMERAS, FRAMES, 28, 3)
    with pytest.raises(ValueError, match=r"univ_annot3 has shape \(3, 6, 28, 3\), expected \(3, 7, 28, 3\)"):
        save_annot_mat(tmp_path / "annot.mat", annot2, annot3, annot3[:, :6])
    with pytest.raises(ValueError, match="frames has 2 values"):
        save_annot_mat(tmp_path / "annot.mat", annot2, annot3, annot3, frames=[0, 1])
    assert list(tmp_path.iterdir()) == []


def test_calibration_round_trip_gives_the_same_cameras(tmp_path: Path) -> None:
    cameras = [_camera(str(index), seed=index) for index in range(3)]
    path = save_calibration(tmp_path / "camera.calibration", cameras)
    lines = path.read_text().splitlines()
    assert lines[0] == "Skeletool Camera Calibration File V1.0" and len(lines) == 1 + 7 * len(cameras)
    assert lines[1:5] == ["name          0", "  sensor      10 10", "  size        2048 2048", "  animated    0"]
    assert lines[5].startswith("  intrinsic   1497.693 0 1024.704 0 0 1497.103 1051.394 0 0 0 1 0 0 0 0 1")
    loaded = load_calibration(path)
    for camera, skeletool in zip(cameras, loaded, strict=True):
        read = skeletool.camera_parameters()
        assert (read.id, read.width, read.height) == (camera.id, camera.width, camera.height)
        assert read.focal_length == camera.focal_length and read.center == camera.center
        np.testing.assert_allclose(read.orientation, camera.orientation, atol=1e-9)
        np.testing.assert_allclose(read.translation, camera.translation, atol=1e-9)
        # The extrinsic maps the camera centre to the origin of the camera frame.
        centre = np.asarray(camera.translation)
        np.testing.assert_allclose(skeletool.rotation @ centre + skeletool.translation, 0, atol=1e-9)


def test_calibration_refuses_distortion(tmp_path: Path) -> None:
    outdoor = TEST_CAMERAS["TS5"]
    with pytest.raises(ValueError, match="'outdoor' has lens distortion"):
        save_calibration(tmp_path / "camera.calibration", [outdoor])
    assert list(tmp_path.iterdir()) == []


def test_test_annotations_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    annot2, annot3, univ = _poses(rng, 9, 17, 2), _poses(rng, 9, 17, 3), _poses(rng, 9, 17, 3)
    valid, activity = np.arange(9) % 4 != 0, np.arange(9) % 7 + 1
    path = save_test_annotations(tmp_path / "annot_data.mat", annot2, annot3, univ, valid, activity)
    assert path.read_bytes().startswith(MATLAB_73_HEADER)
    with h5py.File(path, "r") as mat:
        assert mat.userblock_size == 512 and "#refs#" in mat
        assert mat["annot2"].shape == (9, 1, 17, 2) and mat["univ_annot3"].shape == (9, 1, 17, 3)
        assert mat["valid_frame"].shape == mat["activity_annotation"].shape == (9, 1)
        assert mat["bb_crop"].shape == (9, 1, 4)
    annot = load_test_annotations(path)
    np.testing.assert_array_equal(annot.annot2, annot2)
    np.testing.assert_array_equal(annot.annot3, annot3)
    np.testing.assert_array_equal(annot.univ_annot3, univ)
    assert annot.valid.tolist() == valid.tolist() and annot.activity.tolist() == activity.tolist()


def test_preprocessed_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    view = {"data_2d": _poses(rng, 5, 17, 2), "data_3d": _poses(rng, 5, 17, 3)}
    train = save_preprocessed_npz(tmp_path / "data_train_3dhp.npz", {"S1 Seq1": [{"0": view}, 25]})
    test = save_preprocessed_npz(tmp_path / "data_test_3dhp.npz", {"TS1": {**view, "valid": np.ones(5)}})
    recording = load_preprocessed_npz(train)["S1 Seq1"]
    assert recording.fps == 25.0
    np.testing.assert_array_equal(recording.views["0"].data_2d, view["data_2d"])
    sequence = load_preprocessed_npz(test)["TS1"]
    np.testing.assert_array_equal(sequence.data_3d, view["data_3d"])
    assert sequence.valid.all()


def test_a_failing_writer_leaves_no_file_and_keeps_the_old_one(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "data_test_3dhp.npz"
    with pytest.raises(Exception, match="pickle|lambda"):
        save_preprocessed_npz(path, {"TS1": lambda: None})  # fails half-way through the archive
    assert list(tmp_path.iterdir()) == []

    save_preprocessed_npz(path, {"TS1": {"data_2d": np.zeros((1, 17, 2))}})
    before = path.read_bytes()

    def interrupted(file, *args, **kwargs):
        file.write(b"half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_preprocessed_npz(path, {"TS2": {}})
    assert list(tmp_path.iterdir()) == [path] and path.read_bytes() == before
