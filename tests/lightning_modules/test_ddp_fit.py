"""Real 2-process DDP fits on CPU (gloo), run as subprocesses: never inside the pytest process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--data.init_args.synthetic_size", "tiny",
    "--model.init_args.lifter.init_args.channels", "32",
    "--model.init_args.lifter.init_args.filter_widths", "[3, 3]",
    "--trainer.max_epochs", "2",
    "--trainer.accelerator", "cpu",
    "--trainer.devices", "2",
    "--trainer.strategy", "ddp",
]  # fmt: skip


def run_cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "POSELIFT_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, str(ROOT / "cli.py"), "fit", *args, "--trainer.logger.init_args.save_dir", str(tmp_path)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)


@pytest.mark.ddp
def test_back_projection_fits_and_tests_under_two_process_ddp(tmp_path):
    result = run_cli(
        tmp_path,
        "-c", str(ROOT / "configs/experiments/synthetic_semi.yaml"), *TINY,
        "--model.init_args.trajectory_model.init_args.channels", "32",
        "--model.init_args.trajectory_model.init_args.filter_widths", "[3, 3]",
        "--model.init_args.warmup_epochs", "1",
        "--data.init_args.batch_size", "32",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "world_size: 2" in output or "distributed_backend=gloo" in output
    assert "Grad strides do not match bucket view strides" not in output  # gradients in the parameters' layout
    assert "test: all subjects (mm)" in result.stdout and "average" in result.stdout
    (table,) = tmp_path.glob("quickstart/version_0/checkpoints/best-*.test_protocols.csv")
    assert table.read_text().splitlines()[0] == "action,P1,P2,P3,MPJVE,traj"


@pytest.mark.ddp
def test_multiview_fits_and_tests_under_two_process_ddp(tmp_path):
    result = run_cli(
        tmp_path,
        "-c", str(ROOT / "configs/experiments/synthetic_multiview.yaml"), *TINY,
        "--model.init_args.lifter.init_args.head_channels", "32",
        "--model.init_args.retrieval_stride", "5",
        "--data.init_args.batch_size", "32",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "test: all subjects (mm)" in result.stdout and "cross-view retrieval" in result.stdout
    (table,) = tmp_path.glob("quickstart/version_0/checkpoints/best-*.test_retrieval.csv")
    assert table.read_text().splitlines()[0] == "method,Hit@1,Hit@5,Hit@10,mAP@10,exact@1"


@pytest.mark.ddp
def test_adversarial_weights_stay_identical_under_two_process_ddp(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "POSELIFT_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, str(ROOT / "tests/scripts/ddp_adversarial.py"), str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "DDP ADVERSARIAL OK" in result.stdout


@pytest.mark.ddp
@pytest.mark.parametrize("regime", ["supervised", "seq2seq", "adversarial"])
def test_two_process_test_metrics_equal_single_process_on_an_odd_test_set(regime, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "POSELIFT_CACHE": str(tmp_path / "cache")}
    for mode in ("ddp", "single"):
        command = [sys.executable, str(ROOT / "tests/scripts/ddp_exact_eval.py"), regime, mode, str(tmp_path)]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ddp, single = (json.loads((tmp_path / f"{mode}.json").read_text()) for mode in ("ddp", "single"))
    assert (ddp["world_size"], single["world_size"]) == (2, 1)
    assert ddp["chunks"] == single["chunks"] and ddp["chunks"] % 2 == 1
    assert ddp["metrics"].keys() == single["metrics"].keys() and "test/p2_mm" in ddp["metrics"]
    for name, value in single["metrics"].items():
        assert ddp["metrics"][name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
