"""Mpi3dhpDataModule: raw and npz files written here in the real formats, read back as PoseSequences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from components.camera import CameraParameters, normalize_screen_coordinates
from components.evaluation import PckProtocol
from components.skeleton import H36M_17, MPI_INF_3DHP_17, MPI_INF_3DHP_28
from datamodules.mpi_inf_3dhp import Mpi3dhpDataModule
from datamodules.mpi_inf_3dhp_files import TEST_CAMERAS
from datamodules.mpi_inf_3dhp_writers import (
    save_annot_mat,
    save_calibration,
    save_preprocessed_npz,
    save_test_annotations,
)

CAMERAS = 14
FRAMES = {"Seq1": 12, "Seq2": 20}  # S1 Seq1 is a 25 fps recording, S1 Seq2 a 50 fps one


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(list(keys))


def _camera(index: int) -> CameraParameters:
    return CameraParameters(
        id=str(index),
        width=2048,
        height=2048,
        focal_length=(1500.0 + index, 1498.0 + index),
        center=(1020.0 + index, 1030.0 - index),
        radial_distortion=(0.0, 0.0, 0.0),
        tangential_distortion=(0.0, 0.0),
        orientation=(1.0, 0.0, 0.0, 0.0),
        translation=(0.0, 0.0, float(index)),
    )


def _annotations(frames: int, joints: int, seed: int, leading: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    rng = _rng(seed, joints)
    annot3 = rng.normal(0, 300, (*leading, frames, joints, 3)) + [0, 0, 4000]
    return {
        "annot2": rng.uniform(100, 1900, (*leading, frames, joints, 2)),
        "annot3": annot3,
        "univ_annot3": annot3 * 0.9,
    }


def _write_raw(root: Path) -> tuple[dict, dict]:
    """S1/Seq1, S1/Seq2 (14 cameras) and TS1, TS5; returns the annotations written."""
    train, test = {}, {}
    for seed, (name, frames) in enumerate(FRAMES.items()):
        folder = root / "S1" / name
        folder.mkdir(parents=True)
        train[name] = _annotations(frames, 28, seed, (CAMERAS,))
        save_annot_mat(folder / "annot.mat", **train[name], extra_rows=3)
        save_calibration(folder / "camera.calibration", [_camera(c) for c in range(CAMERAS)])
    for seed, name in enumerate(("TS1", "TS5")):
        folder = root / "mpi_inf_3dhp_test_set" / name
        folder.mkdir(parents=True)
        fields = _annotations(10, 17, 10 + seed)
        valid = np.ones(10, bool)
        valid[:2] = False
        activity = np.array([1, 1, 1, 2, 2, 3, 3, 7, 7, 7])
        test[name] = {**fields, "valid": valid, "activity": activity}
        save_test_annotations(folder / "annot_data.mat", **test[name])
    return train, test


def _module(root: Path, **options) -> Mpi3dhpDataModule:
    defaults = {
        "train_subjects": ["S1"],
        "val_sequences": ["TS1"],
        "test_sequences": ["TS1", "TS5"],
        "allow_val_on_test": True,
    }
    data = Mpi3dhpDataModule(data_dir=str(root), **(defaults | options))
    data.setup("fit")
    return data


def _by_name(array: np.ndarray, source, joint: str) -> np.ndarray:
    return array[..., source.index(joint), :]


def test_raw_training_recordings_in_h36m_layout(tmp_path: Path) -> None:
    train, _ = _write_raw(tmp_path)
    data = _module(tmp_path, train_cameras=[0, 4])
    sequences = data.sequences["train"]
    assert [(s.action, s.camera) for s in sequences] == [("Seq1", "0"), ("Seq1", "4"), ("Seq2", "0"), ("Seq2", "4")]
    first, fourth = sequences[0], sequences[3]
    assert len(first) == FRAMES["Seq1"] and first.fps == 25.0 and fourth.fps == 50.0
    written = train["Seq2"]
    for joint in ("thorax", "head", "head_top", "left_ankle", "right_wrist"):
        pixels = _by_name(written["annot2"][4], MPI_INF_3DHP_28, joint)
        expected = normalize_screen_coordinates(pixels, 2048, 2048)
        np.testing.assert_allclose(_by_name(fourth.keypoints_2d, H36M_17, joint), expected, rtol=1e-6, atol=1e-6)
        pose = _by_name(written["univ_annot3"][4], MPI_INF_3DHP_28, joint)
        pelvis = _by_name(written["univ_annot3"][4], MPI_INF_3DHP_28, "pelvis")
        np.testing.assert_allclose(_by_name(fourth.poses_3d, H36M_17, joint), (pose - pelvis) / 1000, atol=1e-6)
    trajectory = _by_name(written["annot3"][4], MPI_INF_3DHP_28, "pelvis") / 1000
    np.testing.assert_allclose(fourth.trajectory[:, 0], trajectory, rtol=1e-6)
    np.testing.assert_allclose(fourth.intrinsics, _camera(4).intrinsics(), rtol=1e-6)
    assert np.all(fourth.poses_3d[:, H36M_17.root] == 0)


def test_target_fps_and_camera_targets(tmp_path: Path) -> None:
    train, _ = _write_raw(tmp_path)
    data = _module(tmp_path, train_cameras=[1], target_fps=25, target_3d="camera")
    seq1, seq2 = data.sequences["train"]
    assert len(seq1) == FRAMES["Seq1"] and len(seq2) == FRAMES["Seq2"] // 2 and seq2.fps == 25.0
    annot3 = train["Seq2"]["annot3"][1, ::2]
    pelvis = MPI_INF_3DHP_28.index("pelvis")
    expected = (annot3 - annot3[:, pelvis : pelvis + 1]) / 1000
    np.testing.assert_allclose(seq2.poses_3d, H36M_17.convert_from(MPI_INF_3DHP_28, expected), atol=1e-6)
    with pytest.raises(ValueError, match="cannot be resampled to 20 fps"):
        _module(tmp_path, target_fps=20)


def test_raw_test_sequences_keep_valid_frames_and_activities(tmp_path: Path) -> None:
    _, test = _write_raw(tmp_path)
    data = _module(tmp_path)
    ts1, ts5 = data.sequences["test"]
    assert (ts1.subject, ts5.subject) == ("TS1", "TS5") and data.sequences["val"][0].subject == "TS1"
    np.testing.assert_array_equal(ts5.valid, test["TS5"]["valid"])
    np.testing.assert_array_equal(ts5.activity, test["TS5"]["activity"] - 1)
    outdoor = TEST_CAMERAS["TS5"]
    assert (outdoor.width, outdoor.height) == (1920, 1080)
    pixels = MPI_INF_3DHP_17.convert_from(MPI_INF_3DHP_17, test["TS5"]["annot2"])
    expected = normalize_screen_coordinates(_by_name(pixels, MPI_INF_3DHP_17, "thorax"), 1920, 1080)
    np.testing.assert_allclose(_by_name(ts5.keypoints_2d, H36M_17, "thorax"), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ts5.intrinsics, outdoor.intrinsics())
    batch = data.test_dataloader().dataset[1]
    np.testing.assert_array_equal(batch.valid[0].numpy(), test["TS5"]["valid"])
    protocol = data.evaluation_protocol()
    assert isinstance(protocol, PckProtocol) and protocol.sequences == data.subjects


def test_npz_form_matches_the_raw_form(tmp_path: Path) -> None:
    train, test = _write_raw(tmp_path / "raw")
    npz = tmp_path / "npz"
    npz.mkdir()
    views = {}
    for name, fields in train.items():
        cameras = {
            str(c): {
                "data_2d": MPI_INF_3DHP_17.convert_from(MPI_INF_3DHP_28, fields["annot2"][c]),
                "data_3d": MPI_INF_3DHP_17.convert_from(MPI_INF_3DHP_28, fields["univ_annot3"][c]),
            }
            for c in (0, 1, 2, 4, 5, 6, 7, 8)
        }
        views[f"S1 {name}"] = [cameras, 25.0 if name == "Seq1" else 50.0]
    save_preprocessed_npz(npz / "data_train_3dhp.npz", views)
    tests = {n: {"data_2d": t["annot2"], "data_3d": t["univ_annot3"], "valid": t["valid"]} for n, t in test.items()}
    save_preprocessed_npz(npz / "data_test_3dhp.npz", tests)
    raw, pre = _module(tmp_path / "raw"), _module(npz, form="npz")
    for split in ("train", "test"):
        for a, b in zip(raw.sequences[split], pre.sequences[split], strict=True):
            np.testing.assert_allclose(a.keypoints_2d, b.keypoints_2d, atol=1e-6)
            np.testing.assert_allclose(a.poses_3d, b.poses_3d, atol=1e-6)
            np.testing.assert_array_equal(a.valid, b.valid) if a.valid is not None else None
    assert pre.sequences["train"][0].intrinsics is None and pre.sequences["test"][0].activity is None


def test_clear_errors(tmp_path: Path) -> None:
    _write_raw(tmp_path)
    with pytest.raises(ValueError, match=r"train_cameras \[14\] not present"):
        _module(tmp_path, train_cameras=[0, 14])
    with pytest.raises(ValueError, match="unknown test sequence"):
        Mpi3dhpDataModule(data_dir=str(tmp_path), test_sequences=["TS7"])
    with pytest.raises(FileNotFoundError, match=r"S2/Seq1/annot.mat"):
        _module(tmp_path, train_subjects=["S1", "S2"])
    with pytest.raises(FileNotFoundError, match="data_train_3dhp.npz"):
        _module(tmp_path, form="npz")
    with pytest.raises(KeyError, match="unknown skeleton layout"):
        Mpi3dhpDataModule(data_dir=str(tmp_path), output_layout="smpl")
