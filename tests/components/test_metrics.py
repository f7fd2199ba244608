"""Known-value tests for components.metrics: functional protocols, grouped Metric classes, action groups."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from components.geometry import random_rotation_matrices
from components.metrics import (
    MPJPE,
    MPJVE,
    NMPJPE,
    PMPJPE,
    action_group,
    group_actions,
    mpjpe,
    mpjpe_per_frame,
    mpjve,
    mpjve_per_frame,
    n_mpjpe,
    n_mpjpe_per_frame,
    p_mpjpe,
    p_mpjpe_per_frame,
)

DDP_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ddp_metrics.py"
FUNCTIONS = (mpjpe, p_mpjpe, n_mpjpe, mpjve)
METRIC_CLASSES = (MPJPE, PMPJPE, NMPJPE, MPJVE)


def _poses(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ------------------------------------------------------- NumPy references, written from the definitions


def _np_mpjpe_frame(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(pred - target, axis=-1)))


def _np_p_mpjpe_frame(pred: np.ndarray, target: np.ndarray, allow_reflection: bool) -> float:
    """Umeyama/Kabsch on column vectors: target_j ~ s R pred_j + t, det R = +1 unless reflections allowed."""
    p0, t0 = pred - pred.mean(axis=0), target - target.mean(axis=0)
    u, sigma, vt = np.linalg.svd(p0.T @ t0)
    d = np.ones(3)
    if not allow_reflection and np.linalg.det(vt.T @ u.T) < 0:
        d[-1] = -1.0
    rotation = vt.T @ np.diag(d) @ u.T
    scale = np.sum(sigma * d) / np.sum(p0**2)
    aligned = scale * p0 @ rotation.T + target.mean(axis=0)
    return _np_mpjpe_frame(aligned, target)


def _np_n_mpjpe_frame(pred: np.ndarray, target: np.ndarray) -> float:
    scale = np.sum(target * pred) / np.sum(pred * pred)
    return _np_mpjpe_frame(scale * pred, target)


def _np_per_frame(frame_fn, pred: torch.Tensor, target: torch.Tensor, **kwargs) -> np.ndarray:
    """Loop ``frame_fn`` over every pose of ``(..., joints, 3)`` arrays -> ``(...,)``."""
    p, t = pred.numpy(), target.numpy()
    flat = [
        frame_fn(a, b, **kwargs)
        for a, b in zip(p.reshape(-1, *p.shape[-2:]), t.reshape(-1, *t.shape[-2:]), strict=True)
    ]
    return np.array(flat).reshape(p.shape[:-2])


def _np_mpjve(pred: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """``(sequences, frames, joints, 3)`` -> ``(sequences, frames - 1)`` by a loop over sequences."""
    steps = [
        np.mean(np.linalg.norm(np.diff(p, axis=0) - np.diff(t, axis=0), axis=-1), axis=-1)
        for p, t in zip(pred.numpy(), target.numpy(), strict=True)
    ]
    return np.stack(steps)


# ---------------------------------------------------------------- functional metrics


def test_identical_poses_give_exactly_zero() -> None:
    poses = _poses(4, 9, 17, 3, dtype=torch.float32)
    for fn in FUNCTIONS:
        assert fn(poses, poses.clone()).item() == 0.0, fn.__name__
    # Root-relative float64 poses: the Procrustes SVD leaves only float64 rounding.
    centred = _poses(4, 9, 17, 3)
    centred = centred - centred[..., :1, :]
    assert p_mpjpe(centred, centred).item() < 1e-12


def test_constant_offset_gives_mpjpe_of_its_length_and_zero_velocity_error() -> None:
    target = _poses(3, 8, 17, 3)
    pred = target + torch.tensor([0.06, 0.0, -0.08], dtype=torch.float64)  # |offset| = 0.1 m
    assert mpjpe(pred, target).item() == pytest.approx(0.1, abs=1e-12)
    assert mpjve(pred, target).item() < 1e-12


def test_similarity_transform_is_invisible_to_p_mpjpe_only() -> None:
    gen = torch.Generator().manual_seed(1)
    target = _poses(6, 17, 3, seed=1)
    rotation = random_rotation_matrices(6, generator=gen)
    scale = 0.5 + 1.5 * torch.rand(6, 1, 1, generator=gen, dtype=torch.float64)
    shift = torch.randn(6, 1, 3, generator=gen, dtype=torch.float64)
    pred = scale * target @ rotation.transpose(-1, -2) + shift

    assert mpjpe(pred, target).item() > 0.01
    assert p_mpjpe(pred, target).item() < 1e-6
    assert p_mpjpe(pred, target, allow_reflection=True).item() < 1e-6
    assert p_mpjpe_per_frame(pred, target).max().item() < 1e-6


def test_n_mpjpe_removes_pure_scaling() -> None:
    target = _poses(5, 17, 3, seed=2)
    scale = torch.linspace(0.5, 2.0, 5, dtype=torch.float64)[:, None, None]
    pred = target / scale
    assert mpjpe(pred, target).item() > 0.01
    assert n_mpjpe(pred, target).item() < 1e-12


def test_mirrored_pose_needs_allow_reflection() -> None:
    target = _poses(5, 17, 3, seed=3)
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert p_mpjpe(mirrored, target).item() > 0.01
    assert p_mpjpe(mirrored, target, allow_reflection=True).item() < 1e-6


@pytest.mark.parametrize("allow_reflection", [False, True])
def test_p_mpjpe_matches_numpy_reference(allow_reflection: bool) -> None:
    target = _poses(3, 7, 17, 3, seed=4)
    pred = target + 0.3 * _poses(3, 7, 17, 3, seed=5)
    pred[0, 0] = pred[0, 0] * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)  # one mirrored frame
    expected = _np_per_frame(_np_p_mpjpe_frame, pred, target, allow_reflection=allow_reflection)
    got = p_mpjpe_per_frame(pred, target, allow_reflection=allow_reflection)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)
    assert p_mpjpe(pred, target, allow_reflection).item() == pytest.approx(expected.mean(), abs=1e-6)


def test_mpjpe_n_mpjpe_mpjve_match_numpy_reference() -> None:
    target = _poses(3, 7, 17, 3, seed=6)
    pred = 1.3 * target + 0.2 * _poses(3, 7, 17, 3, seed=7)
    for torch_fn, frame_fn in ((mpjpe_per_frame, _np_mpjpe_frame), (n_mpjpe_per_frame, _np_n_mpjpe_frame)):
        np.testing.assert_allclose(torch_fn(pred, target).numpy(), _np_per_frame(frame_fn, pred, target), atol=1e-6)
    np.testing.assert_allclose(mpjve_per_frame(pred, target).numpy(), _np_mpjve(pred, target), atol=1e-6)
    assert mpjpe(pred, target).item() == pytest.approx(np.linalg.norm((pred - target).numpy(), axis=-1).mean())
    assert n_mpjpe(pred, target).item() == pytest.approx(_np_per_frame(_np_n_mpjpe_frame, pred, target).mean())
    assert mpjve(pred, target).item() == pytest.approx(_np_mpjve(pred, target).mean())


def test_per_frame_shapes() -> None:
    poses = _poses(2, 5, 17, 3)
    for fn in (mpjpe_per_frame, p_mpjpe_per_frame, n_mpjpe_per_frame):
        assert fn(poses, poses).shape == (2, 5)
        assert fn(poses[0, 0], poses[0, 0]).shape == ()
    assert mpjve_per_frame(poses, poses).shape == (2, 4)
    assert mpjve_per_frame(poses[0], poses[0]).shape == (4,)


def test_n_mpjpe_of_zero_prediction_is_finite() -> None:
    target = _poses(4, 17, 3, seed=8)
    expected = target.norm(dim=-1).mean()
    assert n_mpjpe(torch.zeros_like(target), target).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
def test_shape_errors_name_the_shapes(fn) -> None:
    poses = _poses(2, 5, 17, 3)
    with pytest.raises(ValueError, match=r"\(2, 5, 17, 3\).*\(2, 5, 16, 3\)"):
        fn(poses, poses[..., :16, :])
    with pytest.raises(ValueError, match=r"\(2, 5, 17, 2\).*joints, 3\)"):
        fn(poses[..., :2], poses[..., :2])


def test_mpjve_needs_a_frames_axis_with_two_frames() -> None:
    poses = _poses(2, 5, 17, 3)
    with pytest.raises(ValueError, match=r"\(17, 3\).*frames >= 2"):
        mpjve(poses[0, 0], poses[0, 0])
    with pytest.raises(ValueError, match=r"\(2, 1, 17, 3\).*at least 2 frames"):
        mpjve(poses[:, :1], poses[:, :1])


# ---------------------------------------------------------------- Metric classes


def _hand_made_errors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """4 poses of 2 joints: group 0 has per-frame errors 1, 1, 1 and group 1 has 3."""
    target = torch.zeros(4, 2, 3, dtype=torch.float64)
    pred = target.clone()
    pred[:3, :, 0] = 1.0
    pred[3, :, 1] = 3.0
    return pred, target, torch.tensor([0, 0, 0, 1])


def test_grouped_compute_is_action_wise_mean() -> None:
    pred, target, group = _hand_made_errors()
    actions = MPJPE(num_groups=3)  # group 2 stays empty and is left out of the mean
    frames = MPJPE(num_groups=3, reduction="frames")
    for metric in (actions, frames):
        metric.update(pred, target, group)
    assert actions.compute().item() == 2.0
    assert frames.compute().item() == 1.5
    torch.testing.assert_close(
        actions.group_means(), torch.tensor([1.0, 3.0, math.nan], dtype=torch.float64), equal_nan=True
    )
    assert actions.compute().dtype == torch.float64


def test_one_group_equals_functional_mean() -> None:
    target = _poses(4, 6, 17, 3, seed=9)
    pred = target + 0.1 * _poses(4, 6, 17, 3, seed=10)
    for metric, fn in zip((MPJPE(), PMPJPE(), NMPJPE(), MPJVE()), FUNCTIONS, strict=True):
        metric.update(pred, target)
        assert metric.compute().item() == pytest.approx(fn(pred, target).item(), abs=1e-12)


def _make_metrics(num_groups: int) -> list:
    return [cls(num_groups=num_groups) for cls in METRIC_CLASSES] + [
        PMPJPE(num_groups=num_groups, allow_reflection=True),
        MPJPE(num_groups=num_groups, reduction="frames"),
    ]


def test_uneven_batches_equal_one_big_update() -> None:
    target = _poses(11, 6, 17, 3, seed=11)
    pred = target + 0.1 * _poses(11, 6, 17, 3, seed=12)
    group = torch.tensor([0, 2, 1, 0, 0, 2, 3, 1, 0, 2, 2])
    whole, batched = _make_metrics(5), _make_metrics(5)  # group 4 stays empty
    for metric in whole:
        metric.update(pred, target, group)
    for metric in batched:
        for part in torch.split(torch.arange(11), [3, 1, 7]):
            metric.update(pred[part], target[part], group[part])
    for a, b in zip(whole, batched, strict=True):
        assert abs(a.compute().item() - b.compute().item()) < 1e-12
        torch.testing.assert_close(a.group_means(), b.group_means(), rtol=0, atol=1e-12, equal_nan=True)
        assert torch.isnan(a.group_means()[4])


def test_group_per_frame_and_int_group() -> None:
    pred, target, group = _hand_made_errors()
    per_frame = MPJPE(num_groups=2)
    per_frame.update(pred[None], target[None], group[None])  # group (1, 4) for errors (1, 4)
    assert per_frame.compute().item() == 2.0
    constant = MPJPE(num_groups=2)
    constant.update(pred, target, 1)
    torch.testing.assert_close(
        constant.group_means(), torch.tensor([math.nan, 1.5], dtype=torch.float64), equal_nan=True
    )


def test_mpjve_counts_frame_steps_per_sequence() -> None:
    target = _poses(3, 5, 17, 3, seed=13)
    metric = MPJVE(num_groups=2)
    metric.update(target + 0.1, target, torch.tensor([0, 1, 1]))
    torch.testing.assert_close(metric.count, torch.tensor([4.0, 8.0], dtype=torch.float64))


def test_reset_and_forward() -> None:
    pred, target, group = _hand_made_errors()
    metric = MPJPE(num_groups=2)
    metric.update(pred, target, group)
    metric.reset()
    assert metric.count.sum().item() == 0 and metric.error_sum.sum().item() == 0
    assert metric(pred[:3], target[:3], group[:3]).item() == 1.0  # forward: value of this batch alone
    metric.update(pred[3:], target[3:], group[3:])
    assert metric.compute().item() == 2.0


def test_update_rejects_bad_groups() -> None:
    pred, target, group = _hand_made_errors()
    metric = MPJPE(num_groups=2)
    with pytest.raises(ValueError, match=r"\(3,\) must be a prefix .* \(4,\)"):
        metric.update(pred, target, group[:3])
    with pytest.raises(ValueError, match="integer"):
        metric.update(pred, target, group.float())
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        metric.update(pred, target, group + 1)
    with pytest.raises(ValueError, match="num_groups"):
        MPJPE(num_groups=0)
    with pytest.raises(ValueError, match="reduction"):
        MPJPE(reduction="mean")


def test_metric_flags() -> None:
    for cls in METRIC_CLASSES:
        assert cls.full_state_update is False
        assert cls.higher_is_better is False
        assert cls.is_differentiable is False


# ---------------------------------------------------------------- Human3.6M action groups


H36M_S9_S11_KEYS = [
    "Directions", "Directions 1", "Discussion 1", "Discussion 2", "Eating", "Eating 1", "Greeting",
    "Greeting 2", "Phoning", "Phoning 1", "Photo", "Photo 1", "Posing", "Posing 1", "Purchases",
    "Purchases 1", "Sitting", "Sitting 1", "SittingDown", "SittingDown 1", "Smoking", "Smoking 1",
    "Waiting", "Waiting 1", "WalkDog", "WalkDog 1", "WalkTogether", "WalkTogether 1", "Walking", "Walking 1",
]  # fmt: skip


def test_action_group_is_first_word() -> None:
    assert action_group("Walking 1") == "Walking"
    assert action_group("WalkDog") == "WalkDog"
    assert action_group("SittingDown 2") == "SittingDown"
    with pytest.raises(ValueError, match="empty"):
        action_group(" ")


def test_group_actions_gives_the_15_h36m_actions() -> None:
    names, index = group_actions(H36M_S9_S11_KEYS)
    assert len(names) == 15 and names == sorted(names)
    assert {"Sitting", "SittingDown", "WalkDog", "WalkTogether", "Walking", "Photo"} <= set(names)
    assert index.dtype == torch.long and index.shape == (30,)
    assert [names[i] for i in index] == [key.split(" ")[0] for key in H36M_S9_S11_KEYS]
    assert index[H36M_S9_S11_KEYS.index("Walking 1")] == index[H36M_S9_S11_KEYS.index("Walking")]
    assert index[H36M_S9_S11_KEYS.index("WalkDog")] != index[H36M_S9_S11_KEYS.index("Walking")]


# ---------------------------------------------------------------- DDP


@pytest.mark.ddp
def test_metrics_under_two_process_gloo_equal_single_process() -> None:
    result = subprocess.run(
        [sys.executable, str(DDP_SCRIPT)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DDP METRICS OK" in result.stdout
    # Each rank raises (exit code 1) unless all six metrics equal the single-process values; the ranks'
    # per-metric lines share one pipe and may interleave, so they are not parsed.
