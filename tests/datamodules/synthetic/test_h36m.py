"""Known-value tests for the synthetic Human3.6M writer (datamodules.synthetic.h36m), on the ``tiny`` size.

The files are checked in the exact VideoPose3D formats, the 3D against Human3.6M's static duplicate joints,
the 2D against the camera model, the detector-like source against its error model, and the cache against
re-generation and interruption. Names are imported from the package, as its users do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from components.camera import h36m_cameras, project_to_2d, world_to_camera
from components.skeleton import H36M_17, H36M_32
from datamodules.synthetic import SIZES, SYNTHETIC_2D_SOURCES, ensure_synthetic_h36m, h36m, synthesize_h36m

SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
TINY_ACTIONS = SIZES["tiny"].actions


def _load(path: Path, key: str):
    with np.load(path, allow_pickle=True) as archive:
        return archive[key].item()


def _views(positions_2d: dict):
    """(subject, action, camera index, (T, 17, 2) array) for every view."""
    for subject, actions in positions_2d.items():
        for action, views in actions.items():
            for camera, view in enumerate(views):
                yield subject, action, camera, view


# ------------------------------------------------------------------------------------------------ formats


def test_files_have_the_videopose3d_keys_and_dtypes(tiny, poses_3d, gt_2d) -> None:
    assert sorted(p.name for p in tiny.iterdir()) == [
        "data_2d_h36m_gt.npz",
        "data_2d_h36m_noisy.npz",
        "data_3d_h36m.npz",
    ]
    with np.load(tiny / "data_3d_h36m.npz", allow_pickle=True) as archive:
        assert archive.files == ["positions_3d"]
    for source in SYNTHETIC_2D_SOURCES:
        with np.load(tiny / f"data_2d_h36m_{source}.npz", allow_pickle=True) as archive:
            assert sorted(archive.files) == ["metadata", "positions_2d"]
    expected_actions = {f"{a}{suffix}" for a in TINY_ACTIONS for suffix in ("", " 1")}
    assert tuple(poses_3d) == SUBJECTS and tuple(gt_2d) == SUBJECTS
    for subject in SUBJECTS:
        assert set(poses_3d[subject]) == expected_actions == set(gt_2d[subject])
        for action, world in poses_3d[subject].items():
            assert world.dtype == np.float32 and world.ndim == 3 and world.shape[1:] == (32, 3)
            views = gt_2d[subject][action]
            assert isinstance(views, list) and len(views) == 4
            assert all(v.dtype == np.float32 and v.shape == (len(world), 17, 2) for v in views)


def test_metadata_matches_the_real_files(tiny) -> None:
    symmetry = [list(H36M_17.left), list(H36M_17.right)]
    gt = _load(tiny / "data_2d_h36m_gt.npz", "metadata")
    noisy = _load(tiny / "data_2d_h36m_noisy.npz", "metadata")
    assert gt == {"num_joints": 17, "keypoints_symmetry": symmetry}  # no layout_name, like the real gt file
    assert noisy == {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": symmetry}
    assert symmetry == [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]  # VideoPose3D's published lists


def test_real_readers_load_the_files(tiny) -> None:
    human36m = pytest.importorskip("datamodules.human36m")
    positions = human36m.load_positions_3d(tiny / "data_3d_h36m.npz")
    assert positions["S9"]["Walking 1"].shape[1:] == (32, 3)
    for source in SYNTHETIC_2D_SOURCES:
        keypoints = human36m.load_keypoints_2d(tiny / f"data_2d_h36m_{source}.npz")
        assert keypoints.skeleton is H36M_17
        assert len(keypoints.positions["S11"]["Directions"]) == 4


def test_summary_counts_what_was_written(summary, tiny, poses_3d) -> None:
    assert summary.size == "tiny" and summary.seed == 0
    assert summary.subjects == SUBJECTS and summary.sources == SYNTHETIC_2D_SOURCES
    assert summary.actions == {s: 2 * len(TINY_ACTIONS) for s in SUBJECTS}
    assert summary.frames["S7"] == sum(len(x) for x in poses_3d["S7"].values())
    assert summary.total_frames == sum(summary.frames.values())
    assert summary.file_sizes == {p.name: p.stat().st_size for p in tiny.iterdir()}
    text = str(summary)
    assert text == summary.format() and "S11" in text and "data_2d_h36m_noisy.npz" in text


# ------------------------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path, tiny) -> None:
    directories = (tiny, tmp_path / "again", tmp_path / "other")
    synthesize_h36m(directories[1], "tiny", seed=0)
    synthesize_h36m(directories[2], "tiny", seed=1)
    for name in ("data_3d_h36m.npz", "data_2d_h36m_gt.npz", "data_2d_h36m_noisy.npz"):
        key = "positions_3d" if "3d" in name else "positions_2d"
        reference, again, other = (_load(d / name, key) for d in directories)
        for subject in SUBJECTS:
            for action in reference[subject]:
                a, b = np.asarray(reference[subject][action]), np.asarray(again[subject][action])
                assert np.array_equal(a, b), (name, subject, action)
                c = np.asarray(other[subject][action])
                assert a.shape != c.shape or not np.allclose(a, c, atol=1e-2), (name, subject, action)


# ------------------------------------------------------------------------------------------------ 3D


def test_static_joints_duplicate_the_real_skeleton(poses_3d) -> None:
    world = poses_3d["S8"]["Directions 1"]
    pelvis, thorax = world[:, H36M_32.index("pelvis")], world[:, H36M_32.index("thorax")]
    assert np.array_equal(world[:, H36M_32.index("lower_spine")], pelvis)
    assert np.array_equal(world[:, H36M_32.index("left_clavicle")], thorax)
    assert np.array_equal(world[:, H36M_32.index("right_clavicle")], thorax)


# ------------------------------------------------------------------------------------------------ 2D


def test_gt_is_the_distorted_projection_of_the_3d(poses_3d, gt_2d) -> None:
    for subject in ("S1", "S11"):
        for camera_index, camera in enumerate(h36m_cameras(subject)):
            for action, world in poses_3d[subject].items():
                points = torch.from_numpy(H36M_17.convert_from(H36M_32, world)).double()
                orientation = torch.tensor(camera.orientation, dtype=torch.float64)
                local = world_to_camera(points, orientation, torch.tensor(camera.translation))
                expected = project_to_2d(local, torch.tensor(camera.pixel_intrinsics())).numpy()
                assert np.abs(gt_2d[subject][action][camera_index] - expected).max() < 1e-3


def test_every_gt_point_lies_inside_its_image(poses_3d, gt_2d) -> None:
    for subject, action, camera_index, view in _views(gt_2d):
        camera = h36m_cameras(subject)[camera_index]
        assert view.min() > 0
        assert view[..., 0].max() < camera.width and view[..., 1].max() < camera.height
        local = world_to_camera(
            torch.from_numpy(poses_3d[subject][action]).double(),
            torch.tensor(camera.orientation, dtype=torch.float64),
            torch.tensor(camera.translation),
        )
        assert local[..., 2].min() > 1.0  # metres in front of the camera


def _mean_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean distance ``(T,)`` between two groups of points ``(T, joints, 2)``."""
    return np.linalg.norm(a - b, axis=-1).mean(axis=-1)


def test_noisy_source_looks_like_a_detector(gt_2d, noisy_2d) -> None:
    errors, swaps, holds, points = [], 0, 0, 0
    left = list(H36M_17.indices(["left_knee", "left_ankle"]))
    right = list(H36M_17.indices(["right_knee", "right_ankle"]))
    for subject, action, camera, noisy in _views(noisy_2d):
        exact = gt_2d[subject][action][camera]
        assert noisy.shape == exact.shape and noisy.dtype == np.float32
        errors.append(np.linalg.norm(noisy - exact, axis=-1).ravel())
        # A swapped leg sits on the other leg's true position, far from its own (when the legs are apart).
        apart = _mean_distance(exact[:, left], exact[:, right]) > 40
        crossed = _mean_distance(noisy[:, left + right], exact[:, right + left])
        kept = _mean_distance(noisy[:, left + right], exact[:, left + right])
        swaps += int((apart & (crossed < kept / 4)).sum())
        # A dropped joint repeats its last position exactly; jittered detections never do.
        holds += int(np.all(noisy[1:] == noisy[:-1], axis=-1).sum())
        points += noisy.shape[0] * noisy.shape[1]
    assert 1.5 < np.median(np.concatenate(errors)) < 6.0  # pixels
    assert swaps > 0
    assert 0 < holds < 0.05 * points


# ------------------------------------------------------------------------------------------------ cache


def test_ensure_generates_once(tmp_path) -> None:
    path = ensure_synthetic_h36m(tmp_path, "tiny", seed=0)
    assert path == tmp_path / "synthetic_h36m_tiny_seed0"
    stamps = {p.name: p.stat().st_mtime_ns for p in path.iterdir()}
    assert len(stamps) == 3
    assert ensure_synthetic_h36m(tmp_path, "tiny", seed=0) == path
    assert {p.name: p.stat().st_mtime_ns for p in path.iterdir()} == stamps
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no staging directory left behind


def test_interrupted_generation_leaves_no_dataset(tmp_path, monkeypatch) -> None:
    def interrupted(out_dir, size, seed):
        (Path(out_dir) / "data_3d_h36m.npz").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(h36m, "synthesize_h36m", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic_h36m(tmp_path, "tiny", seed=0)
    assert list(tmp_path.iterdir()) == []


def test_ensure_replaces_a_damaged_dataset(tmp_path) -> None:
    damaged = tmp_path / "synthetic_h36m_tiny_seed0"
    damaged.mkdir()
    (damaged / "data_3d_h36m.npz").write_bytes(b"half")
    assert ensure_synthetic_h36m(tmp_path, "tiny", seed=0) == damaged
    assert sorted(p.name for p in damaged.iterdir()) == [
        "data_2d_h36m_gt.npz",
        "data_2d_h36m_noisy.npz",
        "data_3d_h36m.npz",
    ]
    assert _load(damaged / "data_3d_h36m.npz", "positions_3d")["S1"]["Walking"].shape[1:] == (32, 3)


def test_unknown_size_names_the_valid_sizes(tmp_path) -> None:
    for call in (ensure_synthetic_h36m, synthesize_h36m):
        with pytest.raises(ValueError, match="unknown.*'huge'.*tiny.*default"):
            call(tmp_path / "x", "huge")
    assert list(tmp_path.iterdir()) == []
