"""LiftingModule: the lifter, its evaluation and the shared validation / test / predict steps.

Every regime subclasses it and writes its own ``training_step`` (and ``configure_optimizers``); evaluation is
written once here so that all regimes report comparable numbers.

A lifter maps ``(B, T_in, J_in, F)`` screen-normalised 2D to ``(B, T_in - receptive_field + 1, J_out, 3)``
root-relative camera-space poses in metres, exposes ``receptive_field`` and ``causal``, and accepts
``strided=True`` for training windows of exactly ``receptive_field`` frames (its fast single-frame twin).
"""

from __future__ import annotations

import lightning.pytorch as pl
from torch import Tensor, nn

from components.batch import PoseBatch
from components.errors import InputError
from components.evaluation import ActionwiseProtocol
from components.geometry import flip_horizontal
from components.lifter import Timing, check_lifter, check_window_frames
from components.report import ResultTable
from components.skeleton import layout
from lightning_modules.checkpoints import check_architecture, complete_specs

EVAL_STAGES = ("val", "test")


class LiftingModule(pl.LightningModule):
    """Shared evaluation for every regime.

    Args:
        lifter: the 2D -> 3D network (see the module docstring for its contract).
        trajectory_model: optional network of the same contract with one output joint: the root position in
            camera space; its error is reported as ``traj``.
        input_layout, output_layout: skeleton layouts of the 2D input and 3D output (flip needs the names).
        flip_test: average the prediction with the un-mirrored prediction of the mirrored input at test time.
        flip_val: the same during validation (off by default, as in the published protocol).
        by_subject: also report the protocol table per subject.
    """

    network_joints: dict[str, dict[str, str]] = {
        "lifter": {"num_joints_in": "input_count", "num_joints_out": "output_count", "layout": "input_layout"},
        "trajectory_model": {"num_joints_in": "input_count"},  # its one output joint is its own setting
    }
    """What each network argument's skeleton settings follow: ``{argument: {network parameter: source}}`` with
    source ``input_count``/``output_count`` (joints of the data's input/output layout) or ``input_layout`` (the
    name). The CLI fills them from the data (so no joint count is typed); a regime with other networks extends
    it. A network class without such a parameter is left alone."""

    def __init__(
        self,
        lifter: nn.Module,
        trajectory_model: nn.Module | None = None,
        *,
        input_layout: str = "h36m",
        output_layout: str = "h36m",
        flip_test: bool = True,
        flip_val: bool = False,
        by_subject: bool = False,
    ) -> None:
        super().__init__()
        timing = check_lifter(lifter)
        if trajectory_model is not None and check_lifter(trajectory_model, "trajectory_model") != timing:
            raise InputError(
                f"trajectory_model has timing {Timing.of(trajectory_model)}, the lifter {timing}: both must see "
                "the same frames (set the same filter widths and causality)"
            )
        if getattr(trajectory_model, "input_normalization", "screen") != "screen":
            raise InputError(
                "trajectory_model has input_normalization 'person', which discards the position it must read: "
                "give it input_normalization 'screen' (the lifter may keep 'person')"
            )
        self.lifter, self.trajectory_model = lifter, trajectory_model
        self.input_skeleton, self.output_skeleton = layout(input_layout), layout(output_layout)
        self.flip = {"val": flip_val, "test": flip_test, "predict": flip_test}
        self.by_subject = by_subject
        self.metrics = nn.ModuleDict()
        self.last_tables: dict[str, list[ResultTable]] = {}
        self.report_label = ""  # which checkpoint a test table belongs to (set by ``fit``, which tests two)
        self.checkpoint_tables: dict[str, list[ResultTable]] = {}  # fit's test tables: "last", "best"

    # -- the lifter's timing, read by the data (linked by the CLI) ------------------------------------------
    @property
    def timing(self) -> Timing:
        """The lifter's timing (``components.lifter.Timing``)."""
        return Timing.of(self.lifter)

    @property
    def receptive_field(self) -> int:
        return self.timing.receptive_field

    @property
    def causal(self) -> bool:
        return self.timing.causal

    @property
    def scale_free_output(self) -> bool:
        """Whether the lifter's poses lack a metric scale (then evaluation aligns scale first)."""
        return False

    @property
    def training_streams(self) -> tuple[str, ...]:
        """The data this regime trains on (``datamodules.base.STREAMS``), labeled windows first; the datamodule
        serves them, batched by stream name when there are several."""
        return ("labeled",)

    # -- prediction ------------------------------------------------------------------------------------------
    def lift(self, keypoints_2d: Tensor, model: nn.Module | None = None, flip: bool = False) -> Tensor:
        """Run ``model`` (default: the lifter) on whole windows; with ``flip`` average with the mirrored input.

        Args:
            keypoints_2d: ``(B, T_in, J_in, F)``. Returns ``(B, T_out, J_out, 3)`` (or ``(B, T_out, 1, 3)``).
        """
        model = self.lifter if model is None else model
        pred = model(keypoints_2d)
        if flip:
            mirrored = model(flip_horizontal(keypoints_2d, self.input_skeleton))
            if pred.shape[-2] == self.output_skeleton.num_joints:
                mirrored = flip_horizontal(mirrored, self.output_skeleton)
            else:  # a trajectory: only x changes sign
                mirrored = mirrored * mirrored.new_tensor([-1.0, 1.0, 1.0])
            pred = (pred + mirrored) / 2
        return pred

    # -- evaluation ------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """One evaluation protocol per stage, chosen by the datamodule (Human3.6M action-wise by default)."""
        data = self.trainer.datamodule if self._trainer is not None else None
        trajectory = self.trajectory_model is not None
        for stage_name in EVAL_STAGES:
            if hasattr(data, "evaluation_protocol"):
                protocol = data.evaluation_protocol(trajectory, self.by_subject, self.scale_free_output)
            else:
                protocol = ActionwiseProtocol(trajectory=trajectory, scale_free=self.scale_free_output)
            self.metrics[stage_name] = protocol

    def _evaluate(self, batch: PoseBatch, stage: str) -> Tensor:
        if not batch.labeled:
            raise InputError(f"{stage} batches need 3D targets: the {stage} split is unlabeled")
        flip = self.flip[stage]
        pred = self.lift(batch.keypoints_2d, flip=flip)
        trajectory = None
        if self.trajectory_model is not None and batch.trajectory is not None:
            trajectory = self.lift(batch.keypoints_2d, self.trajectory_model, flip)
        self.metrics[stage].update(batch, pred, trajectory)
        return pred

    def validation_step(self, batch: PoseBatch, batch_idx: int) -> Tensor:
        """Score the batch; returns the predictions (the pose-figure callback draws them)."""
        return self._evaluate(batch, "val")

    def test_step(self, batch: PoseBatch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: PoseBatch, batch_idx: int) -> dict[str, Tensor]:
        """Poses ``(B, T_out, J_out, 3)`` (and ``trajectory`` when a trajectory model exists) with their ids.

        The root joint is set to exactly zero: a lifter learns it as zero but outputs it with a small error, and
        users read ``poses_3d`` as root-relative (evaluation scores the raw output, as the published protocols do).
        """
        poses = self.lift(batch.keypoints_2d, flip=self.flip["predict"])
        poses[..., self.output_skeleton.root, :] = 0.0
        out = {"poses_3d": poses}
        if self.trajectory_model is not None:
            out["trajectory"] = self.lift(batch.keypoints_2d, self.trajectory_model, self.flip["predict"])
        return out | {"sequence": batch.sequence, "start": batch.start}

    def on_validation_epoch_end(self) -> None:
        values = self._log_stage("val")
        if "p1_mm" in values:
            self.log("hp/val_p1_mm", values["p1_mm"], sync_dist=True)

    def on_test_epoch_end(self) -> None:
        """Log the headline numbers and keep the tables in ``last_tables["test"]`` (the protocol-report callback
        prints and writes them)."""
        self._log_stage("test")
        self.last_tables["test"] = self.result_tables("test")
        self.metrics["test"].reset()

    def _log_stage(self, stage: str) -> dict[str, float]:
        """Log the protocol's headline numbers (every rank computes: it syncs); returns them."""
        values = self.metrics[stage].summary()
        for name, value in values.items():
            self.log(f"{stage}/{name}", value, sync_dist=True)
        if stage == "val":
            self.metrics["val"].reset()
        return values

    def result_tables(self, stage: str) -> list[ResultTable]:
        """The stage's protocol tables (see ``components.evaluation``)."""
        return self.metrics[stage].tables(stage)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Complete every network spec of the hyper-parameters from the live networks (linked arguments such as
        joint counts are missing from the CLI's specs), so the checkpoint rebuilds its networks on its own."""
        hyper_parameters = checkpoint.get("hyper_parameters", {})
        networks = {name: getattr(self, name, None) for name in hyper_parameters}
        complete_specs(hyper_parameters, {k: v for k, v in networks.items() if isinstance(v, nn.Module)})

    def check_fit_inputs(self, resuming: bool) -> None:
        """Raise for inputs of the regime that a fit would only meet later (``poselift fit`` calls it before
        anything is written); ``resuming`` says the fit continues a checkpoint. Nothing to check here."""

    def check_window_lengths(self, datamodule: object, subcommand: str) -> None:
        """Raise before anything runs when the data's windows (training ``chunk_length``, evaluation
        ``eval_chunk_length``, in output frames) are longer than the lifter takes (``components.lifter``)."""
        extra = self.receptive_field - 1
        options = [("eval_chunk_length", getattr(datamodule, "eval_chunk_length", None))]
        if subcommand == "fit":
            options.append(("chunk_length", getattr(datamodule, "chunk_length", 1)))
        for option, frames in options:
            check_window_frames(self.lifter, None if frames is None else frames + extra, f"data {option}")

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse weights of another architecture by naming what differs, before Lightning's strict load (whose
        size-mismatch list names tensors, not the widths or joint counts that caused it)."""
        source = getattr(self._trainer, "ckpt_path", None) if self._trainer is not None else None
        check_architecture(checkpoint, self, f"checkpoint {source}" if source else "checkpoint")

    def on_fit_start(self) -> None:
        if self.logger is not None and hasattr(self.logger, "log_hyperparams"):
            self.logger.log_hyperparams(self.hparams, {"hp/val_p1_mm": float("nan")})
