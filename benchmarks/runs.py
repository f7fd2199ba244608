"""Shared by the study scripts: one CLI fit and the test table of its last checkpoint, the study sets' data
options, and the mean-pose baseline."""

from __future__ import annotations

import time
from pathlib import Path

import lightning.pytorch as pl
from torch import Tensor, nn

import cli
from datamodules.base import PoseDataModule
from lightning_modules.base import LiftingModule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DATASETS = ("synthetic", "mocap")
"""The study sets: the synthetic default, and the real-motion set (:mod:`real_motion`)."""


def dataset_overrides(dataset: str) -> list[str]:
    """CLI options that point a Human3.6M experiment at a study set (its files are built on first use)."""
    if dataset == "synthetic":
        return []
    from real_motion import ensure_real_motion_set

    return ["--data.init_args.data_dir", str(ensure_real_motion_set())]


def table_rows(tables, index: int = 0) -> dict[str, dict[str, float]]:
    """Every row of one test table: row label -> column -> value."""
    table = tables[index]
    return {label: dict(zip(table.columns, values, strict=True)) for label, values in table.rows}


def averages(module: LiftingModule, summary: str = "average") -> dict[str, float]:
    """The summary row of the module's latest test table (Human3.6M: action-wise means in mm)."""
    return table_rows(module.last_tables["test"])[summary]


def fit_and_test(
    experiment: str, out: Path, name: str, epochs: int, *overrides: str, summary: str = "average", table: int = 0
) -> dict[str, float]:
    """``poselift fit -c configs/experiments/<experiment>`` into ``out/name`` with no validation (so nothing is
    selected: the study reports the last checkpoint after a fixed budget); the summary row of its test table."""
    tables = fit(experiment, out, name, epochs, *overrides).model.checkpoint_tables["last"]
    return table_rows(tables, table)[summary]


def fit(experiment: str, out: Path, name: str, epochs: int, *overrides: str) -> cli.PoseliftCLI:
    """The fitted CLI run (``run.model.checkpoint_tables["last"]`` holds the last checkpoint's test tables)."""
    return cli.lightning_main(
        [
            "fit",
            "-c", str(CONFIGS / "experiments" / experiment),
            "--trainer.max_epochs", str(epochs),
            "--trainer.limit_val_batches", "0",
            "--trainer.logger.init_args.save_dir", str(out),
            "--trainer.logger.init_args.name", name,
            *overrides,
        ]
    )  # fmt: skip


def last_checkpoint(out: Path, name: str) -> Path:
    """The last checkpoint of the run ``out/name`` (written by :func:`fit`)."""
    (path,) = (out / name).glob("version_*/checkpoints/last.ckpt")
    return path


class CpuTimeBudget(pl.Callback):
    """Stop a fit once its process has used ``seconds`` of CPU time since training started.

    Arms compared "at equal time" on a shared machine would otherwise get whatever the other jobs leave them: CPU
    time is the cost each arm actually consumed (single-threaded runs: ``OMP_NUM_THREADS=1``). Checked after every
    training batch; the epoch in progress ends there and the fit ends with its last checkpoint.
    Use: ``--trainer.callbacks+=runs.CpuTimeBudget --trainer.callbacks.seconds 180``.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start = seconds, 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.process_time()

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if time.process_time() - self.start >= self.seconds:
            trainer.should_stop = True


class MeanPose(nn.Module):
    """A 'lifter' that ignores its input and returns one fixed pose ``(J, 3)`` for every frame."""

    receptive_field, causal = 1, False

    def __init__(self, pose: Tensor) -> None:
        super().__init__()
        self.register_buffer("pose", pose)

    def forward(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor:
        batch, frames = keypoints_2d.shape[:2]
        return self.pose.expand(batch, frames, *self.pose.shape)


class Baseline(LiftingModule):
    """A fixed 'lifter' scored by the shared evaluation, scale-free when it stands in for unsupervised lifters."""

    def __init__(self, lifter: nn.Module, scale_free: bool = False) -> None:
        super().__init__(lifter, flip_test=False)
        self.scale_free = scale_free

    @property
    def scale_free_output(self) -> bool:
        return self.scale_free


def test_baseline(lifter: nn.Module, data: PoseDataModule, scale_free: bool = False) -> LiftingModule:
    """Test a fixed one-frame 'lifter' on ``data``'s test split; returns the tested module (``last_tables``)."""
    module = Baseline(lifter, scale_free)
    pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False).test(module, datamodule=data)
    return module


def mean_pose_baseline(data: PoseDataModule, scale_free: bool = False) -> LiftingModule:
    """Test the training split's mean root-relative pose on ``data``'s test split; returns the tested module.
    ``data`` must not be set up yet (it is given the mean pose's one-frame timing)."""
    data.set_timing(1, causal=False)
    data.setup("test")
    store = data.stores["train"]
    mean = store.poses_3d[: store.size].mean(dim=0)  # unflipped windows only
    return test_baseline(MeanPose(mean), data, scale_free)
