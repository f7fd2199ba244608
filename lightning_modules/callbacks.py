"""The side concerns of a run, as callbacks that every trainer config adds (``configs/trainer/*.yaml``): the
non-finite-loss guard, per-step reseeding (exact resume), the pose figures, the retrieval report and the protocol
report (printed tables and their files). The regimes compute; these show, write and reseed."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import Tensor

from components.errors import PoseliftError
from components.rendering import pose_figure
from components.retrieval import model_methods, retrieval_report


class NonFiniteLossError(PoseliftError, RuntimeError):
    """Training stopped because a loss was NaN or infinite (the message names epoch, step and checkpoint)."""


class StopOnNonFiniteLoss(pl.Callback):
    """Stop training at the first NaN or infinite loss, after saving a checkpoint of the weights that produced it.

    ``on_before_backward`` runs before every backward pass: the automatic loop's and each ``manual_backward`` of
    the manually optimised regimes (the precision plugin calls it for both). The non-finite gradient is therefore
    never applied, and the saved weights are those left by the last finite update.

    The decision is reduced over processes (any rank non-finite -> every rank stops), so DDP ranks save and stop
    together instead of one rank waiting forever in the next collective. Costs one host sync per backward (one
    tiny all-reduce under DDP).

    Args:
        filename: the checkpoint's name inside the run's checkpoint folder (``RUN/checkpoints/``).
    """

    def __init__(self, filename: str = "nonfinite.ckpt") -> None:
        self.filename = filename

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: Tensor) -> None:
        finite = bool(torch.isfinite(loss.detach()).all())
        if not trainer.strategy.reduce_boolean_decision(not finite, all=False):
            return
        path = self.checkpoint_path(trainer)
        trainer.save_checkpoint(path, weights_only=False)  # every rank calls it (a barrier inside); rank 0 writes
        value = f"loss {float(loss.detach().sum())}" if not finite else "loss on another process"
        raise NonFiniteLossError(
            f"non-finite {value} at epoch {trainer.current_epoch}, step {trainer.global_step} "
            f"(batch {trainer.fit_loop.epoch_loop.batch_idx} of the epoch): training stopped before applying it; "
            f"the weights of the last finite step are saved in {path}"
        )

    def checkpoint_path(self, trainer: pl.Trainer) -> Path:
        """``filename`` in the folder the run's ``ModelCheckpoint`` writes to (else ``<log_dir>/checkpoints``)."""
        callback = trainer.checkpoint_callback
        folder = getattr(callback, "dirpath", None)
        if not folder:
            folder = Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints"
        return Path(folder) / self.filename


class ProtocolReport(pl.Callback):
    """After every test: print the module's protocol tables (titled with its ``report_label``) and write them as
    CSV and JSON next to the evaluated checkpoint (else into the run folder), each file named after the checkpoint
    (``last.test_protocols.csv``) so that two checkpoints of one folder keep their own tables."""

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        folder = report_folder(trainer)  # on every rank: Trainer.log_dir is a collective under DDP
        if not trainer.is_global_zero:
            return
        ckpt = getattr(trainer, "ckpt_path", None)
        prefix = f"{Path(ckpt).stem}." if ckpt else ""
        label = f" | {pl_module.report_label}" if getattr(pl_module, "report_label", "") else ""
        tables = [replace(t, name=prefix + t.name, title=t.title + label) for t in pl_module.last_tables["test"]]
        for table in tables:
            print(table.format(), flush=True)
            if folder is not None:
                table.write(folder)


def report_folder(trainer: pl.Trainer) -> Path | None:
    """Next to the evaluated checkpoint, else the logger's run folder (call on every rank under DDP)."""
    ckpt = getattr(trainer, "ckpt_path", None)
    if ckpt:
        return Path(ckpt).parent
    log_dir = trainer.log_dir
    return Path(log_dir) if log_dir else None


class RetrievalReport(pl.Callback):
    """After every test of a model with an embedding (``lifter.embed``): the cross-view retrieval table of the test
    split's synchronized views, added to ``last_tables["test"]`` (list it before :class:`ProtocolReport`, which
    prints and writes every table). Its frame stride is the model's ``retrieval_stride``."""

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        data = trainer.datamodule
        if not (trainer.is_global_zero and hasattr(pl_module.lifter, "embed") and hasattr(data, "synchronized_views")):
            return
        groups = [group for group in data.synchronized_views("test") if len(group) > 1]
        if groups:
            stride = pl_module.hparams.get("retrieval_stride", 10)
            methods = model_methods(pl_module.eval())
            table = retrieval_report(groups, methods, pl_module.output_skeleton, "test_retrieval", stride=stride)
            pl_module.last_tables["test"].append(table)


class PoseFigures(pl.Callback):
    """Log the first validation batch's middle output frame to TensorBoard: its own 2D input beside the predicted
    and true 3D skeletons (``components.rendering.pose_figure``)."""

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx=0) -> None:
        experiment = getattr(trainer.logger, "experiment", None)
        if batch_idx or trainer.sanity_checking or not trainer.is_global_zero or outputs is None:
            return
        if experiment is not None and hasattr(experiment, "add_figure"):
            skeletons = (pl_module.input_skeleton, pl_module.output_skeleton)
            figure = pose_figure(batch, outputs, *skeletons, pl_module.timing)
            experiment.add_figure("val/poses", figure, trainer.global_step)


class StepReseeding(pl.Callback):
    """Reseed torch's global generator from ``(seed, rank, epoch, batch)`` before every training batch when a seed
    is set (``seed_everything``).

    Dropout and other random draws of a step then depend on the step alone, not on how many draws came before it
    (data loaders draw too, at times that differ between a fresh and a resumed fit), so a fit resumed from
    ``last.ckpt`` continues exactly as the uninterrupted run would: a Lightning checkpoint holds no generator
    state. The data samplers seed per epoch already.
    """

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch, batch_idx: int) -> None:
        seed = os.environ.get("PL_GLOBAL_SEED")
        if seed is not None:
            step = (trainer.current_epoch * 1_000_003 + batch_idx) * 1024 + trainer.global_rank
            torch.manual_seed(int(seed) + step)
