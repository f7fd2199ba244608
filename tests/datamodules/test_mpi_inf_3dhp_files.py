"""MPI-INF-3DHP readers: small files written in the exact formats (MATLAB v5, v7.3/HDF5, Skeletool text, npz)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from scipy.io import loadmat, savemat
from scipy.spatial.transform import Rotation

from components.camera import CameraParameters, world_to_camera
from components.geometry import random_rotation_matrices
from datamodules.mpi_inf_3dhp_files import (
    load_annot_mat,
    load_calibration,
    load_preprocessed_npz,
    load_test_annotations,
)
from datamodules.mpi_inf_3dhp_writers import (
    MATLAB_73_HEADER,
    calibration_text,
    save_annot_mat,
    save_calibration,
    save_preprocessed_npz,
    save_test_annotations,
)

CAMERAS, FRAMES, EXTRA = 3, 7, 4  # annot.mat cells hold FRAMES + EXTRA rows; readers cut to FRAMES


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- annot.mat


def _annot_cells(rows: int, columns: int, seed: int) -> np.ndarray:
    """A CAMERAS x 1 MATLAB cell array of ``(rows, columns)`` matrices."""
    cells = np.empty((CAMERAS, 1), dtype=object)
    for camera in range(CAMERAS):
        cells[camera, 0] = _rng(seed + camera).normal(size=(rows, columns)) * 500
    return cells


def _write_annot_mat(path: Path, **overrides) -> dict:
    """A raw ``annot.mat`` with fields replaced or (``None``) left out: malformed files the writer refuses."""
    fields = {
        "annot2": _annot_cells(FRAMES + EXTRA, 56, seed=10),
        "annot3": _annot_cells(FRAMES + EXTRA, 84, seed=20),
        "univ_annot3": _annot_cells(FRAMES + EXTRA, 84, seed=30),
        "frames": np.arange(FRAMES, dtype=np.float64)[:, None],
        "cameras": np.arange(CAMERAS, dtype=np.uint8)[None, :],
    }
    fields.update(overrides)
    savemat(path, {k: v for k, v in fields.items() if v is not None})
    return fields


def _annot_views(dims: int, seed: int) -> np.ndarray:
    """``(CAMERAS, FRAMES, 28, dims)`` annotations, as the writer takes them."""
    return _rng(seed).normal(size=(CAMERAS, FRAMES, 28, dims)) * 500


def test_annot_mat_round_trip_cuts_to_frame_count(tmp_path: Path) -> None:
    path = tmp_path / "annot.mat"
    annot2, annot3, univ_annot3 = _annot_views(2, seed=10), _annot_views(3, seed=20), _annot_views(3, seed=30)
    save_annot_mat(path, annot2, annot3, univ_annot3, extra_rows=EXTRA)
    cells = loadmat(path)
    assert cells["annot2"].shape == (CAMERAS, 1) and cells["annot2"][0, 0].shape == (FRAMES + EXTRA, 56)
    annot = load_annot_mat(path)
    assert annot.annot2.shape == (CAMERAS, FRAMES, 28, 2)
    assert annot.annot3.shape == annot.univ_annot3.shape == (CAMERAS, FRAMES, 28, 3)
    assert annot.frames.tolist() == list(range(FRAMES)) and annot.cameras.tolist() == list(range(CAMERAS))
    # Row layout x1 y1 x2 y2 ...: joint j of frame f is columns [dims * j, dims * (j + 1)).
    np.testing.assert_array_equal(annot.annot2[1, 3, 5], cells["annot2"][1, 0][3, 10:12])
    np.testing.assert_array_equal(annot.univ_annot3[2, 6, 27], cells["univ_annot3"][2, 0][6, 81:84])
    np.testing.assert_array_equal(annot.annot2, annot2)
    np.testing.assert_array_equal(annot.univ_annot3, univ_annot3)
    assert load_annot_mat(path, num_frames=FRAMES + 2).annot3.shape == (CAMERAS, FRAMES + 2, 28, 3)


def test_annot_mat_malformed(tmp_path: Path) -> None:
    path = tmp_path / "annot.mat"
    _write_annot_mat(path, univ_annot3=None)
    with pytest.raises(KeyError, match=r"annot\.mat.*'univ_annot3'"):
        load_annot_mat(path)
    _write_annot_mat(path, annot3=_annot_cells(FRAMES, 17 * 3, seed=0))
    with pytest.raises(ValueError, match=r"annot3\{1\} has shape \(7, 51\), expected \(frames, 84\)"):
        load_annot_mat(path)
    _write_annot_mat(path, annot2=_annot_cells(FRAMES - 1, 56, seed=0))
    with pytest.raises(ValueError, match=r"annot2\{1\} has 6 frames, expected >= 7"):
        load_annot_mat(path)
    _write_annot_mat(path, annot2=np.zeros((FRAMES, 56)))
    with pytest.raises(ValueError, match="cell array"):
        load_annot_mat(path)
    with pytest.raises(FileNotFoundError, match="missing.mat"):
        load_annot_mat(tmp_path / "missing.mat")


# --------------------------------------------------------------------------- camera.calibration


def _cameras(
    intrinsics: list[np.ndarray], rotations: np.ndarray, translations_mm: np.ndarray
) -> list[CameraParameters]:
    """Cameras whose Skeletool entries hold these ``(4, 4)`` intrinsics and world -> camera ``R``, ``t`` (mm)."""
    cameras = []
    for index, (intrinsic, rotation, translation_mm) in enumerate(
        zip(intrinsics, rotations, translations_mm, strict=True)
    ):
        quaternion = Rotation.from_matrix(rotation.T).as_quat(scalar_first=True)  # camera -> world
        cameras.append(
            CameraParameters(
                id=str(index),
                width=2048,
                height=2048,
                focal_length=(float(intrinsic[0, 0]), float(intrinsic[1, 1])),
                center=(float(intrinsic[0, 2]), float(intrinsic[1, 2])),
                radial_distortion=(0.0, 0.0, 0.0),
                tangential_distortion=(0.0, 0.0),
                orientation=tuple(float(v) for v in quaternion),
                translation=tuple(float(v) for v in -rotation.T @ translation_mm / 1000),
            )
        )
    return cameras


def _intrinsic(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0, cx, 0], [0, fy, cy, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64)


def test_calibration_round_trip_and_camera_parameters(tmp_path: Path) -> None:
    rotations = random_rotation_matrices(2, torch.Generator().manual_seed(0)).numpy()
    translations_mm = np.array([[-562.8, 1398.1, 3852.6], [120.0, -40.5, 4100.0]])
    intrinsics = [_intrinsic(1497.7, 1497.1, 1024.7, 1051.4), _intrinsic(1495.6, 1495.3, 1030.1, 1040.9)]
    path = tmp_path / "camera.calibration"
    save_calibration(path, _cameras(intrinsics, rotations, translations_mm))
    cameras = load_calibration(path)
    assert [c.name for c in cameras] == ["0", "1"]
    first = cameras[0]
    assert (first.width, first.height, first.sensor_size) == (2048, 2048, (10.0, 10.0))
    assert first.focal_length == (1497.7, 1497.1) and first.center == (1024.7, 1051.4)
    np.testing.assert_allclose(first.rotation, rotations[0])
    np.testing.assert_allclose(cameras[1].translation, translations_mm[1] / 1000)
    # The framework's camera maps world points like the file's extrinsic: x_cam = R x_world + t (metres).
    world = _rng(1).normal(size=(5, 3))
    for camera, rotation, translation_mm in zip(cameras, rotations, translations_mm, strict=True):
        params = camera.camera_parameters()
        got = world_to_camera(
            torch.from_numpy(world),
            torch.tensor(params.orientation, dtype=torch.float64),
            torch.tensor(params.translation, dtype=torch.float64),
        ).numpy()
        np.testing.assert_allclose(got, world @ rotation.T + translation_mm / 1000, atol=1e-9)
        assert params.pixel_intrinsics()[:4].tolist() == [*camera.focal_length, *camera.center]


def test_calibration_malformed(tmp_path: Path) -> None:
    good = calibration_text(_cameras([_intrinsic(1, 1, 0, 0)], np.eye(3)[None], np.zeros((1, 3))))
    path = tmp_path / "camera.calibration"
    path.write_text(good.replace("Skeletool Camera Calibration File V1.0", "something else"))
    with pytest.raises(ValueError, match="camera.calibration: expected the header"):
        load_calibration(path)
    short = good.replace("intrinsic   1 0 0 0", "intrinsic   1 0 0")
    path.write_text(short)
    with pytest.raises(ValueError, match=r"calibration:6: 'intrinsic' takes 16 numbers, got 15"):
        load_calibration(path)
    path.write_text("\n".join(line for line in good.splitlines() if "extrinsic" not in line))
    with pytest.raises(ValueError, match=r"camera '0' lacks field\(s\) \['extrinsic'\]"):
        load_calibration(path)


# --------------------------------------------------------------------------- TS*/annot_data.mat (v7.3)


def _test_fields(frames: int, joints: int = 17) -> dict[str, np.ndarray]:
    rng = _rng(5)
    return {
        "annot2": rng.normal(size=(frames, 1, joints, 2)) * 500 + 1000,
        "annot3": rng.normal(size=(frames, 1, joints, 3)) * 500,
        "univ_annot3": rng.normal(size=(frames, 1, joints, 3)) * 500,
        "valid_frame": (np.arange(frames) % 3 != 0).astype(np.float64)[:, None],
        "activity_annotation": (np.arange(frames) % 7 + 1).astype(np.float64)[:, None],
        "bb_crop": np.zeros((frames, 4)),
    }


def _write_v73(path: Path, fields: dict[str, np.ndarray]) -> None:
    """A raw MATLAB v7.3 file (HDF5 behind a 512-byte user block) with any fields: malformed files the writer
    refuses."""
    with h5py.File(path, "w", userblock_size=512) as mat:
        mat.create_group("#refs#")
        for name, array in fields.items():
            mat.create_dataset(name, data=array)
    with path.open("r+b") as handle:
        handle.write(MATLAB_73_HEADER.ljust(128, b" "))


def _save_test_fields(path: Path, fields: dict[str, np.ndarray]) -> None:
    """The public writer, from arrays laid out as h5py sees them."""
    annot2, annot3, univ_annot3 = (fields[name][:, 0] for name in ("annot2", "annot3", "univ_annot3"))
    valid, activity = fields["valid_frame"][:, 0], fields["activity_annotation"][:, 0]
    save_test_annotations(path, annot2, annot3, univ_annot3, valid, activity, fields["bb_crop"])


def test_test_annotations_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "annot_data.mat"
    fields = _test_fields(frames=9)
    _save_test_fields(path, fields)
    annot = load_test_annotations(path)
    assert annot.annot2.shape == (9, 17, 2) and annot.univ_annot3.shape == annot.annot3.shape == (9, 17, 3)
    np.testing.assert_array_equal(annot.univ_annot3, fields["univ_annot3"][:, 0])
    np.testing.assert_array_equal(annot.annot2, fields["annot2"][:, 0])
    assert annot.valid.dtype == bool and annot.valid.tolist() == [i % 3 != 0 for i in range(9)]
    assert annot.activity.dtype == np.int64 and annot.activity.tolist() == [i % 7 + 1 for i in range(9)]


def test_test_annotations_malformed(tmp_path: Path) -> None:
    path = tmp_path / "annot_data.mat"
    fields = _test_fields(frames=4)
    _write_v73(path, {k: v for k, v in fields.items() if k != "valid_frame"})
    with pytest.raises(KeyError, match=r"annot_data\.mat: missing field 'valid_frame'"):
        load_test_annotations(path)
    _write_v73(path, {**fields, "univ_annot3": _test_fields(frames=4, joints=16)["univ_annot3"]})
    with pytest.raises(ValueError, match=r"'univ_annot3' has shape \(4, 1, 16, 3\), expected \(frames, 1, 17, 3\)"):
        load_test_annotations(path)
    _write_v73(path, {**fields, "valid_frame": np.ones((3, 1))})
    with pytest.raises(ValueError, match=r"'valid_frame' has shape \(3, 1\), expected \(4, 1\)"):
        load_test_annotations(path)
    v5 = tmp_path / "annot_data_v5.mat"
    savemat(v5, fields)
    with pytest.raises(ValueError, match=r"annot_data_v5\.mat: expected a MATLAB v7\.3 \(HDF5\).*MATLAB 5\.0"):
        load_test_annotations(v5)
    # ...and the v5 reader names the format when handed a v7.3 file.
    _save_test_fields(path, fields)
    with pytest.raises(ValueError, match=r"annot_data\.mat: cannot read as a MATLAB v5"):
        load_annot_mat(path)


# --------------------------------------------------------------------------- preprocessed npz


def _view(frames: int, seed: int, joints: int = 17) -> dict[str, np.ndarray]:
    rng = _rng(seed)
    return {"data_2d": rng.normal(size=(frames, joints, 2)), "data_3d": rng.normal(size=(frames, joints, 3))}


def test_preprocessed_train_and_test_round_trip(tmp_path: Path) -> None:
    train = {
        "S1 Seq1": [{"0": _view(6, 1), "2": _view(6, 2)}, 25],
        "S3 Seq2": [{"8": _view(4, 3)}, 50],
    }
    save_preprocessed_npz(tmp_path / "data_train_3dhp.npz", train)
    loaded = load_preprocessed_npz(tmp_path / "data_train_3dhp.npz")
    assert list(loaded) == ["S1 Seq1", "S3 Seq2"]
    assert loaded["S1 Seq1"].fps == 25.0 and loaded["S3 Seq2"].fps == 50.0
    assert list(loaded["S1 Seq1"].views) == ["0", "2"] and loaded["S1 Seq1"].views["0"].valid is None
    np.testing.assert_array_equal(loaded["S1 Seq1"].views["2"].data_3d, train["S1 Seq1"][0]["2"]["data_3d"])

    test = {f"TS{i}": {**_view(5, 10 + i), "valid": np.array([1, 0, 1, 1, 0])} for i in (1, 2)}
    save_preprocessed_npz(tmp_path / "data_test_3dhp.npz", test)
    loaded = load_preprocessed_npz(tmp_path / "data_test_3dhp.npz")
    assert list(loaded) == ["TS1", "TS2"]
    assert loaded["TS2"].valid.tolist() == [True, False, True, True, False]
    np.testing.assert_array_equal(loaded["TS1"].data_2d, test["TS1"]["data_2d"])


def test_preprocessed_malformed(tmp_path: Path) -> None:
    path = tmp_path / "data_test_3dhp.npz"
    np.savez(path, positions=np.zeros(3))
    with pytest.raises(KeyError, match=r"data_test_3dhp\.npz: missing key 'data'"):
        load_preprocessed_npz(path)
    np.savez(path, data={"TS1": {**_view(5, 0), "valid": np.ones(4)}})
    with pytest.raises(ValueError, match=r"data\['TS1'\]\['valid'\] has 4 values, expected one per frame \(5\)"):
        load_preprocessed_npz(path)
    np.savez(path, data={"TS1": {**_view(5, 0, joints=28), "valid": np.ones(5)}})
    with pytest.raises(
        ValueError, match=r"data\['TS1'\]\['data_2d'\] has shape \(5, 28, 2\), expected \(frames, 17, 2\)"
    ):
        load_preprocessed_npz(path)
    np.savez(path, data={"S1 Seq1": [{"0": {"data_2d": np.zeros((3, 17, 2))}}, 25]})
    with pytest.raises(KeyError, match=r"data\['S1 Seq1'\]\[0\]\['0'\] lacks \['data_3d'\]"):
        load_preprocessed_npz(path)
