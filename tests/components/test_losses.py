import pytest
import torch

from components.losses import pose_loss, trajectory_loss, weighted_mpjpe


def test_pose_loss_is_mpjpe_and_differentiable():
    target = torch.zeros(2, 1, 17, 3)
    pred = torch.zeros(2, 1, 17, 3, requires_grad=True)
    with torch.no_grad():
        pred[..., 0] = 0.03
        pred[..., 1] = 0.04
    loss = pose_loss(pred, target)
    assert loss.item() == pytest.approx(0.05)
    loss.backward()
    assert torch.allclose(pred.grad[..., 0], torch.full((2, 1, 17), 0.6 / (2 * 17)))


def test_trajectory_loss_weights_by_inverse_depth():
    target = torch.tensor([[[[0.0, 0.0, 2.0]]], [[[0.0, 0.0, 4.0]]]])  # (B=2, T=1, 1, 3)
    pred = target + torch.tensor([0.1, 0.0, 0.0])
    # errors 0.1 at depths 2 and 4: mean(0.1 / 2, 0.1 / 4)
    assert trajectory_loss(pred, target).item() == pytest.approx((0.05 + 0.025) / 2)


def test_weighted_mpjpe_checks_shapes():
    with pytest.raises(ValueError, match=r"pred \(2, 3\) and target \(2, 4\)"):
        weighted_mpjpe(torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2))
    with pytest.raises(ValueError, match=r"weights \(3,\) do not broadcast to \(2, 5\)"):
        weighted_mpjpe(torch.zeros(2, 5, 3), torch.zeros(2, 5, 3), torch.ones(3))


def test_velocity_loss_is_the_mean_error_of_frame_to_frame_motion():
    from components.losses import velocity_loss

    target = torch.zeros(1, 3, 2, 3)
    pred = target.clone()
    pred[0, 1:, 0, 0] = 0.3  # joint 0 jumps 0.3 m between frames 0 and 1, then stays
    assert velocity_loss(pred, target).item() == pytest.approx(0.3 / 4)  # one of 2 steps x 2 joints moved
    assert velocity_loss(pred + 5.0, target).item() == pytest.approx(0.3 / 4)  # an offset has no motion
    assert velocity_loss(pred[:, :1], target[:, :1]).item() == 0.0  # one frame: no motion to compare


def test_scaled_pose_loss_ignores_the_size_of_the_prediction():
    from components.losses import scaled_pose_loss

    target = torch.randn(2, 4, 17, 3, generator=torch.Generator().manual_seed(0))
    assert scaled_pose_loss(2.5 * target, target).item() == pytest.approx(0.0, abs=1e-6)
    shifted = target + torch.tensor([0.1, 0.0, 0.0])
    unscaled = torch.linalg.vector_norm(3 * shifted - target, dim=-1).mean()
    assert 0 < scaled_pose_loss(3 * shifted, target).item() < unscaled
