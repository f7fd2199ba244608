"""Validation never shares frames with the test split by default, for both datasets."""

from pathlib import Path

import numpy as np
import pytest

from datamodules.base import hold_out_tails
from datamodules.human36m import Human36mDataModule
from datamodules.mpi_inf_3dhp import Mpi3dhpDataModule
from datamodules.sequence import PoseSequence
from tests.datamodules.test_human36m import ACTIONS, write_dataset
from tests.datamodules.test_mpi_inf_3dhp import FRAMES as FRAMES_3DHP
from tests.datamodules.test_mpi_inf_3dhp import _write_raw


def _recordings(sequences: list[PoseSequence]) -> set[tuple[str, str]]:
    return {(s.subject, s.action) for s in sequences}


def _sequence(frames: int, labeled: bool = True) -> PoseSequence:
    keypoints = np.arange(frames * 2 * 2, dtype=np.float32).reshape(frames, 2, 2)
    poses = np.arange(frames * 2 * 3, dtype=np.float32).reshape(frames, 2, 3) if labeled else None
    trajectory = np.zeros((frames, 1, 3), np.float32) if labeled else None
    return PoseSequence("S1", "Walking", "0", keypoints, poses, trajectory)


def test_hold_out_tails_keeps_every_frame_once():
    sequences = [_sequence(40), _sequence(3), _sequence(20, labeled=False)]
    heads, tails = hold_out_tails(sequences, 0.1)
    assert [len(s) for s in heads] == [36, 3, 20]  # 3 * 0.1 rounds to 0 frames held out; unlabeled stays whole
    assert [len(s) for s in tails] == [4]
    whole = np.concatenate([heads[0].poses_3d, tails[0].poses_3d])
    assert np.array_equal(whole, sequences[0].poses_3d)
    assert np.shares_memory(heads[0].keypoints_2d, sequences[0].keypoints_2d)  # heads are views
    assert not np.shares_memory(tails[0].keypoints_2d, sequences[0].keypoints_2d)  # tails are copies


def test_human36m_default_validation_is_the_tail_of_every_training_recording(tmp_path: Path):
    data = Human36mDataModule(data_dir=str(write_dataset(tmp_path)), train_subjects=["S1"], test_subjects=["S9"])
    data.setup("fit")
    train, val, test = (data.sequences[split] for split in ("train", "val", "test"))
    assert _recordings(val) == _recordings(train) == {("S1", action) for action in ACTIONS["S1"]}
    assert not _recordings(val) & _recordings(test) and data.val_on_test is False
    assert {len(s) for s in train} == {36} and {len(s) for s in val} == {4}  # 10% of 40 frames, every camera
    full = Human36mDataModule(
        data_dir=str(tmp_path), train_subjects=["S1"], test_subjects=["S9"], val_fraction=0, flip_augment=False
    )
    full.setup("fit")
    assert "val" not in full.sequences
    for head, tail, whole in zip(train, val, full.sequences["train"], strict=True):
        assert np.array_equal(np.concatenate([head.keypoints_2d, tail.keypoints_2d]), whole.keypoints_2d)
        assert np.array_equal(np.concatenate([head.poses_3d, tail.poses_3d]), whole.poses_3d)
    with pytest.raises(ValueError, match="split 'val' is empty: val_fraction is 0"):
        full.require_split("val")


def test_human36m_validation_on_the_test_subjects_needs_an_explicit_opt_in(tmp_path: Path):
    folder = str(write_dataset(tmp_path))
    refused = Human36mDataModule(data_dir=folder, train_subjects=["S1"], val_subjects=["S9"], test_subjects=["S9"])
    with pytest.raises(ValueError, match=r"val and test splits share 2 recordings \(S9/Greeting 2, S9/Walking\)"):
        refused.setup("fit")
    accepted = Human36mDataModule(
        data_dir=folder, train_subjects=["S1"], val_subjects=["S9"], test_subjects=["S9"], allow_val_on_test=True
    )
    accepted.setup("fit")
    assert accepted.val_on_test is True


def test_mpi_inf_3dhp_default_validation_is_the_tail_of_every_training_recording(tmp_path: Path):
    _write_raw(tmp_path)
    data = Mpi3dhpDataModule(data_dir=str(tmp_path), train_subjects=["S1"], test_sequences=["TS1", "TS5"])
    data.setup("fit")
    train, val, test = (data.sequences[split] for split in ("train", "val", "test"))
    assert _recordings(val) == _recordings(train) == {("S1", "Seq1"), ("S1", "Seq2")}
    assert _recordings(test) == {("TS1", "test"), ("TS5", "test")} and data.val_on_test is False
    # Seq1: 12 frames -> 1 held out; Seq2: 20 frames -> 2 held out, on each of the 8 training cameras
    held = {action: {len(s) for s in val if s.action == action} for action in FRAMES_3DHP}
    assert held == {"Seq1": {1}, "Seq2": {2}} and len(val) == 16
    assert sum(len(s) for s in train + val) == 8 * sum(FRAMES_3DHP.values())
    refused = Mpi3dhpDataModule(
        data_dir=str(tmp_path), train_subjects=["S1"], val_sequences=["TS1"], test_sequences=["TS1", "TS5"]
    )
    with pytest.raises(ValueError, match=r"share 1 recordings \(TS1/test\)"):
        refused.setup("fit")
