"""Adversarial lifting from 2D alone (TIPS): part generators against a 2D discriminator, then a distilled student.

``AdversarialLifting`` trains a :class:`components.networks.residual_mlp.PartLifter` (torso and legs generators,
or one solo generator) with manual optimisation, one generator step then one discriminator step per batch::

    2D x (root-centred, max-abs 1) -> generators -> depths z -> pose (x, y, z)
        -> random per-sample rotation R -> project -> fake 2D ----------> discriminator (real: x)
        -> lift the fake 2D again -> R^-1 -> project -> cycle 2D  ~ x     (cycle loss, weight 10)
    pose -> side (z, y), opposite side (-z, y), back (-x, y) views
        -> lift -> depths ~ -x, +x, -z                                  (90-degree consistency, weight 3)

Each generator's adversarial term has its own weight (0.625 torso, 0.375 legs; 0.15 solo): the discriminator sees
the whole pose, so each part's term is computed with the other parts' depths detached. The cycle and consistency
terms of a part depend on that part's generator only (lifting is per part), so they are summed over parts.

Evaluation is the shared one, scale-free: the poses are in normalised units, so P2 (no reflection, the headline),
P2 with reflections, P3 and MPJPE at the ground-truth scale (an oracle) are reported. Model selection is label-free:
``val/cycle_2d`` (the cycle error on the validation split's 2D) and the discriminator's mean outputs are logged
every validation.

``DistillationLifting`` trains one student on the whole pose with MSE to the frozen teachers' depths; it logs the
same ``val/cycle_2d`` (through the student) and ``val/distillation_mse``, so its checkpoints are selected the same
label-free way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from components.adversarial import (
    HANDEDNESS_JOINTS,
    chirality_votes,
    consistency_loss,
    cycle_views,
    discriminator_loss,
    generator_adversarial_loss,
    joint_mse,
    lift_pose,
    project,
    random_rotations,
    rotate,
)
from components.batch import PoseBatch
from components.errors import InputError
from components.geometry import flip_horizontal
from lightning_modules.base import LiftingModule
from lightning_modules.checkpoints import class_path, read_checkpoint

DEFAULT_ADVERSARIAL_WEIGHTS = {"torso": 0.625, "legs": 0.375, "solo": 0.15}


def _keypoints(batch: PoseBatch | Mapping[str, PoseBatch]) -> Tensor:
    """All 2D windows of a batch (labeled and unlabeled alike: no 3D is used), ``(N, T, J, F)``."""
    if isinstance(batch, Mapping):
        return torch.cat([b.keypoints_2d for b in batch.values()])
    return batch.keypoints_2d


class _FrameLifting(LiftingModule):
    """Shared by the adversarial and distillation stages: frames of normalised 2D, scale-free evaluation."""

    @property
    def scale_free_output(self) -> bool:
        return True

    def frames(self, batch: PoseBatch | Mapping[str, PoseBatch], mirror_probability: float = 0.0) -> Tensor:
        """``(N, J, 2)`` 2D of every frame, normalised as the lifter expects (``lifter.normalize``); mirrored with
        the given probability per batch, as augmentation (``mirror``: see :class:`AdversarialLifting`)."""
        normalised = self.lifter.normalize(_keypoints(batch)[..., :2].flatten(0, 1))
        if mirror_probability > 0 and torch.rand(()) < mirror_probability:
            if self.hparams.mirror == "flip":
                normalised = flip_horizontal(normalised, self.input_skeleton)
            else:
                normalised = normalised * normalised.new_tensor([-1.0, 1.0])
        return normalised

    # -- label-free model selection --------------------------------------------------------------------------
    def validation_step(self, batch: PoseBatch, batch_idx: int) -> None:
        """The shared 3D evaluation (logged, never used for selection by default) and the label-free statistics
        of the validation split's 2D: ``val/cycle_2d`` and those :meth:`label_free_stats` adds."""
        super().validation_step(batch, batch_idx)
        x = self.frames(batch)
        # The same rotations at every validation (seeded by the batch index), so the numbers compare across epochs.
        rotation = self.random_views(x, torch.Generator().manual_seed(batch_idx))
        projection, offset = self.hparams.projection, self.hparams.depth_offset
        pose = lift_pose(x, self.lifter.depths(x), projection, offset)
        views = cycle_views(self.lifter.depths, pose, rotation, projection, offset)
        stats = {"cycle_2d": F.mse_loss(views.cycled_2d, x, reduction="none").mean(dim=(-2, -1))}
        for name, values in (stats | self.label_free_stats(x, views)).items():
            self.validation_stats[name].update(values)

    def random_views(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(B, 3, 3)`` random views of the ``B`` poses of ``x``, as the hyper-parameters say (azimuth, elevation,
        camera pitch); drawn on the CPU when a ``generator`` (a CPU one) is given."""
        hp = self.hparams
        rotation = random_rotations(
            len(x), hp.azimuth_degrees, hp.elevation_degrees, generator=generator,
            device=None if generator is not None else x.device, dtype=x.dtype,
            camera_pitch_degrees=hp.camera_pitch_degrees,
        )  # fmt: skip
        return rotation.to(x.device)

    def label_free_stats(self, x: Tensor, views) -> dict[str, Tensor]:
        """Further per-frame statistics of validation 2D ``x`` ``(N, J, 2)`` (none here)."""
        return {}

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        values = {}
        for name, metric in self.validation_stats.items():
            values[name] = metric.compute()  # synchronised across processes
            self.log(f"val/{name}", values[name])
            metric.reset()
        if not self.trainer.sanity_checking:
            self.after_validation(values)

    def after_validation(self, values: dict[str, Tensor]) -> None:
        """React to a validation's label-free statistics (nothing here)."""


class AdversarialLifting(_FrameLifting):
    """Teachers (or the solo baseline) of the TIPS regime, with visible manual optimisation.

    Args:
        lifter: a :class:`PartLifter` (its ``part_indices`` name the generators).
        discriminator: ``(B, J, 2) -> (B,)`` logits, e.g. :class:`ResidualDiscriminator`.
        projection: ``orthographic`` or ``perspective`` (with ``depth_offset``).
        azimuth_degrees, elevation_degrees: ranges of the per-sample random rotations.
        camera_pitch_degrees: how far the training cameras look down; the random views then turn poses about the
            world's vertical, not the camera's y axis (``components.adversarial.random_rotations``; 0 is the
            published TIPS; Human3.6M's cameras 12.7). It also shows the discriminator a part's depth
            reflection (a reflected part leans the wrong way), which no loss can see at 0.
        adversarial: ``bce`` (one-sided label smoothing ``real_label``, ``flip_probability`` label flips) or
            ``lsgan``.
        adversarial_weights: per generator name; defaults torso 0.625, legs 0.375, solo 0.15.
        cycle_weight, consistency_weight: loss weights (10 and 3).
        lr: Adam learning rate of generators and discriminator.
        mirror_probability: chance per batch of mirroring the 2D.
        mirror: ``flip`` (x -> -x and left/right joints swapped: the mirror image of a real person, as the
            supervised regimes flip) or ``x_only`` (x -> -x alone, as the published TIPS code). ``x_only`` turns
            people into their mirror twins with the same labels; the discriminator, which sees those as real,
            then cannot tell a pose from its depth reflection (a mirror twin turned half round), so nothing fixes
            the sign of each part's depths and the torso and legs generators settle on opposite signs
            (docs/regimes/adversarial.md, "The depth sign").
        sign_calibration: after every validation, turn each generator whose lifted validation poses mostly have a
            mirror twin's handedness (:meth:`after_validation`); needs the joints of
            ``components.adversarial.chirality_votes``.
        input_layout, output_layout, flip_test, flip_val, by_subject: see :class:`LiftingModule`.
    """

    network_joints = LiftingModule.network_joints | {"discriminator": {"num_joints": "input_count"}}

    def __init__(
        self,
        lifter: nn.Module,
        discriminator: nn.Module,
        *,
        projection: Literal["orthographic", "perspective"] = "orthographic",
        depth_offset: float = 10.0,
        azimuth_degrees: float = 160.0,
        elevation_degrees: float = 10.0,
        camera_pitch_degrees: float = 0.0,
        adversarial: Literal["bce", "lsgan"] = "bce",
        real_label: float = 0.8,
        flip_probability: float = 0.1,
        adversarial_weights: dict[str, float] | None = None,
        cycle_weight: float = 10.0,
        consistency_weight: float = 3.0,
        lr: float = 2e-4,
        mirror_probability: float = 0.5,
        mirror: Literal["flip", "x_only"] = "flip",
        sign_calibration: bool = True,
        input_layout: str = "h36m",
        output_layout: str = "h36m",
        flip_test: bool = False,
        flip_val: bool = False,
        by_subject: bool = False,
    ) -> None:
        super().__init__(
            lifter,
            None,
            input_layout=input_layout,
            output_layout=output_layout,
            flip_test=flip_test,
            flip_val=flip_val,
            by_subject=by_subject,
        )
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.discriminator = discriminator
        unknown = sorted(set(adversarial_weights or {}) - set(lifter.part_indices))
        if unknown:
            raise InputError(
                f"adversarial_weights names {unknown}, not generators of the lifter {list(lifter.part_indices)}"
            )
        weights = {**DEFAULT_ADVERSARIAL_WEIGHTS, **(adversarial_weights or {})}
        self.adversarial_weights = {name: weights[name] for name in lifter.part_indices}
        stats = ("cycle_2d", "d_real", "d_fake") + (("handedness_torso", "handedness_legs") if sign_calibration else ())
        self.validation_stats = nn.ModuleDict({name: MeanMetric() for name in stats})
        missing = [name for name in HANDEDNESS_JOINTS if name not in lifter.skeleton.joint_names]
        if sign_calibration and missing:
            raise InputError(
                f"sign_calibration needs the joints {missing}, which layout {lifter.skeleton.name!r} lacks; "
                "set sign_calibration: false"
            )

    def configure_optimizers(self):
        lr = self.hparams.lr
        return torch.optim.Adam(self.lifter.parameters(), lr=lr), torch.optim.Adam(
            self.discriminator.parameters(), lr=lr
        )

    # -- the generator objective -----------------------------------------------------------------------------
    def _assembled(self, parts: dict[str, Tensor], live: str | None = None) -> Tensor:
        """``(B, J)`` depths from the part outputs; with ``live``, only that part keeps its gradient."""
        columns = [depth if live in (None, name) else depth.detach() for name, depth in parts.items()]
        zero = columns[0].new_zeros(columns[0].shape[0], 1)
        return torch.cat([*columns, zero], dim=-1)[:, self.lifter.assembly]

    def _pose(self, x: Tensor, depths: Tensor) -> Tensor:
        return lift_pose(x, depths, self.hparams.projection, self.hparams.depth_offset)

    def generator_losses(self, x: Tensor, rotation: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """Weighted loss terms of the generators and the fake 2D ``(B, J, 2)`` for the discriminator."""
        hp = self.hparams
        parts = self.lifter.part_depths(x)
        pose = self._pose(x, self._assembled(parts))
        views = cycle_views(self.lifter.depths, pose, rotation, hp.projection, hp.depth_offset)
        losses = {"adversarial": 0.0, "cycle": 0.0, "consistency": 0.0}
        for name, joints in self.lifter.part_indices.items():
            live = self._pose(x, self._assembled(parts, live=name))
            rotated = project(rotate(live, rotation), hp.projection, hp.depth_offset)
            adversarial = generator_adversarial_loss(self.discriminator(rotated), hp.adversarial, hp.real_label)
            losses["adversarial"] = losses["adversarial"] + self.adversarial_weights[name] * adversarial
            losses["cycle"] = losses["cycle"] + hp.cycle_weight * joint_mse(views.cycled_2d, x, joints)
            consistency = consistency_loss(self.lifter.depths, pose, joints)
            losses["consistency"] = losses["consistency"] + hp.consistency_weight * consistency
        return losses, views.rotated_2d

    def training_step(self, batch: PoseBatch | Mapping[str, PoseBatch], batch_idx: int) -> None:
        hp = self.hparams
        generator_optimizer, discriminator_optimizer = self.optimizers()
        x = self.frames(batch, hp.mirror_probability)
        rotation = self.random_views(x)

        self.toggle_optimizer(generator_optimizer)
        losses, fake = self.generator_losses(x, rotation)
        generator_loss = sum(losses.values())
        generator_optimizer.zero_grad()
        self.manual_backward(generator_loss)
        generator_optimizer.step()
        self.untoggle_optimizer(generator_optimizer)

        self.toggle_optimizer(discriminator_optimizer)
        real_logits, fake_logits = self.discriminator(x), self.discriminator(fake.detach())
        d_loss = discriminator_loss(real_logits, fake_logits, hp.adversarial, hp.real_label, hp.flip_probability)
        discriminator_optimizer.zero_grad()
        self.manual_backward(d_loss)
        discriminator_optimizer.step()
        self.untoggle_optimizer(discriminator_optimizer)

        self.log_dict({f"train/g_{name}": value for name, value in losses.items()})
        self.log_dict({"train/g_loss": generator_loss, "train/d_loss": d_loss}, prog_bar=True)
        self.log_dict({"train/d_real": real_logits.sigmoid().mean(), "train/d_fake": fake_logits.sigmoid().mean()})

    def label_free_stats(self, x: Tensor, views) -> dict[str, Tensor]:
        """The discriminator's mean outputs on the validation 2D and on its rotated lifts, and the parts'
        handedness votes (``components.adversarial.chirality_votes``) of the lifted validation poses."""
        stats = {"d_real": self.discriminator(x).sigmoid(), "d_fake": self.discriminator(views.rotated_2d).sigmoid()}
        if self.hparams.sign_calibration:
            pose = self._pose(x, self.lifter.depths(x))
            stats |= {f"handedness_{part}": vote for part, vote in chirality_votes(pose, self.lifter.skeleton).items()}
        return stats

    def after_validation(self, values: dict[str, Tensor]) -> None:
        """Turn every generator whose poses have a mirror twin's handedness on most validation frames.

        The adversarial, cycle and consistency losses cannot tell a part's depths from their reflection, so each
        generator settles on a sign of its own; the anatomy of the lifted validation poses tells which sign is a
        real person's (``val/handedness_torso`` and ``val/handedness_legs``, in [-1, 1]: the mean vote before
        this validation's correction). A solo generator answers to both votes. Label-free; the same decision on
        every process (the votes are reduced across them).
        """
        if not self.hparams.sign_calibration:
            return
        votes = {part: values[f"handedness_{part}"] for part in ("torso", "legs")}
        for index, part in enumerate(self.lifter.part_indices):
            vote = votes[part] if part in votes else votes["torso"] + votes["legs"]
            if vote < 0:
                self.lifter.part_signs[index] *= -1


class DistillationLifting(_FrameLifting):
    """One student for the whole pose, trained with MSE to the frozen teachers' depths (no adversarial term).

    The teachers' weights are read from ``teacher_checkpoint`` when a fit starts from scratch; afterwards they
    are part of this module's own state, so its checkpoints load, test, predict and export without that file.

    Args:
        lifter: the student (e.g. :class:`StudentLifter`); its checkpoint is a lifter like any other.
        teacher: the teachers' lifter (e.g. a torso/legs :class:`PartLifter`), frozen.
        teacher_checkpoint: an ``AdversarialLifting`` checkpoint whose ``lifter.*`` weights load into ``teacher``.
        trust_pickle: unpickle objects in ``teacher_checkpoint`` (only for a file you trust; ``poselift fit``
            writes checkpoints that need no unpickling).
        projection, depth_offset, azimuth_degrees, elevation_degrees, camera_pitch_degrees: of the label-free
            ``val/cycle_2d``, as the teachers were trained.
        lr: Adam learning rate. mirror_probability, mirror: as :class:`AdversarialLifting`.
        input_layout, output_layout, flip_test, flip_val, by_subject: see :class:`LiftingModule`.
    """

    network_joints = LiftingModule.network_joints | {"teacher": {"layout": "input_layout"}}

    def __init__(
        self,
        lifter: nn.Module,
        teacher: nn.Module,
        *,
        teacher_checkpoint: str | None = None,
        trust_pickle: bool = False,
        projection: Literal["orthographic", "perspective"] = "orthographic",
        depth_offset: float = 10.0,
        azimuth_degrees: float = 160.0,
        elevation_degrees: float = 10.0,
        camera_pitch_degrees: float = 0.0,
        lr: float = 2e-4,
        mirror_probability: float = 0.5,
        mirror: Literal["flip", "x_only"] = "flip",
        input_layout: str = "h36m",
        output_layout: str = "h36m",
        flip_test: bool = False,
        flip_val: bool = False,
        by_subject: bool = False,
    ) -> None:
        super().__init__(
            lifter,
            None,
            input_layout=input_layout,
            output_layout=output_layout,
            flip_test=flip_test,
            flip_val=flip_val,
            by_subject=by_subject,
        )
        self.save_hyperparameters()
        self.teacher = teacher
        self.teacher.requires_grad_(False).eval()
        self.validation_stats = nn.ModuleDict({name: MeanMetric() for name in ("cycle_2d", "distillation_mse")})

    def check_fit_inputs(self, resuming: bool) -> None:
        """A fresh fit needs readable teachers' weights that fit ``teacher`` (checked before anything is written)."""
        if not resuming:
            self.teacher.load_state_dict(self.teacher_weights())

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self.trainer.ckpt_path is None:  # resumed fits restore the teachers with the rest
            self.teacher.load_state_dict(self.teacher_weights())

    def teacher_weights(self) -> dict[str, Tensor]:
        """The ``lifter.*`` weights of ``teacher_checkpoint``, checked against ``teacher``.

        Raises:
            ValueError (FileNotFoundError when missing): naming the file and what was expected.
        """
        path = self.hparams.teacher_checkpoint
        if path is None:
            raise InputError(
                "DistillationLifting needs teacher_checkpoint: the teachers' AdversarialLifting checkpoint"
            )
        checkpoint = read_checkpoint(path, self.hparams.trust_pickle, "teacher_checkpoint")
        hyper_parameters = checkpoint.get("hyper_parameters") or {}
        regime, expected_regime = hyper_parameters.get("_class_path"), class_path(AdversarialLifting)
        if regime not in (None, expected_regime):
            raise InputError(f"teacher_checkpoint {path} is a {regime} checkpoint; expected an {expected_regime} one")
        weights = {k.removeprefix("lifter."): v for k, v in checkpoint["state_dict"].items() if k.startswith("lifter.")}
        spec = hyper_parameters.get("lifter")
        layout = spec.get("init_args", {}).get("layout") if isinstance(spec, dict) else None
        mismatches = _mismatched_tensors(weights, self.teacher.state_dict())
        if layout not in (None, self.teacher.skeleton.name) or mismatches:
            teacher = self.teacher
            raise InputError(
                f"teacher_checkpoint {path}: its lifter ({f'layout {layout!r}' if layout else 'weights'}) does not "
                f"fit the configured teacher {type(teacher).__name__}(layout={teacher.skeleton.name!r}, "
                f"parts={teacher.parts!r})" + (f": {'; '.join(mismatches[:3])}" if mismatches else "")
            )
        return weights

    def train(self, mode: bool = True) -> DistillationLifting:
        super().train(mode)
        self.teacher.eval()  # frozen: BatchNorm keeps the teachers' running statistics, dropout stays off
        return self

    def configure_optimizers(self):
        return torch.optim.Adam(self.lifter.parameters(), lr=self.hparams.lr)

    def training_step(self, batch: PoseBatch | Mapping[str, PoseBatch], batch_idx: int) -> Tensor:
        x = self.frames(batch, self.hparams.mirror_probability)
        with torch.no_grad():
            target = self.teacher.depths(x)
        loss = F.mse_loss(self.lifter.depths(x), target)
        self.log("train/distillation_mse", loss, prog_bar=True)
        return loss

    def label_free_stats(self, x: Tensor, views) -> dict[str, Tensor]:
        """How far the student is from its teachers on the validation 2D (no labels involved)."""
        return {"distillation_mse": (self.lifter.depths(x) - self.teacher.depths(x)).square().mean(dim=-1)}


def _mismatched_tensors(saved: dict[str, Tensor], expected: dict[str, Tensor]) -> list[str]:
    """``name: checkpoint (shape), model (shape)`` for tensors missing, unexpected or of another shape."""
    lines = [
        f"{key}: checkpoint {tuple(saved[key].shape) if key in saved else 'missing'}, model {tuple(value.shape)}"
        for key, value in expected.items()
        if key not in saved or saved[key].shape != value.shape
    ]
    return lines + [f"{key}: checkpoint only" for key in sorted(saved.keys() - expected.keys())]
