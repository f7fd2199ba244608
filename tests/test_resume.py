"""Resume after a crash: a fit killed with SIGKILL mid-epoch and resumed from ``last.ckpt`` ends exactly where an
uninterrupted run with the same seed ends (weights bit for bit, the best score and the test table), and two runs
with the same seed and deterministic algorithms agree. Every fit is a real ``poselift fit`` subprocess on CPU.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
KILL_EPOCH = "POSELIFT_TEST_KILL_EPOCH"
SMALL = [
    "--data.init_args.synthetic_size", "tiny",
    "--model.init_args.lifter.init_args.channels", "32",
    "--model.init_args.lifter.init_args.filter_widths", "[3, 3]",
    "--trainer.max_epochs", "2",
    "--trainer.accelerator", "cpu",
    "--trainer.callbacks+=tests.test_resume.KillAtEpoch",
    "--trainer.logger.init_args.save_dir", "runs",
    "--trainer.logger.init_args.name", "run",
]  # fmt: skip
REGIMES = {
    "supervised": ["-c", str(ROOT / "configs/experiments/synthetic_27f.yaml")],
    # back-projection: labeled and unlabeled loaders combined, the unlabeled loss switched on after warm-up
    "back_projection": [
        "-c", str(ROOT / "configs/experiments/synthetic_semi.yaml"),
        "--model.init_args.trajectory_model.init_args.channels", "32",
        "--model.init_args.trajectory_model.init_args.filter_widths", "[3, 3]",
        "--model.init_args.warmup_epochs", "1",
        "--data.init_args.batch_size", "64",
    ],
}  # fmt: skip


class KillAtEpoch(Callback):
    """SIGKILLs its own process at the second training batch of epoch ``$POSELIFT_TEST_KILL_EPOCH`` (inert when the
    variable is unset): a crash in the middle of an epoch, after the previous epoch's ``last.ckpt``."""

    def on_train_batch_start(self, trainer: pl.Trainer, module, batch, batch_idx: int) -> None:
        epoch = os.environ.get(KILL_EPOCH)
        if epoch is not None and trainer.current_epoch == int(epoch) and batch_idx == 1:
            os.kill(os.getpid(), signal.SIGKILL)


def poselift_fit(cwd: Path, args: list[str], **variables: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != KILL_EPOCH}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), POSELIFT_CACHE=str(cwd.parent / "cache"), **variables)
    command = [sys.executable, str(ROOT / "cli.py"), "fit", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def fit_ok(cwd: Path, args: list[str]) -> Path:
    """Run a fit to its end; its run folder."""
    cwd.mkdir(parents=True, exist_ok=True)
    result = poselift_fit(cwd, args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = sorted((cwd / "runs/run").iterdir())[-1:]
    return run


def outcome(run: Path) -> tuple[dict[str, torch.Tensor], float, str]:
    """Final weights, the best checkpoint's score and the test tables of the last and the best checkpoint."""
    last = torch.load(run / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    (score,) = [s["best_model_score"] for k, s in last["callbacks"].items() if "'monitor': 'val/p1_mm'" in k]
    tables = sorted((run / "checkpoints").glob("*.test_protocols.csv"))  # last and best
    assert len(tables) == 2
    return last["state_dict"], float(score), "".join(f"{t.name}\n{t.read_text()}" for t in tables)


def assert_same(first: tuple, second: tuple) -> None:
    weights, score, table = first
    other_weights, other_score, other_table = second
    assert weights.keys() == other_weights.keys()
    for name, value in weights.items():
        assert torch.equal(value, other_weights[name]), name
    assert score == other_score
    assert table == other_table


@pytest.mark.parametrize("regime", REGIMES)
def test_fit_killed_mid_epoch_resumes_to_the_uninterrupted_result(regime, tmp_path):
    args = [*REGIMES[regime], *SMALL]
    uninterrupted = outcome(fit_ok(tmp_path / "uninterrupted", args))

    crashed = tmp_path / "crashed"
    crashed.mkdir()
    killed = poselift_fit(crashed, args, **{KILL_EPOCH: "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run = crashed / "runs/run/version_0"
    assert torch.load(run / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)["epoch"] == 0

    resumed = fit_ok(crashed, ["-c", str(run / "config.yaml"), "--ckpt_path", str(run / "checkpoints/last.ckpt")])
    assert resumed.name == "version_1"
    assert_same(outcome(resumed), uninterrupted)


def test_two_seeded_deterministic_runs_agree(tmp_path):
    args = [*REGIMES["supervised"], *SMALL, "--trainer.deterministic", "true"]
    first = outcome(fit_ok(tmp_path / "first", args))
    assert_same(outcome(fit_ok(tmp_path / "second", args)), first)
