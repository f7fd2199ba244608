"""Known-value tests for components.adversarial: views, projections, cycle and consistency losses, GAN losses.

The cycle and consistency losses are checked with oracle lifters that know the true 3D of every view they can be
shown, so an exact pose must give exactly zero loss.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from components.adversarial import (
    chirality_votes,
    consistency_loss,
    cycle_loss,
    cycle_views,
    discriminator_loss,
    generator_adversarial_loss,
    inverse_rotate,
    joint_mse,
    lift_pose,
    normalize_2d,
    project,
    random_rotations,
    reflected_parts,
    rotate,
    rotation_matrices,
)
from components.networks.residual_mlp import part_split
from components.skeleton import H36M_17


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _poses(batch: int = 8, seed: int = 0) -> Tensor:
    """Random root-relative poses ``(B, 17, 3)`` (float64), root at the origin."""
    poses = torch.randn(batch, H36M_17.num_joints, 3, generator=_generator(seed), dtype=torch.float64)
    return poses - poses[:, H36M_17.root : H36M_17.root + 1]


def _oracle(candidates: list[Tensor], mode: str = "orthographic"):
    """A ``lift_depths`` that, per sample, returns the depths of whichever known 3D pose projects to its input.

    Args:
        candidates: poses ``(B, J, 3)`` the oracle can be shown (projected with ``mode``).
    """
    stacked = torch.stack(candidates)  # (K, B, J, 3)
    views = torch.stack([project(c, mode) for c in candidates])  # (K, B, J, 2)

    def lift_depths(keypoints: Tensor) -> Tensor:
        # Batches of several views of the same poses (n * B samples) repeat the poses: sample i is pose i % B.
        pose = torch.arange(keypoints.shape[0]) % stacked.shape[1]
        distance = (views[:, pose] - keypoints).abs().sum(dim=(-1, -2))  # (K, n * B)
        best = distance.argmin(dim=0)
        assert distance.gather(0, best[None]).max() < 1e-9, "the oracle was shown a view it does not know"
        return stacked[best, pose, :, 2]

    return lift_depths


def _angles(rotation: Tensor) -> tuple[Tensor, Tensor]:
    """Azimuth and elevation (radians) of rotations built by ``rotation_matrices``."""
    azimuth = torch.atan2(rotation[:, 0, 2], rotation[:, 0, 0])
    elevation = torch.atan2(rotation[:, 2, 1], rotation[:, 1, 1])
    return azimuth, elevation


# --- rotations -------------------------------------------------------------------------------------------------


def test_random_rotations_are_proper_and_within_ranges() -> None:
    rotation = random_rotations(4000, 160.0, 10.0, generator=_generator(), dtype=torch.float64)
    assert rotation.shape == (4000, 3, 3)
    identity = torch.eye(3, dtype=torch.float64).expand(4000, 3, 3)
    torch.testing.assert_close(rotation @ rotation.transpose(-1, -2), identity, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(4000, dtype=torch.float64))
    azimuth, elevation = _angles(rotation)
    assert azimuth.abs().max() <= math.radians(160.0)
    assert elevation.abs().max() <= math.radians(10.0)
    # Uniform over the whole range, both signs: the extremes are nearly reached.
    assert azimuth.max() > math.radians(155.0) and azimuth.min() < -math.radians(155.0)
    assert elevation.max() > math.radians(9.5) and elevation.min() < -math.radians(9.5)


def test_angles_round_trip_through_the_matrix() -> None:
    azimuth = torch.tensor([0.3, -2.5, 1.0], dtype=torch.float64)
    elevation = torch.tensor([0.1, -0.15, 0.0], dtype=torch.float64)
    recovered = _angles(rotation_matrices(azimuth, elevation))
    torch.testing.assert_close(recovered[0], azimuth)
    torch.testing.assert_close(recovered[1], elevation)


def test_zero_ranges_give_the_identity() -> None:
    rotation = random_rotations(5, 0.0, 0.0, generator=_generator(), dtype=torch.float64)
    torch.testing.assert_close(rotation, torch.eye(3, dtype=torch.float64).expand(5, 3, 3), rtol=0, atol=0)


def test_rotations_are_reproducible_with_a_seeded_generator() -> None:
    first = random_rotations(6, generator=_generator(3))
    torch.testing.assert_close(first, random_rotations(6, generator=_generator(3)), rtol=0, atol=0)
    assert first.dtype == torch.get_default_dtype()


def test_pitched_views_turn_about_the_world_vertical() -> None:
    pitch = 12.7
    rotation = random_rotations(
        500, 160.0, 0.0, generator=_generator(4), dtype=torch.float64, camera_pitch_degrees=pitch
    )
    # The world's up direction as a camera pitched down by 12.7 degrees sees it: tilted away from y towards -z.
    up = torch.tensor([0.0, -math.cos(math.radians(pitch)), -math.sin(math.radians(pitch))], dtype=torch.float64)
    torch.testing.assert_close(rotation @ up, up.expand(500, 3), rtol=0, atol=1e-12)
    identity = torch.eye(3, dtype=torch.float64).expand(500, 3, 3)
    torch.testing.assert_close(rotation @ rotation.transpose(-1, -2), identity, rtol=0, atol=1e-12)
    # ...and not the camera's own y axis, which a pitched rig's people do not stand along.
    y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    assert (rotation @ y - y).norm(dim=-1).max() > 0.4
    # Pitch 0 draws exactly the published views.
    torch.testing.assert_close(
        random_rotations(6, generator=_generator(3), camera_pitch_degrees=0.0),
        random_rotations(6, generator=_generator(3)), rtol=0, atol=0,
    )  # fmt: skip


def test_known_rotations_in_camera_frame() -> None:
    # Azimuth +90 degrees about the vertical y: x -> -z, z -> +x (the side view of the consistency loss).
    quarter = rotation_matrices(torch.tensor([math.pi / 2]), torch.tensor([0.0]))
    point = torch.tensor([[[1.0, 2.0, 3.0]]])
    torch.testing.assert_close(rotate(point, quarter), torch.tensor([[[3.0, 2.0, -1.0]]]))
    # Elevation +90 degrees about x: y (down) -> +z.
    tilt = rotation_matrices(torch.tensor([0.0]), torch.tensor([math.pi / 2]))
    torch.testing.assert_close(rotate(torch.tensor([[[0.0, 1.0, 0.0]]]), tilt), torch.tensor([[[0.0, 0.0, 1.0]]]))


def test_inverse_rotate_undoes_rotate_about_the_root() -> None:
    poses = _poses()
    rotation = random_rotations(8, generator=_generator(1), dtype=torch.float64)
    rotated = rotate(poses, rotation)
    torch.testing.assert_close(inverse_rotate(rotated, rotation), poses, rtol=0, atol=1e-12)
    assert not torch.allclose(rotated, poses)
    torch.testing.assert_close(rotated[:, H36M_17.root], torch.zeros(8, 3, dtype=torch.float64))
    # Lengths from the root are kept.
    torch.testing.assert_close(rotated.norm(dim=-1), poses.norm(dim=-1))


def test_rotate_checks_shapes() -> None:
    with pytest.raises(ValueError, match="rotation"):
        rotate(torch.zeros(4, 17, 3), torch.eye(3).expand(3, 3, 3))
    with pytest.raises(ValueError, match="points"):
        rotate(torch.zeros(4, 17, 2), torch.eye(3).expand(4, 3, 3))


# --- projection and lifting ------------------------------------------------------------------------------------


def test_orthographic_projection_drops_depth() -> None:
    poses = _poses()
    torch.testing.assert_close(project(poses), poses[..., :2], rtol=0, atol=0)


def test_perspective_known_values() -> None:
    points = torch.tensor([[[1.0, 2.0, 0.0], [1.0, 2.0, 10.0], [1.0, 2.0, -30.0]]])
    projected = project(points, "perspective", depth_offset=10.0)
    # z = 0 equals orthographic; z = 10 halves (x, y); far behind the camera the distance is clamped to 1.
    expected = torch.tensor([[[1.0, 2.0], [0.5, 1.0], [10.0, 20.0]]])
    torch.testing.assert_close(projected, expected)


def test_perspective_at_depth_zero_equals_orthographic() -> None:
    poses = _poses()
    flat = torch.cat([poses[..., :2], torch.zeros_like(poses[..., 2:])], dim=-1)
    for offset in (1.0, 10.0, 100.0):
        torch.testing.assert_close(project(flat, "perspective", offset), project(flat), rtol=0, atol=1e-15)


def test_lift_pose_inverts_projection() -> None:
    poses = _poses()
    torch.testing.assert_close(lift_pose(poses[..., :2], poses[..., 2]), poses, rtol=0, atol=0)
    shown = project(poses, "perspective", 10.0)
    torch.testing.assert_close(lift_pose(shown, poses[..., 2], "perspective", 10.0), poses)


def test_projection_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="projection mode"):
        project(_poses(), "fisheye")
    with pytest.raises(ValueError, match="depths"):
        lift_pose(torch.zeros(2, 17, 2), torch.zeros(2, 16))


# --- normalisation ---------------------------------------------------------------------------------------------


def test_normalize_2d_centres_and_scales_each_pose() -> None:
    keypoints = torch.randn(3, 5, 17, 2, generator=_generator(), dtype=torch.float64)
    root = H36M_17.root
    normalised, scale = normalize_2d(keypoints, root)
    assert scale.shape == (3, 5, 1, 1)
    torch.testing.assert_close(normalised[..., root, :], torch.zeros(3, 5, 2, dtype=torch.float64))
    torch.testing.assert_close(normalised.abs().amax(dim=(-1, -2)), torch.ones(3, 5, dtype=torch.float64))
    torch.testing.assert_close(normalised * scale + keypoints[..., root : root + 1, :], keypoints)

    moved = 3.5 * keypoints + torch.tensor([10.0, -4.0], dtype=torch.float64)
    torch.testing.assert_close(normalize_2d(moved, root)[0], normalised)


def test_normalize_2d_of_a_degenerate_pose_is_finite() -> None:
    normalised, _ = normalize_2d(torch.ones(1, 17, 2), H36M_17.root)
    torch.testing.assert_close(normalised, torch.zeros(1, 17, 2), rtol=0, atol=0)


# --- cycle loss ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["orthographic", "perspective"])
def test_cycle_loss_is_zero_for_an_exact_oracle(mode: str) -> None:
    poses = 0.1 * _poses()  # within the clamp of the perspective camera
    rotation = random_rotations(8, generator=_generator(2), dtype=torch.float64)
    lift_depths = _oracle([poses, rotate(poses, rotation)], mode)
    keypoints = project(poses, mode)

    loss, rotated_2d = cycle_loss(lift_depths, keypoints, poses, rotation, mode=mode)
    assert loss.abs() < 1e-6
    torch.testing.assert_close(rotated_2d, project(rotate(poses, rotation), mode))


def test_cycle_loss_is_positive_for_wrong_depths() -> None:
    poses = _poses()
    rotation = random_rotations(8, generator=_generator(2), dtype=torch.float64)
    exact = _oracle([poses, rotate(poses, rotation)])

    def wrong(keypoints: Tensor) -> Tensor:
        return 0.5 * exact(keypoints)

    keypoints = poses[..., :2]
    loss, _ = cycle_loss(wrong, keypoints, poses, rotation)
    assert loss > 1e-3


def test_cycle_views_split_per_part() -> None:
    """A lifter wrong only on the legs has zero cycle loss on the torso joints and a positive one on the legs."""
    poses = _poses()
    rotation = random_rotations(8, generator=_generator(2), dtype=torch.float64)
    exact = _oracle([poses, rotate(poses, rotation)])
    parts = part_split(H36M_17)
    legs = list(parts["legs"])

    def wrong_legs(keypoints: Tensor) -> Tensor:
        depths = exact(keypoints).clone()
        depths[:, legs] += 0.7
        return depths

    views = cycle_views(wrong_legs, poses, rotation)
    keypoints = poses[..., :2]
    assert joint_mse(views.cycled_2d, keypoints, parts["torso"]) < 1e-20
    assert joint_mse(views.cycled_2d, keypoints, parts["legs"]) > 1e-3


def test_joint_mse_known_value() -> None:
    pred = torch.zeros(2, 3, 2)
    target = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0], [3.0, 3.0]]])
    assert joint_mse(pred, target).item() == pytest.approx((2 + 4 + 4 + 18) / 12)
    assert joint_mse(pred, target, [1]).item() == pytest.approx((4 + 4) / 4)


# --- 90-degree consistency -------------------------------------------------------------------------------------


def _four_views(poses: Tensor) -> list[Tensor]:
    """The pose and its side, opposite-side and back views as 3D poses (azimuth 0, +90, -90, 180 degrees)."""
    x, y, z = poses.unbind(-1)
    return [poses, torch.stack([z, y, -x], -1), torch.stack([-z, y, x], -1), torch.stack([-x, y, -z], -1)]


def test_consistency_views_are_the_quarter_rotations() -> None:
    poses = _poses()
    azimuths = (0.0, math.pi / 2, -math.pi / 2, math.pi)
    for view, azimuth in zip(_four_views(poses), azimuths, strict=True):
        angles = torch.full((8,), azimuth, dtype=torch.float64)
        rotation = rotation_matrices(angles, torch.zeros_like(angles))
        torch.testing.assert_close(rotate(poses, rotation), view, rtol=0, atol=1e-15)


def test_consistency_loss_is_zero_for_an_exact_oracle() -> None:
    poses = _poses()
    loss = consistency_loss(_oracle(_four_views(poses)), poses)
    assert loss == 0.0


def test_consistency_loss_known_value_and_joint_subset() -> None:
    poses = _poses()
    x, _, z = poses.unbind(-1)

    def flat(keypoints: Tensor) -> Tensor:
        return torch.zeros_like(keypoints[..., 0])

    expected = 2 * x.square().mean() + z.square().mean()
    torch.testing.assert_close(consistency_loss(flat, poses), expected)
    legs = part_split(H36M_17)["legs"]
    expected_legs = 2 * x[:, legs].square().mean() + z[:, legs].square().mean()
    torch.testing.assert_close(consistency_loss(flat, poses, legs), expected_legs)


def test_consistency_loss_is_positive_for_a_wrong_depth() -> None:
    """The depth-flipped pose's views are views of the true pose, so the oracle answers with the true depths."""
    poses = _poses()
    wrong = poses * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    x, _, z = poses.unbind(-1)
    # Side and opposite side: the oracle says -x and +x where the flipped pose implies +x and -x; back: -z vs +z.
    expected = 2 * (2 * x).square().mean() + (2 * z).square().mean()
    loss = consistency_loss(_oracle(_four_views(poses)), wrong)
    assert loss > 1e-3
    torch.testing.assert_close(loss, expected)


# --- adversarial losses ----------------------------------------------------------------------------------------


def _bce(logit: float, target: float) -> float:
    """Binary cross-entropy of a logit against a target, by hand: ``log(1 + e^l) - t * l``."""
    return math.log1p(math.exp(logit)) - target * logit


REAL = torch.tensor([0.0, 2.0, -1.0])
FAKE = torch.tensor([1.0, -1.0])


def test_discriminator_bce_with_smoothed_labels() -> None:
    real = sum(_bce(v, 0.8) for v in REAL.tolist()) / 3
    fake = sum(_bce(v, 0.0) for v in FAKE.tolist()) / 2
    loss = discriminator_loss(REAL, FAKE, "bce", real_label=0.8, flip_probability=0.0)
    assert loss.item() == pytest.approx(0.5 * (real + fake), rel=1e-6)


def test_discriminator_bce_with_every_label_flipped() -> None:
    real = sum(_bce(v, 0.0) for v in REAL.tolist()) / 3
    fake = sum(_bce(v, 0.8) for v in FAKE.tolist()) / 2
    loss = discriminator_loss(REAL, FAKE, "bce", real_label=0.8, flip_probability=1.0)
    assert loss.item() == pytest.approx(0.5 * (real + fake), rel=1e-6)


def test_discriminator_lsgan() -> None:
    real = ((0.0 - 0.8) ** 2 + (2.0 - 0.8) ** 2 + (-1.0 - 0.8) ** 2) / 3
    fake = (1.0**2 + (-1.0) ** 2) / 2
    loss = discriminator_loss(REAL, FAKE, "lsgan", flip_probability=0.0)
    assert loss.item() == pytest.approx(0.5 * (real + fake), rel=1e-6)
    flipped = discriminator_loss(REAL, FAKE, "lsgan", flip_probability=1.0)
    real = (0.0**2 + 2.0**2 + 1.0**2) / 3
    fake = ((1.0 - 0.8) ** 2 + (-1.0 - 0.8) ** 2) / 2
    assert flipped.item() == pytest.approx(0.5 * (real + fake), rel=1e-6)


def test_discriminator_flips_the_given_fraction_of_labels() -> None:
    """With logits all 1, BCE is ``log(1 + e) - target``: the mean target reveals the flipped fraction."""
    ones = torch.ones(200_000)
    loss = discriminator_loss(ones, ones, "bce", real_label=0.8, flip_probability=0.25, generator=_generator())
    # Real targets average 0.75 * 0.8, fake targets 0.25 * 0.8.
    expected = math.log1p(math.e) - 0.5 * (0.75 * 0.8 + 0.25 * 0.8)
    assert loss.item() == pytest.approx(expected, abs=2e-3)
    again = discriminator_loss(ones, ones, "bce", real_label=0.8, flip_probability=0.25, generator=_generator())
    assert again == loss


def test_generator_adversarial_loss_targets_the_real_label() -> None:
    assert generator_adversarial_loss(FAKE, "bce").item() == pytest.approx((_bce(1.0, 0.8) + _bce(-1.0, 0.8)) / 2)
    assert generator_adversarial_loss(FAKE, "lsgan", real_label=1.0).item() == pytest.approx((0.0 + 4.0) / 2)


def test_adversarial_losses_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="adversarial mode"):
        generator_adversarial_loss(FAKE, "wgan")
    with pytest.raises(ValueError, match="flip_probability"):
        discriminator_loss(REAL, FAKE, flip_probability=1.5)


def test_losses_backpropagate_to_logits() -> None:
    real, fake = REAL.clone().requires_grad_(), FAKE.clone().requires_grad_()
    (discriminator_loss(real, fake, flip_probability=0.0) + generator_adversarial_loss(fake)).backward()
    # d BCE(x, t) / dx = sigmoid(x) - t, averaged over the batch and halved by the discriminator's mean of two terms
    torch.testing.assert_close(real.grad, (REAL.sigmoid() - 0.8) / (2 * len(REAL)))
    expected_fake = FAKE.sigmoid() / (2 * len(FAKE)) + (FAKE.sigmoid() - 0.8) / len(FAKE)
    torch.testing.assert_close(fake.grad, expected_fake)


# --- the depth sign --------------------------------------------------------------------------------------------
def test_a_depth_reflection_is_invisible_to_every_loss() -> None:
    """The reflected pose seen at (azimuth a, elevation e) is the true pose seen at (-a, -e): a consistently
    reflecting lifter gets the same cycle and consistency losses, and its fake 2D are real views."""
    poses = _poses(6, seed=3)
    reflected = poses * poses.new_tensor([1.0, 1.0, -1.0])
    azimuth, elevation = (
        torch.tensor([0.7, -2.0, 1.3, 0.1, 2.5, -0.4]),
        torch.tensor([0.1, -0.15, 0.0, 0.17, 0.05, -0.1]),
    )
    rotation = rotation_matrices(azimuth, elevation).double()
    seen = project(rotate(reflected, rotation))
    assert torch.allclose(seen, project(rotate(poses, rotation_matrices(-azimuth, -elevation).double())), atol=1e-12)
    for pose in (poses, reflected):  # an exact lifter of the true poses, and one that always reflects
        loss, _ = cycle_loss(_oracle([pose, rotate(pose, rotation)]), project(pose), pose, rotation)
        assert float(loss) < 1e-12
        assert float(consistency_loss(_oracle(_four_views(pose)), pose)) < 1e-12


def _facing_pose() -> Tensor:
    """A person facing the camera (camera space: x right, y down, z forward), nose ahead, knees slightly bent."""
    joints = {
        "pelvis": (0.0, 0.0, 0.0), "right_hip": (-0.12, 0.0, 0.0), "right_knee": (-0.12, 0.45, -0.05),
        "right_ankle": (-0.12, 0.9, 0.0), "left_hip": (0.12, 0.0, 0.0), "left_knee": (0.12, 0.45, -0.05),
        "left_ankle": (0.12, 0.9, 0.0), "spine": (0.0, -0.25, 0.0), "thorax": (0.0, -0.5, 0.0),
        "head": (0.0, -0.6, -0.08), "head_top": (0.0, -0.75, 0.0), "left_shoulder": (0.18, -0.5, 0.0),
        "left_elbow": (0.2, -0.25, 0.0), "left_wrist": (0.2, 0.0, 0.0), "right_shoulder": (-0.18, -0.5, 0.0),
        "right_elbow": (-0.2, -0.25, 0.0), "right_wrist": (-0.2, 0.0, 0.0),
    }  # fmt: skip
    return torch.tensor([joints[name] for name in H36M_17.joint_names], dtype=torch.float64)[None]


def test_handedness_votes_tell_a_person_from_its_mirror_twin() -> None:
    pose = _facing_pose()  # facing the camera: forward is -z, the nose and the knees point towards it
    turned = rotate(pose, rotation_matrices(torch.tensor([2.2]), torch.tensor([0.1])).double())
    for person in (pose, turned):
        assert {k: float(v) for k, v in chirality_votes(person, H36M_17).items()} == {"torso": 1.0, "legs": 1.0}
        twin = person * person.new_tensor([1.0, 1.0, -1.0])
        assert {k: float(v) for k, v in chirality_votes(twin, H36M_17).items()} == {"torso": -1.0, "legs": -1.0}
    straight = pose.clone()
    straight[0, [H36M_17.index("left_knee"), H36M_17.index("right_knee")], 2] = 0.0
    assert float(chirality_votes(straight, H36M_17)["legs"]) == 0.0  # straight legs abstain


def test_reflected_parts_find_the_part_with_the_other_sign() -> None:
    pose = _facing_pose().repeat(2, 1, 1)
    pose[..., 2] += torch.linspace(-0.1, 0.1, 17, dtype=torch.float64)  # depth variation in every part
    parts = part_split(H36M_17)
    twisted = pose.clone()
    twisted[1][list(parts["legs"]), 2] *= -1  # the second frame's legs reflected
    reflected = reflected_parts(twisted, pose, parts)
    assert reflected["torso"].tolist() == [False, False] and reflected["legs"].tolist() == [False, True]
