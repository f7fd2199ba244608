"""Known-value tests for the synthetic MPI-INF-3DHP writer (datamodules.synthetic.mpi_inf_3dhp), ``tiny`` size.

Every file is read back through the real readers; the 2D is checked against the calibration files and test
cameras, the 3D of all cameras against one world pose, ``univ_annot3`` against ``annot3``, and the cache
against re-generation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import loadmat

from components.camera import project_to_2d
from components.skeleton import MPI_INF_3DHP_17, MPI_INF_3DHP_28, Skeleton
from datamodules.mpi_inf_3dhp_files import (
    TEST_CAMERAS,
    TEST_SEQUENCES,
    TRAIN_RECORDINGS,
    load_annot_mat,
    load_calibration,
    load_test_annotations,
)
from datamodules.synthetic import (
    SIZES_3DHP,
    UNIVERSAL_HEIGHT,
    ensure_synthetic_3dhp,
    mpi_inf_3dhp,
    subject_body,
    synthesize_3dhp,
    synthetic_3dhp_files,
    train_rig,
)

TINY = SIZES_3DHP["tiny"]


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    return synthesize_3dhp(tmp_path_factory.mktemp("synthetic_3dhp") / "seed0", "tiny", seed=0)


@pytest.fixture(scope="module")
def root(summary) -> Path:
    return summary.directory


@pytest.fixture(scope="module")
def train(root) -> dict:
    """``(subject, sequence)`` -> (AnnotMat, list of SkeletoolCamera)."""
    return {
        (s, q): (load_annot_mat(root / s / q / "annot.mat"), load_calibration(root / s / q / "camera.calibration"))
        for s, q in TRAIN_RECORDINGS
    }


@pytest.fixture(scope="module")
def ts_annotations(root) -> dict:
    return {
        name: load_test_annotations(root / "mpi_inf_3dhp_test_set" / name / "annot_data.mat") for name in TEST_SEQUENCES
    }


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def _bone_lengths(poses: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """``(..., joints - 1)`` lengths of the bones of ``(..., joints, 3)`` poses."""
    children = [j for j, parent in enumerate(skeleton.parents) if parent >= 0]
    parents = [skeleton.parents[j] for j in children]
    return np.linalg.norm(poses[..., children, :] - poses[..., parents, :], axis=-1)


# ------------------------------------------------------------------------------------------------ layout


def test_folder_layout_and_frame_counts(root, summary) -> None:
    assert _files(root) == sorted(synthetic_3dhp_files(root))
    assert {p.relative_to(root).parts[:2] for p in synthetic_3dhp_files(root)} >= {("S1", "Seq1"), ("S8", "Seq2")}
    expected_train = {f"{s} {q}": TINY.frames(real) for (s, q), (real, _) in TRAIN_RECORDINGS.items()}
    assert dict(summary.train_frames) == expected_train
    assert summary.train_frames["S1 Seq1"] == 64 and summary.train_frames["S1 Seq2"] == 124  # 25 fps vs 50 fps
    assert dict(summary.test_frames) == {name: TINY.frames(real) for name, real in TEST_SEQUENCES.items()}
    assert "TS6" in str(summary) and "S8 Seq2" in str(summary)


def test_training_files_read_back(root, train, summary) -> None:
    for (subject, sequence), (annot, cameras) in train.items():
        frames = summary.train_frames[f"{subject} {sequence}"]
        assert annot.annot2.shape == (14, frames, 28, 2)
        assert annot.annot3.shape == annot.univ_annot3.shape == (14, frames, 28, 3)
        assert annot.frames.tolist() == list(range(frames)) and annot.cameras.tolist() == list(range(14))
        assert [c.name for c in cameras] == [str(i) for i in range(14)]
        assert all((c.width, c.height) == (2048, 2048) for c in cameras)
    cells = loadmat(root / "S3" / "Seq1" / "annot.mat")["univ_annot3"]
    assert cells.shape == (14, 1) and cells[5, 0].shape == (summary.train_frames["S3 Seq1"] + 3, 84)
    assert not cells[5, 0][-3:].any()  # the extra rows the readers cut


def test_calibration_files_hold_the_subject_rigs(train) -> None:
    for subject in ("S1", "S6"):
        _, cameras = train[(subject, "Seq2")]
        for skeletool, camera in zip(cameras, train_rig(subject, seed=0), strict=True):
            read = skeletool.camera_parameters()
            assert read.focal_length == camera.focal_length and read.center == camera.center
            np.testing.assert_allclose(read.orientation, camera.orientation, atol=1e-9)
            np.testing.assert_allclose(read.translation, camera.translation, atol=1e-9)
    assert train_rig("S1", seed=0) == train_rig("S1", seed=0) != train_rig("S2", seed=0)


def test_rig_has_a_chest_high_ring_and_ceiling_cameras() -> None:
    for subject in ("S1", "S4", "S8"):
        rig = train_rig(subject, seed=0)
        centres = np.array([c.translation for c in rig])
        radius = np.linalg.norm(centres[:, :2], axis=-1)
        assert np.all((1.0 <= centres[:11, 2]) & (centres[:11, 2] <= 1.6))
        assert np.all((3.5 <= radius[:11]) & (radius[:11] <= 4.5))
        assert np.all((3.5 <= centres[11:, 2]) & (centres[11:, 2] <= 4.0))
        for camera in rig:
            w, x, y, z = camera.orientation
            optical_axis = np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])  # R[:, 2]
            down = -optical_axis[2]
            assert (abs(down) < 0.3) if int(camera.id) < 11 else (down > 0.7)  # small tilt / steeply down
            assert (
                abs(camera.focal_length[0] - 1500) < 25
                and abs(camera.focal_length[1] / camera.focal_length[0] - 1) < 2e-3
            )
            assert np.all(np.abs(np.asarray(camera.center) - 1024) <= 15)


# ------------------------------------------------------------------------------------------------ training poses


def test_annot2_is_annot3_projected_through_the_calibration(train) -> None:
    for annot, cameras in train.values():
        focal = np.array([c.focal_length for c in cameras])[:, None, None]
        centre = np.array([c.center for c in cameras])[:, None, None]
        projected = annot.annot3[..., :2] / annot.annot3[..., 2:] * focal + centre
        assert np.abs(projected - annot.annot2).max() < 1e-3


def test_every_camera_sees_the_same_world_pose(train) -> None:
    for annot, cameras in train.values():
        rotation = np.stack([c.rotation for c in cameras])[:, None]  # world -> camera
        translation = np.stack([c.translation for c in cameras])[:, None, None]  # metres
        world = (annot.annot3 / 1000 - translation) @ rotation  # rows: R^T (x - t)
        assert np.abs(world - world[0]).max() < 1e-6
        assert abs(world[..., 2].min()) < 0.05  # someone standing on the z = 0 floor


def test_every_joint_is_inside_every_training_image(train) -> None:
    for annot, _ in train.values():
        assert annot.annot3[..., 2].min() > 500  # mm in front of the camera
        assert annot.annot2.min() > 0 and annot.annot2.max() < 2048


def test_no_joint_jumps_between_frames(train) -> None:
    for (subject, sequence), (annot, _) in train.items():
        fps = TRAIN_RECORDINGS[(subject, sequence)][1]
        speed = np.linalg.norm(np.diff(annot.annot3[0], axis=0), axis=-1) / 1000 * fps
        assert speed.max() < 12.0, (subject, sequence)  # metres per second, hands included


def test_univ_annot3_is_annot3_scaled_to_the_universal_height(train) -> None:
    for (subject, _), (annot, _) in train.items():
        ratio = _bone_lengths(annot.univ_annot3, MPI_INF_3DHP_28) / _bone_lengths(annot.annot3, MPI_INF_3DHP_28)
        expected = UNIVERSAL_HEIGHT / subject_body(subject, seed=0).height
        np.testing.assert_allclose(ratio[np.isfinite(ratio)], expected, rtol=1e-9)
        pelvis = MPI_INF_3DHP_28.index("pelvis")
        np.testing.assert_allclose(annot.univ_annot3[..., pelvis, :], annot.annot3[..., pelvis, :], atol=1e-9)
    assert 0.85 < UNIVERSAL_HEIGHT / subject_body("S3", seed=0).height < 1.15


# ------------------------------------------------------------------------------------------------ test set


def test_test_set_reads_back_with_valid_and_activity_blocks(ts_annotations, summary) -> None:
    for name, annot in ts_annotations.items():
        frames = summary.test_frames[name]
        assert annot.annot2.shape == (frames, 17, 2) and annot.annot3.shape == annot.univ_annot3.shape == (
            frames,
            17,
            3,
        )
        assert not annot.valid[0] and 0.05 <= 1 - annot.valid.mean() <= 0.15
        assert set(annot.activity.tolist()) <= set(range(1, 8))
        changes = np.count_nonzero(np.diff(annot.activity))
        assert changes == len(set(annot.activity.tolist())) - 1  # one contiguous block per activity
    covered = set(np.concatenate([a.activity for a in ts_annotations.values()]).tolist())
    assert len(covered) >= 4


def test_test_annot2_is_annot3_through_the_test_camera(ts_annotations) -> None:
    for name, annot in ts_annotations.items():
        camera = TEST_CAMERAS[name]
        expected = project_to_2d(torch.from_numpy(annot.annot3 / 1000), torch.from_numpy(camera.pixel_intrinsics()))
        assert np.abs(expected.numpy() - annot.annot2).max() < 1e-3
        assert annot.annot2.min() > 0
        assert annot.annot2[..., 0].max() < camera.width and annot.annot2[..., 1].max() < camera.height
        depth = annot.annot3[:, MPI_INF_3DHP_17.index("pelvis"), 2] / 1000
        assert (3.0 < depth.min() and depth.max() < 5.0) if camera.id == "studio" else (depth.min() > 4.5)


def test_test_subjects_have_their_own_bodies(ts_annotations) -> None:
    for name, annot in ts_annotations.items():
        ratio = _bone_lengths(annot.univ_annot3, MPI_INF_3DHP_17) / _bone_lengths(annot.annot3, MPI_INF_3DHP_17)
        np.testing.assert_allclose(ratio, UNIVERSAL_HEIGHT / subject_body(name, seed=0).height, rtol=1e-9)
    heights = {subject_body(name, seed=0).height for name in ts_annotations}
    assert len(heights) == len(ts_annotations)


# ------------------------------------------------------------------------------------------------ determinism, cache


def _arrays(directory: Path) -> dict[str, np.ndarray]:
    """Every array of a synthetic 3DHP folder, keyed by file and field."""
    arrays = {}
    for s, q in TRAIN_RECORDINGS:
        annot = load_annot_mat(directory / s / q / "annot.mat")
        arrays |= {f"{s} {q} {field}": getattr(annot, field) for field in ("annot2", "annot3", "univ_annot3")}
    for name in TEST_SEQUENCES:
        annot = load_test_annotations(directory / "mpi_inf_3dhp_test_set" / name / "annot_data.mat")
        arrays |= {f"{name} {field}": getattr(annot, field) for field in ("annot2", "univ_annot3", "valid", "activity")}
    return arrays


def test_ensure_generates_the_same_set_once(tmp_path, root, monkeypatch) -> None:
    path = ensure_synthetic_3dhp(tmp_path, "tiny", seed=0)
    assert path == tmp_path / "synthetic_3dhp_tiny_seed0"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no staging folder left behind
    reference, again = _arrays(root), _arrays(path)
    assert reference.keys() == again.keys()
    assert all(np.array_equal(reference[key], again[key]) for key in reference)
    for relative in ("S2/Seq1/camera.calibration", "mpi_inf_3dhp_test_set/TS5/annot_data.mat"):
        assert (path / relative).read_bytes() == (root / relative).read_bytes()

    stamps = {p: p.stat().st_mtime_ns for p in _files(path)}
    monkeypatch.setattr(mpi_inf_3dhp, "synthesize_3dhp", lambda *args: pytest.fail("regenerated a complete set"))
    assert ensure_synthetic_3dhp(tmp_path, "tiny", seed=0) == path
    assert {p: p.stat().st_mtime_ns for p in _files(path)} == stamps


def test_another_seed_gives_another_dataset(tmp_path, root) -> None:
    other = _arrays(synthesize_3dhp(tmp_path, "tiny", seed=1).directory)
    reference = _arrays(root)
    key = "S1 Seq1 annot3"
    assert other[key].shape != reference[key].shape or not np.allclose(other[key], reference[key], atol=1.0)
    assert train_rig("S1", seed=1) != train_rig("S1", seed=0)


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch) -> None:
    def interrupted(out_dir, size, seed):
        (Path(out_dir) / "S1").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(mpi_inf_3dhp, "synthesize_3dhp", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic_3dhp(tmp_path, "tiny", seed=0)
    assert list(tmp_path.iterdir()) == []


def test_unknown_size_names_the_valid_sizes(tmp_path) -> None:
    for call in (ensure_synthetic_3dhp, synthesize_3dhp):
        with pytest.raises(ValueError, match="unknown.*'huge'.*tiny.*default"):
            call(tmp_path / "x", "huge")
    assert list(tmp_path.iterdir()) == []
