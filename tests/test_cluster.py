"""Cluster launches, run for real on CPU (gloo) as subprocesses: never DDP inside the pytest process.

- torchrun on one node (TorchElasticEnvironment), then resuming from ``last.ckpt`` with ``scripts/torchrun_fit.sh``;
- ``scripts/torchrun_fit.sh`` on two "nodes" of one process each (static rendezvous on localhost);
- ``scripts/slurm_fit.sbatch`` run as SLURM would run it: the batch environment of a 1-node, 2-task job and an
  ``srun`` stand-in that starts one task per ``SLURM_NTASKS_PER_NODE`` with ``SLURM_PROCID``/``SLURM_LOCALID``.
  SLURM's pre-timeout SIGUSR1 is sent by a callback, ``scontrol`` is a stand-in that records its arguments, and
  the requeued job is the same script started again with the same job id.

The fits use ``configs/experiments/synthetic_27f.yaml`` (the full-schedule trainer config, synthetic data) made
tiny. Every trainer config is also checked to write ``last.ckpt`` after every epoch.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "configs/experiments/synthetic_27f.yaml"
TINY = [
    "--data.init_args.synthetic_size", "tiny",
    "--model.init_args.lifter.init_args.channels", "32",
    "--model.init_args.lifter.init_args.filter_widths", "[3, 3]",
    "--trainer.max_epochs", "1",
    "--trainer.accelerator", "cpu",
]  # fmt: skip
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
TIMEOUT = 600
LAUNCHER_VARIABLES = "LOCAL_RANK RANK WORLD_SIZE LOCAL_WORLD_SIZE GROUP_RANK MASTER_ADDR MASTER_PORT".split()


def clean_env(cache_dir: Path, **variables: str) -> dict[str, str]:
    """The test's environment without any launcher's variables (SLURM, torchrun, PL_* overrides), plus ``variables``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLURM_", "TORCHELASTIC_", "PL_")) and key not in LAUNCHER_VARIABLES
    }
    env.update(OMP_NUM_THREADS="1", POSELIFT_CACHE=str(cache_dir), **variables)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def finish(processes: list[subprocess.Popen]) -> list[str]:
    """Wait for all ``processes`` (killing them all if one times out); their combined stdout/stderr."""
    try:
        outputs = [process.communicate(timeout=TIMEOUT)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-4000:]
    return outputs


def launch(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def checkpoint_epoch(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["epoch"]


@pytest.mark.ddp
def test_torchrun_single_node_fits_tests_and_resumes_from_last_checkpoint(tmp_path, cache_dir):
    env = clean_env(cache_dir)
    command = [
        *TORCHRUN, "--standalone", "--nproc_per_node", "2", str(ROOT / "cli.py"), "fit", "-c", str(EXPERIMENT), *TINY,
        "--trainer.devices", "2", "--trainer.strategy", "ddp",
        "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    (output,) = finish([launch(command, env, tmp_path)])
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in output and "GLOBAL_RANK: 1, MEMBER: 2/2" in output
    assert "Starting with 2 processes" in output
    assert "SLURM auto-requeueing enabled" not in output  # torchrun's environment, not SLURM's
    assert "test: all subjects (mm)" in output and "\naverage " in output
    run = tmp_path / "runs/poselift/version_0"
    last = run / "checkpoints/last.ckpt"
    assert checkpoint_epoch(last) == 0

    # the documented resume: the run's config.yaml plus --ckpt_path, through the torchrun script
    env = clean_env(cache_dir, NPROC="2", CONFIG=str(run / "config.yaml"), TORCHRUN=" ".join(TORCHRUN))
    script = ["bash", str(ROOT / "scripts/torchrun_fit.sh"), "--ckpt_path", str(last), "--trainer.max_epochs", "2"]
    (output,) = finish([launch(script, env, tmp_path)])
    assert f"Restored all states from the checkpoint at {last}" in output
    assert "\naverage " in output
    assert checkpoint_epoch(tmp_path / "runs/poselift/version_1/checkpoints/last.ckpt") == 1


@pytest.mark.ddp
def test_torchrun_script_two_nodes_static_rendezvous(tmp_path, cache_dir):
    port = str(free_port())
    nodes = []
    for node_rank in ("0", "1"):
        env = clean_env(
            cache_dir,
            NNODES="2", NODE_RANK=node_rank, NPROC="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
            CONFIG=str(EXPERIMENT), TORCHRUN=" ".join(TORCHRUN),
        )  # fmt: skip
        script = ["bash", str(ROOT / "scripts/torchrun_fit.sh"), *TINY]
        nodes.append(launch(script, env, tmp_path))
    node0, node1 = finish(nodes)
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in node0 and "GLOBAL_RANK: 1, MEMBER: 2/2" in node1
    assert "\naverage " in node0
    assert (tmp_path / "runs/poselift/version_0/checkpoints/last.ckpt").is_file()


class RequeueSignalAtStep(Callback):
    """Sends SIGUSR1 to its own process once, after ``step`` optimizer steps: what ``#SBATCH --signal`` does to
    every task before the time limit (every rank reaches the same step, so all of them get it)."""

    def __init__(self, step: int = 2) -> None:
        self.step, self.sent = step, False

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step == self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGUSR1)


SRUN = """#!/bin/sh
# srun on one node: one task per SLURM_NTASKS_PER_NODE with srun's per-task variables, output in task<i>.out
pids=""
for i in $(seq 0 $((SLURM_NTASKS_PER_NODE - 1))); do
    SLURM_PROCID=$i SLURM_LOCALID=$i "$@" > "task$i.out" 2>&1 &
    pids="$pids $!"
done
status=0
for pid in $pids; do wait "$pid" || status=1; done
exit $status
"""
SCONTROL = """#!/bin/sh
echo "$@" >> scontrol.calls
"""


def slurm_job_id() -> str:
    """A job id whose port (Lightning: 15000 + its last 4 digits, when MASTER_PORT is unset) is free here."""
    for suffix in random.sample(range(1000, 10000), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", 15000 + suffix))
            except OSError:
                continue
        return f"7{suffix}"
    pytest.fail("no free port in 16000-24999")


@pytest.mark.ddp
def test_slurm_batch_script_runs_two_tasks_requeues_and_resumes(tmp_path, cache_dir):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    job_id = slurm_job_id()
    env = clean_env(
        cache_dir,
        PATH=os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]]),
        PYTHONPATH=str(ROOT),  # the tasks import RequeueSignalAtStep from this module
        CONFIG=str(EXPERIMENT),
        # what sbatch sets for --nodes=1 --ntasks-per-node=2 (MASTER_ADDR/PORT derived by Lightning from these)
        SLURM_JOB_ID=job_id, SLURM_JOB_NAME="poselift", SLURM_NNODES="1", SLURM_NODEID="0",
        SLURM_NTASKS="2", SLURM_NTASKS_PER_NODE="2", SLURM_NODELIST="localhost", SLURM_STEP_NODELIST="localhost",
    )  # fmt: skip
    requeue_signal = f"--trainer.callbacks+={__name__}.RequeueSignalAtStep"
    script = ["bash", str(ROOT / "scripts/slurm_fit.sbatch"), *TINY, requeue_signal]

    finish([launch(script, env, tmp_path)])
    rank0, rank1 = ((tmp_path / f"task{i}.out").read_text() for i in (0, 1))
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in rank0 and "GLOBAL_RANK: 1, MEMBER: 2/2" in rank1
    assert "SLURM auto-requeueing enabled" in rank0 and "SLURM auto-requeueing enabled" in rank1
    assert f"Requeued SLURM job: {job_id}" in rank0
    assert (tmp_path / "scontrol.calls").read_text().split() == ["requeue", job_id]
    hpc = Path(f"runs/slurm-{job_id}/hpc_ckpt_1.ckpt")  # relative to the job's working directory
    assert (tmp_path / hpc).is_file()
    assert "\naverage " in rank0 and "\naverage " not in rank1
    run = tmp_path / f"runs/poselift/slurm-{job_id}"
    last = run / "checkpoints/last.ckpt"
    assert last.is_file()

    # the requeued job: the same script and job id; it resumes from the hpc checkpoint even when given a --ckpt_path
    finish([launch([*script, "--ckpt_path", str(last)], env, tmp_path)])
    rank0 = (tmp_path / "task0.out").read_text()
    assert f"Restoring states from the checkpoint path at {hpc}" in rank0
    assert "\naverage " in rank0
    assert [path.name for path in run.parent.iterdir()] == [run.name]


def model_checkpoints(config: Path) -> list[dict]:
    callbacks = yaml.safe_load(config.read_text()).get("callbacks") or []
    return [c for c in callbacks if c["class_path"].rsplit(".", 1)[-1] == "ModelCheckpoint"]


TRAINER_CONFIGS = sorted(p for p in (ROOT / "configs/trainer").glob("*.yaml") if model_checkpoints(p))


class WorseningModel(BoringModel):
    """Logs every monitored metric getting worse each epoch, so only an unconditional save refreshes last.ckpt."""

    def __init__(self, monitors: dict[str, str]) -> None:
        super().__init__()
        self.monitors = monitors

    def validation_step(self, batch, batch_idx):
        for name, mode in self.monitors.items():
            self.log(name, float(self.current_epoch if mode == "min" else -self.current_epoch))


@pytest.mark.parametrize("config", TRAINER_CONFIGS, ids=lambda p: p.name)
def test_trainer_config_writes_last_checkpoint_every_epoch(config, tmp_path):
    callbacks, monitors = [], {}
    for entry in model_checkpoints(config):
        module, name = entry["class_path"].rsplit(".", 1)
        init_args = {**entry.get("init_args", {}), "dirpath": tmp_path}
        callbacks.append(getattr(import_module(module), name)(**init_args))
        if init_args.get("monitor"):
            monitors[init_args["monitor"]] = init_args.get("mode", "min")
    assert all(isinstance(c, ModelCheckpoint) for c in callbacks)
    trainer = pl.Trainer(
        max_epochs=3, limit_train_batches=2, limit_val_batches=1, callbacks=callbacks, logger=False,
        accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(WorseningModel(monitors))
    # save_last=True on a monitored ModelCheckpoint is not enough: Lightning refreshes that last.ckpt only when
    # the same callback saved a top-k checkpoint at that step, i.e. when its metric improved
    assert sorted(p.name for p in tmp_path.glob("last*.ckpt")) == ["last.ckpt"], f"{config.name} writes no last.ckpt"
    assert checkpoint_epoch(tmp_path / "last.ckpt") == 2, f"{config.name}: last.ckpt is not refreshed every epoch"


def sync_batchnorm_lifters() -> list[torch.nn.Module]:
    from components.networks.residual_mlp import PartLifter
    from components.networks.temporal_conv import TemporalConvLifter

    return [TemporalConvLifter(17, 17, filter_widths=(3, 3), channels=32), PartLifter(width=32, blocks=1)]


@pytest.mark.parametrize("lifter", sync_batchnorm_lifters(), ids=lambda m: type(m).__name__)
def test_sync_batchnorm_option_converts_every_batchnorm_and_keeps_weights_and_outputs(lifter):
    """``--trainer.sync_batchnorm true`` (GPU DDP) swaps BatchNorm layers for SyncBatchNorm by
    ``convert_sync_batchnorm``: checkpoints stay interchangeable and evaluation is unchanged."""
    from copy import deepcopy

    from torch import nn

    batch_norms = [m for m in lifter.modules() if isinstance(m, nn.BatchNorm1d)]
    assert batch_norms
    for index, bn in enumerate(batch_norms):  # non-trivial running statistics
        bn.running_mean.fill_(0.01 * index)
        bn.running_var.fill_(1.0 + 0.1 * index)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(deepcopy(lifter))
    assert not [m for m in converted.modules() if type(m) is nn.BatchNorm1d]
    assert len([m for m in converted.modules() if isinstance(m, nn.SyncBatchNorm)]) == len(batch_norms)
    original, synced = lifter.state_dict(), converted.state_dict()
    assert original.keys() == synced.keys() and all(torch.equal(original[k], synced[k]) for k in original)
    keypoints = torch.randn(2, lifter.receptive_field + 4, 17, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(converted.eval()(keypoints), lifter.eval()(keypoints), rtol=0, atol=0)
    if hasattr(converted, "set_bn_momentum"):  # the BatchNorm momentum schedule still reaches every layer
        converted.set_bn_momentum(0.05)
        assert {m.momentum for m in converted.modules() if isinstance(m, nn.SyncBatchNorm)} == {0.05}
