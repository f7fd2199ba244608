"""AdversarialLifting / DistillationLifting: alternating optimizers, per-part weights, fit, distillation, round trip."""

import math
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch

from components.adversarial import rotation_matrices
from components.networks.residual_mlp import PartLifter, ResidualDiscriminator, StudentLifter
from datamodules.human36m import Human36mDataModule
from lightning_modules.adversarial import AdversarialLifting, DistillationLifting

SMALL = dict(width=32, blocks=1)


def teachers(parts: str = "torso_legs", **options) -> AdversarialLifting:
    torch.manual_seed(0)
    return AdversarialLifting(PartLifter(parts=parts, **SMALL), ResidualDiscriminator(17, **SMALL), **options)


def frames_data(**options) -> Human36mDataModule:
    data = Human36mDataModule(synthetic_size="tiny", batch_size=256, flip_augment=False, **options)
    data.setup("fit")
    return data


class RecordingAdam(torch.optim.Adam):
    """Adam that records which parameters carry a gradient when it steps."""

    def __init__(self, params, log: list, name: str) -> None:
        super().__init__(params, lr=1e-3)
        self.log, self.name = log, name

    def step(self, closure=None):
        owned = {id(p) for group in self.param_groups for p in group["params"]}
        self.log.append((self.name, owned))
        return super().step(closure)


def test_generator_and_discriminator_steps_use_only_their_optimizers(monkeypatch):
    model = teachers()
    log, grads = [], []
    g = RecordingAdam(model.lifter.parameters(), log, "generator")
    d = RecordingAdam(model.discriminator.parameters(), log, "discriminator")
    monkeypatch.setattr(model, "optimizers", lambda use_pl_optimizer=True: (g, d))
    monkeypatch.setattr(model, "_trainer", SimpleNamespace(optimizers=[g, d]))  # what toggle_optimizer reads
    monkeypatch.setattr(model, "log_dict", lambda *args, **kwargs: None)

    def backward(loss):
        loss.backward()
        grads.append({id(p) for p in model.parameters() if p.grad is not None and p.grad.abs().sum() > 0})

    monkeypatch.setattr(model, "manual_backward", backward)
    batch = next(iter(frames_data().train_dataloader()))
    model.training_step(batch, 0)
    lifter_ids = {id(p) for p in model.lifter.parameters()}
    discriminator_ids = {id(p) for p in model.discriminator.parameters()}
    assert [name for name, _ in log] == ["generator", "discriminator"]
    assert log[0][1] == lifter_ids and log[1][1] == discriminator_ids
    assert grads[0] <= lifter_ids and grads[0]  # the generator loss does not touch the discriminator
    assert grads[1] - lifter_ids == grads[1] & discriminator_ids and grads[1] & discriminator_ids


def test_each_generator_gets_its_own_adversarial_weight():
    model = teachers(cycle_weight=0.0, consistency_weight=0.0, adversarial_weights={"torso": 1.0, "legs": 0.0})
    x = model.frames(next(iter(frames_data().train_dataloader())))
    # a quarter turn: the projected side view shows the predicted depths (an identity rotation would hide them)
    rotation = rotation_matrices(torch.full((len(x),), math.pi / 2), torch.zeros(len(x)))
    losses, _ = model.generator_losses(x, rotation)
    sum(losses.values()).backward()
    torso = model.lifter.generators["torso"].parameters()
    legs = model.lifter.generators["legs"].parameters()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in list(torso)[:1])
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in legs)  # weight 0: no adversarial gradient


def test_fit_logs_label_free_selection_and_scale_free_protocols(tmp_path):
    data = frames_data()
    model = teachers()
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, limit_train_batches=3, logger=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, datamodule=data)
    logged = set(trainer.callback_metrics)
    assert {"val/cycle_2d", "val/d_real", "val/d_fake", "val/p2_mm", "val/p2_with_reflection_mm"} <= logged
    assert {"val/p3_mm", "val/mpjpe_gt_scale_mm", "train/g_cycle", "train/d_loss"} <= logged
    assert "val/p1_mm" not in logged  # no metric scale: no plain MPJPE
    values = trainer.callback_metrics
    assert values["val/p2_with_reflection_mm"] <= values["val/p2_mm"] + 1e-6  # reflections can only help
    path = tmp_path / "teachers.ckpt"
    trainer.save_checkpoint(path)
    restored = AdversarialLifting.load_from_checkpoint(path, weights_only=False)
    assert all(
        torch.equal(a, b) for a, b in zip(restored.state_dict().values(), model.state_dict().values(), strict=True)
    )

    student = DistillationLifting(
        StudentLifter(**SMALL), PartLifter(**SMALL), teacher_checkpoint=str(path), trust_pickle=True
    )
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, limit_train_batches=3, logger=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(student, datamodule=data)  # a fresh fit reads the teachers' weights, then keeps them frozen
    teacher = model.lifter.state_dict()
    assert all(torch.equal(value, teacher[key]) for key, value in student.teacher.state_dict().items())
    assert {"train/distillation_mse", "val/cycle_2d", "val/distillation_mse", "val/p2_mm"} <= set(
        trainer.callback_metrics
    )
    trainer.test(student, datamodule=data)
    assert student.last_tables["test"][0].columns == ("P2", "P2 with reflection", "P3", "MPJPE GT scale")
    trainer.save_checkpoint(tmp_path / "student.ckpt")
    path.unlink()  # the student's checkpoint holds the teachers' weights: it needs their file no more
    restored = DistillationLifting.load_from_checkpoint(tmp_path / "student.ckpt", weights_only=False)
    assert all(torch.equal(value, student.state_dict()[key]) for key, value in restored.state_dict().items())


def test_solo_baseline_and_errors(tmp_path):
    assert teachers("solo").adversarial_weights == {"solo": 0.15}
    with pytest.raises(ValueError, match=r"adversarial_weights names \['arms'\]"):
        AdversarialLifting(PartLifter(**SMALL), ResidualDiscriminator(17, **SMALL), adversarial_weights={"arms": 1})
    student = DistillationLifting(StudentLifter(**SMALL), PartLifter(**SMALL), teacher_checkpoint=str(tmp_path / "x"))
    with pytest.raises(FileNotFoundError, match=r"teacher_checkpoint .*x: file not found"):
        student.check_fit_inputs(resuming=False)
    student.check_fit_inputs(resuming=True)  # a resumed fit restores the teachers from its own checkpoint


def test_sign_calibration_turns_the_generators_whose_poses_are_mirror_twins():
    model = teachers()
    model.after_validation({"handedness_torso": torch.tensor(-0.4), "handedness_legs": torch.tensor(0.6)})
    assert dict(zip(model.lifter.part_indices, model.lifter.part_signs.tolist(), strict=True)) == {
        "torso": -1.0, "legs": 1.0
    }  # fmt: skip
    model.after_validation({"handedness_torso": torch.tensor(0.9), "handedness_legs": torch.tensor(0.2)})
    assert model.lifter.part_signs.tolist() == [-1.0, 1.0]  # agreeing votes change nothing
    solo = teachers("solo")
    solo.after_validation({"handedness_torso": torch.tensor(0.3), "handedness_legs": torch.tensor(-0.5)})
    assert solo.lifter.part_signs.tolist() == [-1.0]  # one generator answers to both votes
    with pytest.raises(ValueError, match=r"sign_calibration needs the joints \['pelvis', 'thorax'"):
        AdversarialLifting(PartLifter("coco", **SMALL), ResidualDiscriminator(17, **SMALL))


@pytest.mark.parametrize(
    "config", ["adversarial_teachers.yaml", "adversarial_solo.yaml", "adversarial_solo_dstformer.yaml"]
)
def test_configured_camera_pitch_is_that_of_the_human36m_cameras(config):
    import yaml

    from components.camera import downward_pitch_degrees, h36m_cameras

    path = Path(__file__).parents[2] / "configs" / "model" / config
    configured = yaml.safe_load(path.read_text())["init_args"]["camera_pitch_degrees"]
    subjects = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
    orientation = torch.tensor(
        [camera.orientation for s in subjects for camera in h36m_cameras(s)], dtype=torch.float64
    )
    assert configured == round(float(downward_pitch_degrees(orientation).mean()), 1)


def test_pitched_views_reach_the_training_and_validation_cycles():
    pitched = teachers(camera_pitch_degrees=12.7, elevation_degrees=0.0)
    x = torch.zeros(4, 17, 2)
    rotation = pitched.random_views(x, torch.Generator().manual_seed(0))
    up = torch.tensor([0.0, -math.cos(math.radians(12.7)), -math.sin(math.radians(12.7))])
    torch.testing.assert_close(rotation @ up, up.expand(4, 3))
    level = teachers(elevation_degrees=0.0).random_views(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(level[:, :, 1], torch.tensor([0.0, 1.0, 0.0]).expand(4, 3))  # about the camera's y
