"""Training guards that every trainer config adds (``configs/trainer/*.yaml``)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import Tensor

from components.errors import PoseliftError


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
