"""Evaluation protocols: the Human3.6M action-wise tables and the MPI-INF-3DHP PCK/AUC tables."""

from __future__ import annotations

import math

import pytest
import torch

from components.batch import PoseBatch
from components.evaluation import ActionwiseProtocol, PckProtocol
from components.pck import SEQUENCE_FRAME_WEIGHTS
from components.skeleton import H36M_17

SEQUENCES = tuple(SEQUENCE_FRAME_WEIGHTS)  # TS1..TS6
ACTIVITIES = ("walk", "sit", "floor")


def _batch(poses: torch.Tensor, subject: list[int], valid=None, activity=None) -> PoseBatch:
    count = len(poses)
    zeros = torch.zeros(count, dtype=torch.long)
    return PoseBatch(
        keypoints_2d=torch.zeros(count, poses.shape[1], 17, 2),
        sequence=zeros,
        start=zeros,
        action=zeros,
        subject=torch.tensor(subject),
        flipped=torch.zeros(count, dtype=torch.bool),
        poses_3d=poses,
        trajectory=torch.zeros(count, poses.shape[1], 1, 3),
        valid=valid,
        activity=activity,
    )


def _poses(count: int, frames: int, seed: int = 0) -> torch.Tensor:
    poses = torch.randn(count, frames, 17, 3, generator=torch.Generator().manual_seed(seed)) * 0.3
    return poses - poses[:, :, :1]


def _offset(poses: torch.Tensor, metres: float) -> torch.Tensor:
    """Move every joint by ``metres`` along x (the root too: errors are per joint)."""
    return poses + torch.tensor([metres, 0.0, 0.0])


def test_pck_protocol_known_values_and_valid_frames_only() -> None:
    target = _poses(2, 5)
    pred = _offset(target, 0.102)  # every joint 102 mm off: PCK 100 %, AUC 10/31 (105..150 mm)
    valid = torch.ones(2, 5, dtype=torch.bool)
    valid[1, 3:] = False
    pred[1, 3:] += 5.0  # invalid frames with huge errors must not count
    activity = torch.tensor([[0, 0, 1, 1, -1], [2, 2, 2, 2, 2]])
    protocol = PckProtocol(SEQUENCES, ACTIVITIES, H36M_17)
    protocol.update(_batch(target, [0, 4], valid, activity), pred)
    summary = protocol.summary()
    assert summary["pck"] == pytest.approx(100.0)
    assert summary["auc"] == pytest.approx(100 * 10 / 31)
    assert summary["p1_mm"] == pytest.approx(102.0, abs=1e-3)
    assert summary["p2_mm"] < 102.0  # Procrustes removes the shift
    sequences, activities = protocol.tables("test")
    assert [row[0] for row in sequences.rows] == ["TS1", "TS5", "all"]  # no scenes without all six sequences
    assert [row[0] for row in activities.rows] == ["walk", "sit", "floor", "all"]
    assert protocol.by_sequence["PCK"].count.tolist()[:5] == [5 * 14, 0, 0, 0, 3 * 14]  # valid frames x 14 joints
    assert protocol.by_activity["MPJPE"].count.tolist() == [2, 2, 3]  # activity -1 only in the sequence table


def test_pck_protocol_scene_rows_are_frame_weighted() -> None:
    target = _poses(6, 2)
    errors = torch.tensor([0.01, 0.2, 0.03, 0.04, 0.16, 0.06])  # MPJPE per sequence, metres
    pred = target + torch.stack([errors, torch.zeros(6), torch.zeros(6)], dim=-1)[:, None, None]
    protocol = PckProtocol(SEQUENCES, ACTIVITIES, H36M_17)
    protocol.update(_batch(target, list(range(6))), pred)
    (table,) = protocol.tables("val")
    rows = dict(table.rows)
    column = table.columns.index("MPJPE")
    assert rows["GS"][column] == pytest.approx((10 * 603 + 200 * 540) / 1143, rel=1e-6)
    assert rows["noGS"][column] == pytest.approx((30 * 505 + 40 * 553) / 1058, rel=1e-6)
    assert rows["Outdoor"][column] == pytest.approx((160 * 276 + 60 * 452) / 728, rel=1e-6)
    pck = table.columns.index("PCK")
    assert rows["GS"][pck] == pytest.approx(603 * 100 / 1143)  # TS2 (200 mm) fails every joint
    assert rows["all"][column] == pytest.approx(float(errors.mean()) * 1000, rel=1e-6)
    assert list(rows)[:6] == list(SEQUENCES)


def test_pck_protocol_reset_and_no_activity_labels() -> None:
    target = _poses(1, 3)
    protocol = PckProtocol(SEQUENCES, ACTIVITIES, H36M_17)
    protocol.update(_batch(target, [2]), target)
    assert protocol.summary() == {
        "pck": 100.0,
        "auc": pytest.approx(100 * 30 / 31),
        "p1_mm": 0.0,
        "p2_mm": pytest.approx(0.0, abs=1e-9),
    }
    assert len(protocol.tables("test")) == 1  # no activity labels, no activity table
    protocol.reset()
    assert float(protocol.by_sequence["PCK"].count.sum()) == 0


def test_actionwise_protocol_summary_and_tables() -> None:
    target = _poses(2, 4)
    pred = _offset(target, 0.05)
    batch = _batch(target, [0, 1])
    batch = PoseBatch(**{**batch.__dict__, "action": torch.tensor([0, 1])})
    protocol = ActionwiseProtocol(("Walking", "Sitting"), ("S9", "S11"), by_subject=True, trajectory=True)
    protocol.update(batch, pred, trajectory=batch.trajectory + 0.01)
    summary = protocol.summary()
    assert summary["p1_mm"] == pytest.approx(50.0, abs=1e-4)
    assert summary["traj_mm"] == pytest.approx(10 * math.sqrt(3), abs=1e-4)  # 10 mm on each axis
    assert summary["mpjve_mm"] == pytest.approx(0.0, abs=1e-4)
    names = [t.name for t in protocol.tables("test")]
    assert names == ["test_protocols", "test_protocols_S9", "test_protocols_S11"]
    assert all(math.isfinite(v) for v in protocol.tables("test")[0].rows[-1][1])
