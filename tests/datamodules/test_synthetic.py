"""Known-value tests for the synthetic Human3.6M generator (datamodules.synthetic), on the ``tiny`` size.

The files are checked in the exact VideoPose3D formats, the 3D against anatomy (rigid bones, heights, feet
on the floor, Human3.6M's static duplicate joints), the 2D against the camera model, the detector-like
source against its error model, and the cache against re-generation and interruption.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import torch

from components.camera import h36m_cameras, project_to_2d, world_to_camera
from components.geometry import bone_lengths
from components.skeleton import H36M_17, H36M_32, MPI_INF_3DHP_28
from datamodules import synthetic
from datamodules.synthetic import (
    BODY,
    H36M_ACTIONS,
    SIZES,
    SYNTHETIC_2D_SOURCES,
    DetectorNoise,
    SynthesisSummary,
    capture_volume,
    corrupt_keypoints,
    ensure_synthetic_h36m,
    simulate_motion,
    subject_body,
    synthesize_h36m,
)

SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
TINY_ACTIONS = SIZES["tiny"].actions


def _load(path: Path, key: str):
    with np.load(path, allow_pickle=True) as archive:
        return archive[key].item()


@pytest.fixture(scope="module")
def summary(tmp_path_factory) -> SynthesisSummary:
    return synthesize_h36m(tmp_path_factory.mktemp("synthetic") / "seed0", "tiny", seed=0)


@pytest.fixture(scope="module")
def tiny(summary) -> Path:
    return summary.directory


@pytest.fixture(scope="module")
def poses_3d(tiny) -> dict:
    return _load(tiny / "data_3d_h36m.npz", "positions_3d")


@pytest.fixture(scope="module")
def gt_2d(tiny) -> dict:
    return _load(tiny / "data_2d_h36m_gt.npz", "positions_2d")


@pytest.fixture(scope="module")
def noisy_2d(tiny) -> dict:
    return _load(tiny / "data_2d_h36m_noisy.npz", "positions_2d")


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


# ------------------------------------------------------------------------------------------------ 3D anatomy


def _bones(world_32: np.ndarray) -> np.ndarray:
    poses = torch.from_numpy(H36M_17.convert_from(H36M_32, world_32)).double()
    return bone_lengths(poses, H36M_17).numpy()


def test_bone_lengths_are_rigid_within_a_subject_and_differ_between_subjects(poses_3d) -> None:
    means = {}
    for subject, actions in poses_3d.items():
        bones = np.concatenate([_bones(world) for world in actions.values()])
        assert np.abs(bones - bones.mean(0)).max() < 1e-5  # metres, over every frame of every take
        assert bones.min() > 0.05
        means[subject] = bones.mean(0)
    for a, b in combinations(SUBJECTS, 2):
        assert np.abs(means[a] - means[b]).max() > 0.002, (a, b)


def test_left_and_right_bones_are_equal(poses_3d) -> None:
    bones = _bones(poses_3d["S6"]["Walking"])[0]
    child = [c for c, _ in H36M_17.bones]
    for i, c in enumerate(child):
        partner = H36M_17.flip_permutation[c]
        assert bones[i] == pytest.approx(bones[child.index(partner)], abs=1e-6)


def test_standing_heights_are_adult_and_feet_touch_the_floor(poses_3d) -> None:
    feet = list(H36M_32.indices([f"{s}_{j}" for s in ("left", "right") for j in ("ankle", "toe", "toe_end")]))
    heights = {}
    for subject, actions in poses_3d.items():
        for action, world in actions.items():
            lowest = world[:, feet, 2].min(axis=1)
            # Some foot point is on the floor (z = 0) in every frame (the heels, not in the file, may be the
            # lowest point), and none is below it.
            assert lowest.min() > -1e-5 and lowest.max() < 0.02, (subject, action)
        walking = np.concatenate([w for a, w in actions.items() if a.startswith("Walking")])
        heights[subject] = walking[:, H36M_32.index("head_top"), 2].max()
        assert 1.5 <= heights[subject] <= 1.9
        # Upright walking reaches the body's standing height to within a few centimetres.
        assert heights[subject] == pytest.approx(subject_body(subject, seed=0).height, abs=0.05)
    assert len({round(float(h), 3) for h in heights.values()}) == len(SUBJECTS)


def test_static_joints_duplicate_the_real_skeleton(poses_3d) -> None:
    world = poses_3d["S8"]["Directions 1"]
    pelvis, thorax = world[:, H36M_32.index("pelvis")], world[:, H36M_32.index("thorax")]
    assert np.array_equal(world[:, H36M_32.index("lower_spine")], pelvis)
    assert np.array_equal(world[:, H36M_32.index("left_clavicle")], thorax)
    assert np.array_equal(world[:, H36M_32.index("right_clavicle")], thorax)


def test_walking_moves_and_standing_stays_near_one_spot(poses_3d) -> None:
    pelvis = H36M_32.index("pelvis")
    walk = poses_3d["S1"]["Walking"][:, pelvis, :2]
    speed = np.linalg.norm(np.diff(walk, axis=0), axis=-1).mean() * synthetic.FPS
    assert 0.7 < speed < 1.8  # metres per second
    stand = poses_3d["S1"]["Directions"][:, pelvis, :2]
    assert np.linalg.norm(stand - stand.mean(0), axis=-1).max() < 0.5


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


def test_corrupt_keypoints_swaps_limbs_by_name() -> None:
    frames = 400
    points = np.broadcast_to(np.arange(17.0)[:, None] * [10.0, 1.0], (frames, 17, 2)).copy()
    noise = DetectorNoise(jitter_px=0, outlier_rate=0, hold_rate=0, swap_rate=0.05)
    result = corrupt_keypoints(points, H36M_17, np.random.default_rng(0), noise)
    assert result.swapped.any() and not result.held.any()
    swapped_joints = set(np.flatnonzero(result.swapped.any(axis=0)))
    names = {f"{s}_{n}" for s in ("left", "right") for n in ("knee", "ankle", "elbow", "wrist")}
    assert swapped_joints == set(H36M_17.indices(sorted(names)))
    partner = np.array(H36M_17.flip_permutation)
    expected = np.where(result.swapped[..., None], points[:, partner], points)
    assert np.array_equal(result.points, expected.astype(np.float32))


def test_corrupt_keypoints_holds_the_last_detected_position() -> None:
    frames = 500
    points = np.arange(frames, dtype=np.float64)[:, None, None] * np.ones((1, 17, 2))  # every joint moves
    noise = DetectorNoise(jitter_px=0, outlier_rate=0, swap_rate=0, hold_rate=0.02, hold_frames=(3, 3))
    result = corrupt_keypoints(points, H36M_17, np.random.default_rng(1), noise)
    held = result.held
    assert held.any() and not held[0].any()
    assert np.array_equal(result.points[~held], points[~held].astype(np.float32))
    frame, joint = np.nonzero(held)
    assert np.array_equal(result.points[frame, joint], result.points[frame - 1, joint])


# ------------------------------------------------------------------------------------------------ engine


def test_body_holds_the_names_of_every_dataset_layout() -> None:
    assert set(H36M_32.joint_names) | set(MPI_INF_3DHP_28.joint_names) <= set(BODY.joint_names)
    assert all(p < j for j, p in enumerate(BODY.parents))  # parents first: one forward-kinematics pass


@pytest.fixture(scope="module")
def volume_s9() -> synthetic.CaptureVolume:
    return capture_volume(h36m_cameras("S9"))


@pytest.mark.parametrize("action", sorted(H36M_ACTIONS))
def test_every_action_stays_in_view_on_the_floor(action, volume_s9) -> None:
    volume, body = volume_s9, subject_body("S9", seed=3)
    motion = simulate_motion(H36M_ACTIONS[action], 150, body, volume, np.random.default_rng(7))
    assert motion.shape == (150, BODY.num_joints, 3)
    assert volume.sees(motion).all()
    assert motion[..., 2].min() == pytest.approx(0.0, abs=1e-9)
    mpi = MPI_INF_3DHP_28.convert_from(BODY, motion)
    assert mpi.shape == (150, 28, 3)
    assert np.linalg.norm(np.diff(motion, axis=0), axis=-1).max() < 0.15  # no joint jumps > 7.5 m/s


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

    monkeypatch.setattr(synthetic, "synthesize_h36m", interrupted)
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
