from pathlib import Path

import numpy as np
import pytest
import torch

from components.camera import h36m_cameras, normalize_screen_coordinates, project_to_2d, world_to_camera
from components.skeleton import COCO_17, H36M_17, H36M_32
from datamodules.human36m import (
    Human36mDataModule,
    RecordingFilter,
    build_sequences,
    load_keypoints_2d,
    load_positions_3d,
    subset_window,
)

ACTIONS = {"S1": ["Walking", "Walking 1", "Sitting", "SittingDown"], "S9": ["Walking", "Greeting 2"]}
FRAMES = 40
GT_METADATA = {"num_joints": 17, "keypoints_symmetry": [list(H36M_17.left), list(H36M_17.right)]}


def standing_world_poses(frames: int, seed: int) -> np.ndarray:
    """(frames, 32, 3) world poses in metres near the capture-volume centre, 1-1.7 m above the floor."""
    rng = np.random.default_rng(seed)
    poses = rng.uniform(-0.3, 0.3, size=(frames, 32, 3))
    poses[..., 2] += 1.0
    return poses.astype(np.float32)


def project_views(world: np.ndarray, subject: str, extra_frames: int = 0) -> list[np.ndarray]:
    views = []
    for camera in h36m_cameras(subject):
        points = world_to_camera(
            torch.from_numpy(world).double(),
            torch.tensor(camera.orientation),
            torch.tensor(camera.translation),
        )
        pixels = project_to_2d(points, torch.from_numpy(camera.pixel_intrinsics())).numpy().astype(np.float32)
        pixels = H36M_17.convert_from(H36M_32, pixels)
        views.append(np.concatenate([pixels, np.repeat(pixels[-1:], extra_frames, axis=0)]))
    return views


def write_dataset(folder: Path, source: str = "gt", unlabeled=("S2",), **overrides) -> Path:
    """Small files in the exact VideoPose3D layout: 3D for S1 and S9, 2D (3 extra frames) for those and S2."""
    folder.mkdir(parents=True, exist_ok=True)
    positions_3d = {s: {a: standing_world_poses(FRAMES, i * 10 + j) for j, a in enumerate(acts)}
                    for i, (s, acts) in enumerate(ACTIONS.items())}  # fmt: skip
    positions_2d = {
        s: {a: project_views(w, s, extra_frames=3) for a, w in acts.items()} for s, acts in positions_3d.items()
    }
    for subject in unlabeled:
        positions_2d[subject] = {"Walking": [np.zeros((25, 17, 2), np.float32) + 500] * 4}
    contents_3d = overrides.get("contents_3d", {"positions_3d": positions_3d})
    contents_2d = overrides.get("contents_2d", {"positions_2d": positions_2d, "metadata": GT_METADATA})
    np.savez_compressed(folder / "data_3d_h36m.npz", **contents_3d)
    np.savez_compressed(folder / f"data_2d_h36m_{source}.npz", **contents_2d)
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("h36m"))


def test_readers_round_trip(dataset):
    positions = load_positions_3d(dataset / "data_3d_h36m.npz")
    assert sorted(positions) == ["S1", "S9"] and sorted(positions["S1"]) == sorted(ACTIONS["S1"])
    assert positions["S1"]["Walking"].dtype == np.float32
    assert np.array_equal(positions["S9"]["Greeting 2"], standing_world_poses(FRAMES, 11))
    keypoints = load_keypoints_2d(dataset / "data_2d_h36m_gt.npz")
    assert keypoints.skeleton is H36M_17
    assert len(keypoints.positions["S1"]["Walking"]) == 4 and keypoints.positions["S1"]["Walking"][0].shape == (
        43,
        17,
        2,
    )


def test_sequences_are_camera_space_root_relative_and_normalised(dataset):
    keypoints = load_keypoints_2d(dataset / "data_2d_h36m_gt.npz")
    positions = load_positions_3d(dataset / "data_3d_h36m.npz")
    sequences = build_sequences(keypoints, positions, ["S9"], RecordingFilter())
    assert len(sequences) == 2 * 4
    walking_cam2 = next(s for s in sequences if s.action == "Walking" and s.camera == "58860488")
    camera = h36m_cameras("S9")[2]
    world = H36M_17.convert_from(H36M_32, positions["S9"]["Walking"])
    expected = world_to_camera(
        torch.from_numpy(world).double(), torch.tensor(camera.orientation), torch.tensor(camera.translation)
    ).numpy()
    assert len(walking_cam2) == FRAMES  # 2D was 3 frames longer: cut to the mocap
    assert np.allclose(walking_cam2.trajectory[:, 0], expected[:, 0], atol=1e-5)
    assert np.allclose(walking_cam2.poses_3d, expected - expected[:, :1], atol=1e-5)
    assert np.all(walking_cam2.poses_3d[:, 0] == 0)
    pixels = keypoints.positions["S9"]["Walking"][2][:FRAMES]
    assert np.allclose(walking_cam2.keypoints_2d, normalize_screen_coordinates(pixels, 1000, 1000))
    assert np.allclose(walking_cam2.intrinsics, camera.intrinsics())
    # The 2D is the projection of the 3D target: re-projecting target + trajectory gives the input back.
    reprojected = project_to_2d(
        torch.from_numpy(walking_cam2.poses_3d + walking_cam2.trajectory),
        torch.from_numpy(walking_cam2.intrinsics),
    )
    assert torch.allclose(reprojected, torch.from_numpy(walking_cam2.keypoints_2d), atol=1e-5)


def test_filters_actions_cameras_subset_and_downsampling(dataset):
    keypoints = load_keypoints_2d(dataset / "data_2d_h36m_gt.npz")
    positions = load_positions_3d(dataset / "data_3d_h36m.npz")
    sitting = build_sequences(keypoints, positions, ["S1"], RecordingFilter(actions=["Sitting"], cameras=[1, 3]))
    assert sorted({s.action for s in sitting}) == ["Sitting", "SittingDown"]  # prefix match, as published
    assert sorted({s.camera for s in sitting}) == ["55011271", "60457274"]
    reduced = build_sequences(
        keypoints, positions, ["S1"], RecordingFilter(actions=["Walking 1"], subset=0.5, downsample=2)
    )
    block = subset_window("S1", "Walking 1", FRAMES, 0.5)
    assert block.stop - block.start == 20 and all(len(s) == 10 for s in reduced)
    full = build_sequences(keypoints, positions, ["S1"], RecordingFilter(actions=["Walking 1"]))
    for cut, whole in zip(reduced, full, strict=True):  # every camera gets the same block
        assert np.array_equal(cut.keypoints_2d, whole.keypoints_2d[block.start : block.stop : 2])
        assert cut.fps == 25.0
    assert subset_window("S1", "Walking 1", FRAMES, 0.5) == block  # deterministic


def test_datamodule_splits_and_unlabeled_subjects(dataset):
    data = Human36mDataModule(
        data_dir=str(dataset), train_subjects=["S1"], val_subjects=["S9"], test_subjects=["S9"], allow_val_on_test=True,
        unlabeled_subjects=["S2"], batch_size=32, receptive_field=9,
    )  # fmt: skip
    data.setup("fit")
    assert data.action_groups == ("Greeting", "Sitting", "SittingDown", "Walking")
    assert data.subjects == ("S1", "S2", "S9")
    assert data.stores["unlabeled"].labeled is False and len(data.sequences["unlabeled"]) == 4
    loader = data.train_dataloader(("labeled", "unlabeled"))
    pair, _, _ = next(iter(loader))
    batch, unlabeled = pair["labeled"], pair["unlabeled"]
    assert batch.keypoints_2d.shape == (32, 9, 17, 2) and batch.poses_3d.shape == (32, 1, 17, 3)
    assert 0.3 < batch.flipped.float().mean() < 0.7
    assert unlabeled.poses_3d is None and unlabeled.intrinsics.shape == (32, 9)
    # 4 S1 recordings x 4 cameras x 40 frames x 2 (flip) = 1280 windows = 40 batches; the unlabeled stream
    # (4 S2 sequences of 25 frames, 800 windows with flips) is paced to the same number of batches.
    assert len(loader) == 40 and sum(1 for _ in loader) == 40
    val = list(data.val_dataloader())
    assert len(val) == 8 and sum(b.poses_3d.shape[1] for b in val) == 8 * FRAMES
    names = [data.action_groups[int(b.action)] for b in val]
    assert sorted(set(names)) == ["Greeting", "Walking"]


def test_identical_val_and_test_share_one_store_and_the_sequences_are_its_views(dataset):
    data = Human36mDataModule(
        data_dir=str(dataset), train_subjects=["S1"], val_subjects=["S9"], test_subjects=["S9"], allow_val_on_test=True
    )
    data.setup("fit")
    assert data.stores["val"] is data.stores["test"] and data.stores["train"] is not data.stores["val"]
    for split in ("train", "val", "test"):
        store = data.stores[split]
        assert all(np.shares_memory(s.keypoints_2d, store.keypoints.numpy()) for s in data.sequences[split])
        assert all(np.shares_memory(s.poses_3d, store.poses_3d.numpy()) for s in data.sequences[split])
    other = Human36mDataModule(data_dir=str(dataset), train_subjects=["S1"], val_subjects=["S9"], test_subjects=["S1"])
    other.setup("fit")
    assert other.stores["val"] is not other.stores["test"]


def test_unlabeled_rest_of_a_partly_labeled_subject(dataset):
    data = Human36mDataModule(
        data_dir=str(dataset), train_subjects=["S1"], val_subjects=["S9"], test_subjects=["S9"], allow_val_on_test=True,
        unlabeled_subjects=["S1", "S2"], subset=0.25, subset_seed=3, actions=["Walking 1"],
    )  # fmt: skip
    data.setup("fit")
    block = subset_window("S1", "Walking 1", FRAMES, 0.25, seed=3)
    labeled = data.sequences["train"]
    assert {len(s) for s in labeled} == {10} and len(labeled) == 4
    rest = [s for s in data.sequences["unlabeled"] if s.subject == "S1"]
    assert sorted({len(s) for s in rest}) == sorted({block.start, FRAMES - block.stop} - {0})
    assert sum(len(s) for s in rest) == 4 * (FRAMES - 10)  # every S1 frame is labeled or unlabeled, once
    assert subset_window("S1", "Walking 1", FRAMES, 0.25, seed=4) != block
    full = Human36mDataModule(
        data_dir=str(dataset), train_subjects=["S1"], val_subjects=[], test_subjects=[], unlabeled_subjects=["S1"]
    )
    with pytest.raises(ValueError, match=r"unlabeled_subjects \['S1'\] are also fully labeled"):
        full.setup("fit")


def test_missing_file_and_key_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_3d_h36m.npz: file not found"):
        load_positions_3d(tmp_path / "data_3d_h36m.npz")
    folder = write_dataset(tmp_path / "a", contents_3d={"poses": np.zeros(3)})
    with pytest.raises(KeyError, match=r"data_3d_h36m.npz: missing key 'positions_3d' \(found \['poses'\]\)"):
        load_positions_3d(folder / "data_3d_h36m.npz")
    folder = write_dataset(tmp_path / "b", contents_2d={"positions_2d": {}})
    with pytest.raises(KeyError, match="data_2d_h36m_gt.npz: missing key 'metadata'"):
        load_keypoints_2d(folder / "data_2d_h36m_gt.npz")


def test_wrong_joint_count_errors(tmp_path):
    folder = write_dataset(tmp_path / "a", contents_3d={"positions_3d": {"S1": {"Walking": np.zeros((5, 17, 3))}}})
    with pytest.raises(
        ValueError,
        match=r"positions_3d\['S1'\]\['Walking'\] has shape \(5, 17, 3\), expected \(frames, 32, 3\)",
    ):
        load_positions_3d(folder / "data_3d_h36m.npz")
    bad_2d = {"positions_2d": {"S1": {"Walking": [np.zeros((5, 16, 2))] * 4}}, "metadata": GT_METADATA}
    folder = write_dataset(tmp_path / "b", contents_2d=bad_2d)
    with pytest.raises(ValueError, match=r"\['Walking'\]\[0\] has shape \(5, 16, 2\), expected \(frames, 17, 2 or 3\)"):
        load_keypoints_2d(folder / "data_2d_h36m_gt.npz")
    wrong_meta = {"positions_2d": {}, "metadata": {"layout_name": "coco", "num_joints": 16}}
    folder = write_dataset(tmp_path / "c", contents_2d=wrong_meta)
    with pytest.raises(ValueError, match="num_joints=16 but layout 'coco' has 17 joints"):
        load_keypoints_2d(folder / "data_2d_h36m_gt.npz")


def test_camera_count_mismatch_error(tmp_path):
    three_views = {"positions_2d": {"S1": {"Walking": [np.zeros((5, 17, 2))] * 3}}, "metadata": GT_METADATA}
    folder = write_dataset(tmp_path, contents_2d=three_views)
    with pytest.raises(ValueError, match=r"positions_2d\['S1'\]\['Walking'\] has 3 cameras, expected 4"):
        load_keypoints_2d(folder / "data_2d_h36m_gt.npz")


def test_layout_and_subject_mismatch_errors(tmp_path, dataset):
    coco = {"positions_2d": {"S1": {}}, "metadata": {"layout_name": "coco", "num_joints": 17,
            "keypoints_symmetry": [list(COCO_17.left), list(COCO_17.right)]}}  # fmt: skip
    folder = write_dataset(tmp_path / "coco", source="detectron_pt_coco", contents_2d=coco)
    data = Human36mDataModule(data_dir=str(folder), source_2d="detectron_pt_coco")
    with pytest.raises(ValueError, match="layout 'coco', but input_layout is 'h36m'"):
        data.setup("fit")
    data = Human36mDataModule(data_dir=str(dataset), train_subjects=["S5"])
    with pytest.raises(KeyError, match=r"2D source 'gt' has no subject 'S5' \(has \['S1', 'S2', 'S9'\]\)"):
        data.setup("fit")
    short = {"positions_2d": {"S1": {a: [np.zeros((FRAMES - 1, 17, 2), np.float32)] * 4 for a in ACTIONS["S1"]}},
             "metadata": GT_METADATA}  # fmt: skip
    folder = write_dataset(tmp_path / "short", contents_2d=short)
    data = Human36mDataModule(data_dir=str(folder), train_subjects=["S1"], val_subjects=[], test_subjects=[])
    with pytest.raises(ValueError, match="2D has 39 frames, fewer than the 3D's 40"):
        data.setup("fit")
