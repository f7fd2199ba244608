"""MPI-INF-3DHP PCK / AUC: known values, the official joint subset by name, scene weights, DDP exactness."""

from __future__ import annotations

import math

import pytest
import torch

from components.pck import (
    AUC_THRESHOLDS,
    OFFICIAL_PCK_JOINTS,
    PCK_THRESHOLD,
    Auc3D,
    Pck3D,
    auc,
    auc_per_joint,
    pck,
    pck_per_joint,
    scene_weighted,
)
from components.skeleton import H36M_17, MPI_INF_3DHP_17

SKELETON = MPI_INF_3DHP_17
EXCLUDED = ("pelvis", "spine", "head")


def _poses(*shape: int, seed: int = 0) -> torch.Tensor:
    return 0.3 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _offset_joints(target: torch.Tensor, errors_by_name: dict[str, float]) -> torch.Tensor:
    """``target`` with each named joint moved by its error (metres) along a fixed unit direction."""
    direction = torch.tensor([2.0, -1.0, 2.0], dtype=torch.float64) / 3.0
    pred = target.clone()
    for name, error in errors_by_name.items():
        pred[..., SKELETON.index(name), :] += error * direction
    return pred


def _mixed_errors() -> tuple[dict[str, float], float, float]:
    """Hand-made errors of the 14 official joints with their PCK and AUC (percent).

    7 joints at 0 mm are below 30 of the 31 thresholds (not 0: the comparison is strict), 4 at 149 mm only
    below 150 mm, 3 at 160 mm below none. PCK = 11/14; AUC = (7 * 30 + 4 * 1) / (14 * 31).
    """
    errors = dict.fromkeys(OFFICIAL_PCK_JOINTS[:7], 0.0)
    errors |= dict.fromkeys(OFFICIAL_PCK_JOINTS[7:11], 0.149)
    errors |= dict.fromkeys(OFFICIAL_PCK_JOINTS[11:], 0.160)
    return errors, 100 * 11 / 14, 100 * (7 * 30 + 4 * 1) / (14 * 31)


def test_official_constants() -> None:
    assert len(AUC_THRESHOLDS) == 31 and AUC_THRESHOLDS[0] == 0.0 and AUC_THRESHOLDS[-1] == PCK_THRESHOLD == 0.15
    assert len(OFFICIAL_PCK_JOINTS) == 14
    assert set(OFFICIAL_PCK_JOINTS) | set(EXCLUDED) == set(SKELETON.joint_names)


def test_every_joint_102mm_off_gives_pck_100_and_auc_10_of_31() -> None:
    target = _poses(4, 5, 17, 3)
    pred = _offset_joints(target, dict.fromkeys(SKELETON.joint_names, 0.102))
    assert pck(pred, target).item() == pytest.approx(100.0)
    assert auc(pred, target).item() == pytest.approx(100 * 10 / 31)
    assert torch.all(pck_per_joint(pred, target) == 1.0)
    assert torch.allclose(auc_per_joint(pred, target), torch.full((4, 5, 17), 10 / 31, dtype=torch.float64))


def test_hand_made_mix_and_excluded_joints_ignored() -> None:
    errors, expected_pck, expected_auc = _mixed_errors()
    errors |= dict.fromkeys(EXCLUDED, 5.0)  # far off, but not scored
    target = _poses(3, 17, 3, seed=1)
    pred = _offset_joints(target, errors)
    assert pck(pred, target).item() == pytest.approx(expected_pck)
    assert auc(pred, target).item() == pytest.approx(expected_auc)
    # All 17 joints: the three far-off joints now count as misses.
    assert pck(pred, target, joints=SKELETON.joint_names).item() == pytest.approx(100 * 11 / 17)


def test_threshold_is_strict() -> None:
    target = torch.zeros(1, 17, 3, dtype=torch.float64)
    pred = target.clone()
    pred[..., 0] = 0.15
    assert pck_per_joint(pred, target).sum() == 0
    assert pck_per_joint(pred, target, threshold=0.1500001).sum() == 17


def test_joint_subset_by_name_in_any_layout() -> None:
    errors, expected_pck, expected_auc = _mixed_errors()
    target = _poses(2, 6, 17, 3, seed=2)
    pred = _offset_joints(target, errors)
    pred_h36m, target_h36m = H36M_17.convert_from(SKELETON, pred), H36M_17.convert_from(SKELETON, target)
    assert pck(pred_h36m, target_h36m, skeleton=H36M_17).item() == pytest.approx(expected_pck)
    assert auc(pred_h36m, target_h36m, skeleton=H36M_17).item() == pytest.approx(expected_auc)
    # One joint by name: right_ankle has 160 mm error, left_shoulder 0 mm.
    assert pck(pred, target, joints=("right_ankle",)).item() == 0.0
    assert pck(pred, target, joints=("left_shoulder",)).item() == 100.0
    metric = Pck3D(skeleton=H36M_17, joints=("left_shoulder", "right_ankle"))
    metric.update(pred_h36m, target_h36m)
    assert metric.compute().item() == pytest.approx(50.0)


def test_unknown_joint_and_wrong_layout_raise() -> None:
    with pytest.raises(KeyError, match="nose"):
        Pck3D(joints=("nose",))
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        pck(_poses(2, 16, 3), _poses(2, 16, 3))
    with pytest.raises(ValueError, match="same shape"):
        Auc3D().update(_poses(2, 17, 3), _poses(3, 17, 3))


def test_metrics_per_group_and_reductions() -> None:
    errors, expected_pck, expected_auc = _mixed_errors()
    target = _poses(5, 4, 17, 3, seed=3)
    pred = target.clone()
    pred[:2] = _offset_joints(target[:2], errors)  # sequences 0-1: the mix
    pred[2:] = _offset_joints(target[2:], dict.fromkeys(SKELETON.joint_names, 0.102))  # 2-4: all 102 mm
    group = torch.tensor([0, 0, 2, 2, 2])  # group 1 stays empty
    frames_pck, frames_auc = Pck3D(num_groups=3), Auc3D(num_groups=3)
    groups_pck = Pck3D(num_groups=3, reduction="groups")
    for metric in (frames_pck, frames_auc, groups_pck):
        metric.update(pred[:3], target[:3], group[:3])
        metric.update(pred[3:], target[3:], group[3:])
    pck_means, auc_means = frames_pck.group_means(), frames_auc.group_means()
    assert pck_means[0].item() == pytest.approx(expected_pck) and math.isnan(pck_means[1].item())
    assert pck_means[2].item() == pytest.approx(100.0)
    assert auc_means[0].item() == pytest.approx(expected_auc) and auc_means[2].item() == pytest.approx(1000 / 31)
    # "frames" pools 2 mix sequences with 3 uniform ones; "groups" averages the two non-empty groups.
    assert frames_pck.compute().item() == pytest.approx((2 * expected_pck + 3 * 100.0) / 5)
    assert frames_auc.compute().item() == pytest.approx((2 * expected_auc + 3 * 1000 / 31) / 5)
    assert frames_auc.compute().item() == pytest.approx(auc(pred, target).item())
    assert groups_pck.compute().item() == pytest.approx((expected_pck + 100.0) / 2)
    assert frames_pck.compute().dtype == torch.float64


def test_group_per_frame_and_bad_groups() -> None:
    target = _poses(2, 3, 17, 3, seed=4)
    pred = _offset_joints(target, dict.fromkeys(SKELETON.joint_names, 0.2))
    pred[:, 0] = target[:, 0]  # first frame of each sequence exact
    metric = Pck3D(num_groups=2)
    metric.update(pred, target, torch.tensor([[0, 1, 1], [0, 1, 1]]))
    assert metric.group_means().tolist() == pytest.approx([100.0, 0.0])
    with pytest.raises(ValueError, match="prefix"):
        metric.update(pred, target, torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        metric.update(pred, target, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="integer"):
        metric.update(pred, target, torch.tensor([0.0, 1.0]))
    with pytest.warns(UserWarning, match="before the"):
        assert math.isnan(Auc3D().compute().item())


def test_scene_weighted_matches_hand_computed_numbers() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    expected = {"GS": 1683 / 1143, "noGS": 3727 / 1058, "Outdoor": 4092 / 728}
    for given in (values, torch.tensor(values, dtype=torch.float64), {f"TS{i + 1}": v for i, v in enumerate(values)}):
        scores = scene_weighted(given)
        assert list(scores) == ["GS", "noGS", "Outdoor"]
        assert scores == pytest.approx(expected)
    with pytest.raises(KeyError, match="TS6"):
        scene_weighted({f"TS{i + 1}": 1.0 for i in range(5)})
    with pytest.raises(ValueError, match="6 values"):
        scene_weighted(values[:5])


def test_pck_and_auc_are_part_of_the_metrics_api():
    import components.metrics as metrics
    import components.pck as official

    assert metrics.Pck3D is official.Pck3D and metrics.auc is official.auc
    with pytest.raises(AttributeError, match="has no attribute 'pckh'"):
        metrics.pckh  # noqa: B018
