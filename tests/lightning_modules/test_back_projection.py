import lightning.pytorch as pl
import pytest
import torch

from components.batch import PoseBatch
from components.camera import project_to_2d
from components.networks.temporal_conv import TemporalConvLifter
from components.skeleton import COCO_17, H36M_17
from datamodules.human36m import Human36mDataModule
from lightning_modules.back_projection import BackProjectionLifting


def lifters(causal=False, **options):
    pose = TemporalConvLifter(filter_widths=(3, 3), channels=32, causal=causal, **options)
    trajectory = TemporalConvLifter(filter_widths=(3, 3), channels=32, causal=causal, num_joints_out=1, **options)
    return pose, trajectory


def semi_data(causal=False, **options) -> Human36mDataModule:
    options = dict(train_subjects=["S1"], subset=0.3, unlabeled_subjects=["S1", "S5", "S6"]) | options
    data = Human36mDataModule(synthetic_size="tiny", batch_size=128, receptive_field=9, causal=causal, **options)
    data.setup("fit")
    return data


def evaluation_windows(data: Human36mDataModule) -> PoseBatch:
    """Labeled whole-sequence windows of the validation split (their 2D is the projection of their 3D)."""
    return next(iter(data.val_dataloader()))


@pytest.mark.parametrize("causal", [False, True])
def test_reprojection_of_the_true_pose_is_zero_and_the_causal_target_is_the_predicted_frame(causal):
    data = semi_data(causal=causal)
    model = BackProjectionLifting(*lifters(causal=causal))
    batch = evaluation_windows(data)
    frames = batch.poses_3d.shape[1]
    assert model.reprojection(batch.poses_3d, batch.trajectory, batch).item() < 1e-5  # distortion included
    # The reference took the window centre in causal mode too; that target is a different frame.
    centre = batch.keypoints_2d[:, 4 : 4 + frames]
    projected = project_to_2d(batch.poses_3d + batch.trajectory, batch.intrinsics)
    centre_error = (projected - centre).norm(dim=-1).mean().item()
    assert (centre_error > 1e-3) == causal


def test_reprojection_compares_joints_by_name_across_layouts():
    data = semi_data()
    batch = evaluation_windows(data)
    model = BackProjectionLifting(*lifters(), input_layout="coco")
    # COCO-layout input: shared joints (shoulders, elbows, wrists, hips, knees, ankles) from the true 2D,
    # face joints (not in Human3.6M) set to garbage.
    coco = torch.full((*batch.keypoints_2d.shape[:2], 17, 2), 5.0)
    shared = [n for n in COCO_17.joint_names if n in H36M_17.joint_names]
    assert len(shared) == 12
    coco[:, :, list(COCO_17.indices(shared))] = batch.keypoints_2d[:, :, list(H36M_17.indices(shared))]
    coco_batch = PoseBatch(**{**batch.__dict__, "keypoints_2d": coco})
    assert model.reprojection(batch.poses_3d, batch.trajectory, coco_batch).item() < 1e-5
    # Comparing joint i with joint i (the reference behaviour) is far off.
    projected = project_to_2d(batch.poses_3d + batch.trajectory, batch.intrinsics)
    assert (projected - coco[:, 4:-4]).norm(dim=-1).mean().item() > 0.5


def test_warm_up_then_unlabeled_losses_with_gradients_to_both_lifters():
    data = semi_data()
    model = BackProjectionLifting(*lifters(), warmup_epochs=1)
    pair, _, _ = next(iter(data.train_dataloader(model.training_streams)))
    logged = {}
    model.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value.detach()))
    model.training_step(pair, 0)
    assert set(logged) == {"train/loss_pose_mm", "train/loss_traj", "train/loss"}  # epoch 0 < warm-up
    model.trainer = type("T", (), {"current_epoch": 1})()  # past warm-up
    loss = model.training_step(pair, 0)
    assert {"train/loss_reprojection", "train/loss_bone"} <= set(logged)
    parts = sum(v / (1000 if k.endswith("_mm") else 1) for k, v in logged.items() if k != "train/loss")
    assert loss.item() == pytest.approx(parts, rel=1e-5)
    model.zero_grad()
    model.reprojection(*[o[len(pair["labeled"]) :] for o in _forward(model, pair)], pair["unlabeled"]).backward()
    for network in (model.lifter, model.trajectory_model):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in network.parameters()), type(network)


def _forward(model, pair):
    inputs = torch.cat([pair["labeled"].keypoints_2d, pair["unlabeled"].keypoints_2d])
    return model.lifter(inputs, strided=True), model.trajectory_model(inputs, strided=True)


def test_fit_and_checkpoint_round_trip(tmp_path):
    pl.seed_everything(0)  # the same weights and batches whichever tests ran before in this process
    data = semi_data()
    model = BackProjectionLifting(*lifters(), warmup_epochs=1)
    trainer = pl.Trainer(
        default_root_dir=tmp_path, max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(model, datamodule=data)
    assert {"train/loss_reprojection", "train/loss_bone", "val/traj_mm"} <= set(trainer.callback_metrics)
    checkpoint = trainer.checkpoint_callback.best_model_path
    restored = BackProjectionLifting.load_from_checkpoint(checkpoint, weights_only=False)
    assert restored.warmup_epochs == 1
    assert all(
        torch.equal(a, b) for a, b in zip(restored.state_dict().values(), model.state_dict().values(), strict=True)
    )


def test_needs_a_trajectory_model_and_unlabeled_data():
    with pytest.raises(ValueError, match="needs a trajectory_model"):
        BackProjectionLifting(lifters()[0], None)
    model = BackProjectionLifting(*lifters())
    with pytest.raises(TypeError, match="unlabeled_subjects"):
        model.training_step(evaluation_windows(semi_data()), 0)
