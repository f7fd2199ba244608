"""Known-value tests for components.geometry: Procrustes alignment, rotations, quaternions, bones."""

from __future__ import annotations

import math

import pytest
import torch

from components.geometry import (
    bone_lengths,
    box_iou,
    procrustes_align,
    quaternion_inverse,
    quaternion_rotate,
    quaternion_to_matrix,
    random_rotation_matrices,
    root_relative,
)
from components.skeleton import H36M_17


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_similarity(poses: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Move each pose ``(..., joints, 3)`` by its own random rotation, scale in [0.5, 2] and shift."""
    lead = poses.shape[:-2]
    n = math.prod(lead)
    rotation = random_rotation_matrices(n, generator=generator).reshape(*lead, 3, 3)
    scale = 0.5 + 1.5 * torch.rand(*lead, 1, 1, generator=generator, dtype=torch.float64)
    shift = torch.randn(*lead, 1, 3, generator=generator, dtype=torch.float64)
    return scale * poses @ rotation.transpose(-1, -2) + shift


def test_procrustes_undoes_hand_made_similarity() -> None:
    pose = torch.randn(17, 3, generator=_generator(), dtype=torch.float64)
    # 90 degrees about z maps (x, y, z) to (-y, x, z); then scale 2 and shift.
    rot_z_90 = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    shift = torch.tensor([0.3, -1.2, 4.0], dtype=torch.float64)
    moved = 2.0 * pose @ rot_z_90.T + shift
    assert torch.allclose(moved[:, 0], -2.0 * pose[:, 1] + 0.3)  # the construction is what the comment says

    aligned = procrustes_align(moved, pose)
    torch.testing.assert_close(aligned, pose, rtol=0, atol=1e-12)


def test_procrustes_batched_leading_dims_match_one_pose_at_a_time() -> None:
    gen = _generator(1)
    target = torch.randn(2, 5, 17, 3, generator=gen, dtype=torch.float64)
    pred = _random_similarity(target, gen) + 0.05 * torch.randn(2, 5, 17, 3, generator=gen, dtype=torch.float64)

    aligned = procrustes_align(pred, target)
    assert aligned.shape == (2, 5, 17, 3)
    one_by_one = torch.stack(
        [procrustes_align(p, t) for p, t in zip(pred.reshape(-1, 17, 3), target.reshape(-1, 17, 3), strict=True)]
    )
    torch.testing.assert_close(aligned, one_by_one.reshape(2, 5, 17, 3), rtol=0, atol=1e-12)


def test_procrustes_exact_on_random_similarities_with_batch_dims() -> None:
    gen = _generator(2)
    target = torch.randn(3, 4, 17, 3, generator=gen, dtype=torch.float64)
    aligned = procrustes_align(_random_similarity(target, gen), target)
    torch.testing.assert_close(aligned, target, rtol=0, atol=1e-10)


def test_procrustes_reflection_only_with_flag() -> None:
    target = torch.randn(17, 3, generator=_generator(3), dtype=torch.float64)
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(procrustes_align(mirrored, target, allow_reflection=True), target, rtol=0, atol=1e-12)
    assert (procrustes_align(mirrored, target) - target).abs().max() > 0.1


def test_procrustes_keeps_pred_dtype_and_checks_shapes() -> None:
    pose = torch.randn(17, 3, generator=_generator(4))
    assert procrustes_align(pose, pose.double()).dtype == torch.float32
    with pytest.raises(ValueError, match=r"\(17, 3\).*\(16, 3\)"):
        procrustes_align(pose, pose[:16])


def test_random_rotation_matrices_are_proper_rotations() -> None:
    rotation = random_rotation_matrices(64, generator=_generator(5))
    eye = torch.eye(3, dtype=torch.float64).expand(64, 3, 3)
    torch.testing.assert_close(rotation @ rotation.transpose(-1, -2), eye, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(64, dtype=torch.float64), rtol=0, atol=1e-12)


def test_quaternion_rotation_known_case_and_inverse() -> None:
    # 90 degrees about z: (w, x, y, z) = (cos 45, 0, 0, sin 45) maps x to y.
    q = torch.tensor([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)], dtype=torch.float64)
    x_axis = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(quaternion_rotate(q, x_axis), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))

    v = torch.randn(10, 3, generator=_generator(6), dtype=torch.float64)
    torch.testing.assert_close(quaternion_rotate(quaternion_inverse(q), quaternion_rotate(q, v)), v)
    torch.testing.assert_close(quaternion_rotate(q, v), v @ quaternion_to_matrix(q).T)


def test_root_relative_and_bone_lengths_are_translation_invariant() -> None:
    poses = torch.randn(2, 3, H36M_17.num_joints, 3, generator=_generator(7), dtype=torch.float64)
    centred = root_relative(poses, H36M_17)
    assert torch.all(centred[..., H36M_17.root, :] == 0)
    lengths = bone_lengths(poses, H36M_17)
    assert lengths.shape == (2, 3, len(H36M_17.bones))
    torch.testing.assert_close(bone_lengths(centred, H36M_17), lengths)
    child, parent = H36M_17.bones[0]
    torch.testing.assert_close(lengths[..., 0], (poses[..., child, :] - poses[..., parent, :]).norm(dim=-1))


def test_box_iou_broadcasts_pairs_and_gives_zero_for_missing_or_empty_boxes():
    boxes = torch.tensor([[0.0, 0, 2, 2], [1, 1, 3, 3], [5, 5, 6, 6], [float("nan"), 0, 1, 1], [2, 2, 2, 2]])
    pairs = box_iou(boxes[:, None], boxes[None])
    assert pairs.shape == (5, 5) and torch.equal(pairs, pairs.T)
    assert pairs[0, 1].item() == pytest.approx(1 / 7) and pairs[0, 0].item() == 1.0
    assert pairs[0, 2].item() == 0.0 and (pairs[3] == 0).all() and (pairs[4] == 0).all()
    assert box_iou(boxes[0], boxes[:3]).tolist() == pytest.approx([1.0, 1 / 7, 0.0])
