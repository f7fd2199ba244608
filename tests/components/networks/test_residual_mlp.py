"""Tests for the residual MLP generator/discriminator, the torso/legs split and the part-wise lifter."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from components.adversarial import consistency_loss, cycle_views, joint_mse, lift_pose, normalize_2d
from components.adversarial import random_rotations as draw_rotations
from components.networks.residual_mlp import (
    LEG_JOINTS,
    PartLifter,
    ResidualDepthMLP,
    ResidualDiscriminator,
    StudentLifter,
    non_root_joints,
    part_split,
)
from components.skeleton import H36M_17, MPI_INF_3DHP_17, Skeleton

SMALL = {"width": 32, "blocks": 2, "dropout": 0.0}


def _parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _expected_parameters(j_in: int, features: int, j_out: int, width: int, blocks: int, batch_norm: bool) -> int:
    """Linear weights and biases, plus BatchNorm's scale and shift after every hidden Linear."""
    norm = 2 * width if batch_norm else 0
    first = j_in * features * width + width + norm
    block = 2 * (width * width + width + norm)
    return first + blocks * block + width * j_out + j_out


def _names(indices: tuple[int, ...], skeleton: Skeleton = H36M_17) -> set[str]:
    return {skeleton.joint_names[i] for i in indices}


# --- networks --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_norm", [True, False])
def test_depth_mlp_parameter_count_matches_the_formula(batch_norm: bool) -> None:
    net = ResidualDepthMLP(10, 10, 2, width=64, blocks=3, batch_norm=batch_norm)
    assert _parameters(net) == _expected_parameters(10, 2, 10, 64, 3, batch_norm)
    default = ResidualDepthMLP(6, 6)  # the published legs generator: 1024 wide, 3 blocks
    assert _parameters(default) == _expected_parameters(6, 2, 6, 1024, 3, True)


def test_depth_mlp_shapes_and_output_range() -> None:
    torch.manual_seed(0)
    net = ResidualDepthMLP(6, 4, **SMALL).eval()
    keypoints = 100.0 * torch.randn(5, 6, 2)
    depths = net(keypoints)
    assert depths.shape == (5, 4)
    assert depths.abs().max() <= 1.0
    linear = ResidualDepthMLP(6, 4, output="linear", **SMALL).eval()
    assert linear(keypoints).abs().max() > 1.0  # unbounded on large inputs
    with pytest.raises(ValueError, match="shape"):
        net(torch.zeros(5, 7, 2))
    with pytest.raises(ValueError, match="output"):
        ResidualDepthMLP(6, 4, output="sigmoid")


def test_discriminator_has_no_batch_norm_and_one_logit_per_pose() -> None:
    disc = ResidualDiscriminator(16, width=64, blocks=3)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in disc.modules())
    assert _parameters(disc) == _expected_parameters(16, 2, 1, 64, 3, False)
    assert disc(torch.randn(7, 16, 2)).shape == (7,)
    assert ResidualDiscriminator(16, width=8, blocks=0)(torch.randn(1, 16, 2)).shape == (1,)


def test_dropout_is_inside_the_residual_blocks_only() -> None:
    net = ResidualDepthMLP(6, 6, width=16, blocks=3, dropout=0.5)
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 2 * 3


# --- torso / legs split ----------------------------------------------------------------------------------------


def test_part_split_h36m() -> None:
    parts = part_split(H36M_17)
    assert _names(parts["legs"]) == set(LEG_JOINTS)
    assert len(parts["torso"]) == 10
    assert _names(parts["torso"]) == set(H36M_17.joint_names) - set(LEG_JOINTS) - {"pelvis"}
    assert set(parts["torso"]).isdisjoint(parts["legs"])
    assert set(parts["torso"]) | set(parts["legs"]) == set(non_root_joints(H36M_17))
    assert list(parts["torso"]) == sorted(parts["torso"]) and list(parts["legs"]) == sorted(parts["legs"])


def test_part_split_with_root_in_the_legs() -> None:
    parts = part_split(H36M_17, legs_include_root=True)
    assert len(parts["legs"]) == 7
    assert _names(parts["legs"]) == set(LEG_JOINTS) | {"pelvis"}
    assert len(parts["torso"]) == 10 and H36M_17.root not in parts["torso"]


def test_part_split_follows_names_in_another_layout() -> None:
    parts = part_split(MPI_INF_3DHP_17)
    assert _names(parts["legs"], MPI_INF_3DHP_17) == set(LEG_JOINTS)
    assert _names(parts["torso"], MPI_INF_3DHP_17) == set(MPI_INF_3DHP_17.joint_names) - set(LEG_JOINTS) - {"pelvis"}


def test_part_split_needs_every_leg_joint() -> None:
    tiny = Skeleton("tiny", (("pelvis", None), ("spine", "pelvis"), ("left_hip", "pelvis"), ("right_hip", "pelvis")))
    with pytest.raises(ValueError, match="left_knee"):
        part_split(tiny)


# --- part lifter -----------------------------------------------------------------------------------------------


def _keypoints(batch: int = 4, frames: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, H36M_17.num_joints, 2, generator=torch.Generator().manual_seed(seed))


def test_part_lifter_contract_and_forward_shapes() -> None:
    torch.manual_seed(0)
    lifter = PartLifter("h36m", **SMALL).eval()
    assert lifter.receptive_field == 1 and lifter.causal is False
    assert lifter.num_joints_in == lifter.num_joints_out == 17
    assert set(lifter.generators) == {"torso", "legs"}
    assert lifter.part_indices == part_split(H36M_17)
    keypoints = _keypoints()
    poses = lifter(keypoints)
    assert poses.shape == (4, 3, 17, 3)
    normalised, _ = normalize_2d(keypoints, H36M_17.root)
    torch.testing.assert_close(poses[..., :2], normalised)
    torch.testing.assert_close(poses[:, :, H36M_17.root], torch.zeros(4, 3, 3), rtol=0, atol=0)
    torch.testing.assert_close(lifter(keypoints, strided=True), poses)


def test_part_lifter_ignores_extra_channels_and_checks_shapes() -> None:
    lifter = PartLifter("h36m", **SMALL).eval()
    keypoints = _keypoints()
    scored = torch.cat([keypoints, torch.rand(4, 3, 17, 1)], dim=-1)
    torch.testing.assert_close(lifter(scored), lifter(keypoints))
    with pytest.raises(ValueError, match="shape"):
        lifter(keypoints[:, :, :16])
    with pytest.raises(ValueError, match="parts"):
        PartLifter("h36m", parts="arms")


def test_depths_assemble_the_parts_in_layout_order() -> None:
    lifter = PartLifter("h36m", **SMALL).eval()
    keypoints, _ = normalize_2d(_keypoints()[:, 0], H36M_17.root)
    parts = lifter.part_depths(keypoints)
    depths = lifter.depths(keypoints)
    assert depths.shape == (4, 17)
    for name, indices in lifter.part_indices.items():
        assert parts[name].shape == (4, len(indices))
        torch.testing.assert_close(depths[:, list(indices)], parts[name], rtol=0, atol=0)
    assert (depths[:, H36M_17.root] == 0).all()


@pytest.mark.parametrize(("changed", "unchanged"), [("legs", "torso"), ("torso", "legs")])
def test_parts_are_spatially_independent(changed: str, unchanged: str) -> None:
    torch.manual_seed(1)
    lifter = PartLifter("h36m", **SMALL).eval()
    keypoints, _ = normalize_2d(_keypoints()[:, 0], H36M_17.root)
    moved = keypoints.clone()
    moved[:, list(lifter.part_indices[changed])] += 0.3
    before, after = lifter.part_depths(keypoints), lifter.part_depths(moved)
    torch.testing.assert_close(after[unchanged], before[unchanged], rtol=0, atol=0)
    assert not torch.allclose(after[changed], before[changed])


def test_legs_with_root_see_seven_joints_and_keep_root_depth_zero() -> None:
    lifter = PartLifter("h36m", legs_include_root=True, **SMALL).eval()
    assert lifter.generators["legs"].num_joints_in == 7
    keypoints, _ = normalize_2d(_keypoints()[:, 0], H36M_17.root)
    assert lifter.part_depths(keypoints)["legs"].shape == (4, 7)
    assert (lifter.depths(keypoints)[:, H36M_17.root] == 0).all()


def test_solo_and_student_have_one_generator_over_the_non_root_joints() -> None:
    solo = PartLifter("h36m", parts="solo", **SMALL)
    assert list(solo.generators) == ["solo"]
    assert solo.part_indices == {"solo": non_root_joints(H36M_17)}
    assert solo.generators["solo"].num_joints_in == 16
    student = StudentLifter("h36m", **SMALL)
    assert list(student.generators) == ["student"]
    assert student.part_indices == {"student": non_root_joints(H36M_17)}
    assert student(_keypoints()).shape == (4, 3, 17, 3)


def test_two_parts_cost_fewer_parameters_than_one_solo_generator() -> None:
    parts = PartLifter("h36m", width=64, blocks=3)
    expected = _expected_parameters(10, 2, 10, 64, 3, True) + _expected_parameters(6, 2, 6, 64, 3, True)
    assert _parameters(parts) == expected
    assert _parameters(PartLifter("h36m", parts="solo", width=64, blocks=3)) == _expected_parameters(
        16, 2, 16, 64, 3, True
    )


def test_cycle_and_consistency_losses_train_both_generators() -> None:
    torch.manual_seed(2)
    lifter = PartLifter("h36m", **SMALL).train()
    keypoints, _ = normalize_2d(_keypoints(batch=8)[:, 0], H36M_17.root)
    pose = lift_pose(keypoints, lifter.depths(keypoints))
    views = cycle_views(lifter.depths, pose, draw_rotations(8, generator=torch.Generator().manual_seed(0)))
    loss = sum(
        joint_mse(views.cycled_2d, keypoints, indices) + consistency_loss(lifter.depths, pose, indices)
        for indices in lifter.part_indices.values()
    )
    loss.backward()
    for name, generator in lifter.generators.items():
        grads = [p.grad for p in generator.parameters()]
        assert all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name


def test_head_root_normalization_sets_the_head_root_distance() -> None:
    lifter = PartLifter(width=16, blocks=1, normalization="head_root").eval()
    keypoints = torch.randn(5, 17, 2) * 300 + 500
    normalised = lifter.normalize(keypoints)
    head, root = H36M_17.index("head"), H36M_17.root
    assert torch.allclose((normalised[:, head] - normalised[:, root]).norm(dim=-1), torch.full((5,), 0.1))
    assert lifter(keypoints[:, None]).shape == (5, 1, 17, 3)


def test_part_signs_turn_one_part_and_old_checkpoints_load() -> None:
    lifter = PartLifter("h36m", **SMALL).eval()
    keypoints, _ = normalize_2d(_keypoints()[:, 0], H36M_17.root)
    before = lifter.depths(keypoints)
    lifter.part_signs[list(lifter.part_indices).index("legs")] = -1.0
    after = lifter.depths(keypoints)
    legs, torso = list(lifter.part_indices["legs"]), list(lifter.part_indices["torso"])
    assert torch.equal(after[:, legs], -before[:, legs]) and torch.equal(after[:, torso], before[:, torso])
    state = {key: value for key, value in lifter.state_dict().items() if key != "part_signs"}  # an older file
    restored = PartLifter("h36m", **SMALL)
    restored.load_state_dict(state)
    assert restored.part_signs.tolist() == [1.0, 1.0]
