"""Every regime through the poselift command, and checkpoints that stand on their own.

- Each adversarial stage (teachers, solo, student) runs fit -> test -> predict -> export through ``cli.main`` on
  the synthetic Human3.6M default and on synthetic MPI-INF-3DHP.
- A checkpoint of each regime, trained through the CLI, loads with ``load_from_checkpoint`` (no unpickling),
  tests, predicts and exports on its own; the student's with its teachers' file deleted.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

import cli
from lightning_modules.adversarial import AdversarialLifting, DistillationLifting
from lightning_modules.back_projection import BackProjectionLifting
from lightning_modules.checkpoints import load_lifting_module
from lightning_modules.multiview import MultiviewLifting
from lightning_modules.supervised import SupervisedLifting

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FAST = ["--data.init_args.synthetic_size", "tiny", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
        "--data.init_args.batch_size", "256"]  # fmt: skip
DATASETS = {"h36m": "synthetic_adversarial", "3dhp": "synthetic_3dhp_adversarial"}


def fit(root: Path, experiment: str, *overrides: str) -> Path:
    """``poselift fit`` of ``configs/experiments/<experiment>.yaml`` into ``root``; the run folder."""
    args = ["fit", "-c", str(CONFIGS / f"experiments/{experiment}.yaml"), *FAST, *overrides]
    assert cli.main([*args, "--trainer.logger.init_args.save_dir", str(root)]) == 0
    (run,) = root.glob("*/version_*")
    return run


def small(stage: str) -> list[str]:
    """Options that make a stage's networks 32 wide with one residual block."""
    networks = ("lifter", "teacher") if stage == "student" else ("lifter", "discriminator")
    sizes = (("width", "32"), ("blocks", "1"))
    return [v for net in networks for arg, size in sizes for v in (f"--model.init_args.{net}.init_args.{arg}", size)]


@pytest.fixture(scope="module")
def adversarial_runs(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Teachers, solo and student fitted through the CLI on both datasets (the student from these teachers)."""
    runs = {}
    for dataset, prefix in DATASETS.items():
        for stage in ("teachers", "solo", "student"):
            root = tmp_path_factory.mktemp(f"{dataset}_{stage}")
            extra = []
            if stage == "student":
                (teachers,) = runs[dataset, "teachers"].glob("checkpoints/best-*.ckpt")
                extra = ["--model.init_args.teacher_checkpoint", str(teachers)]
            runs[dataset, stage] = fit(root, f"{prefix}_{stage}", *small(stage), *extra)
    return runs


def _rows(path: Path) -> dict[str, dict[str, str]]:
    rows = list(csv.DictReader(path.open()))
    label = next(iter(rows[0]))
    return {row[label]: row for row in rows}


@pytest.mark.parametrize("stage", ["teachers", "solo", "student"])
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_adversarial_stage_fit_test_predict_export(adversarial_runs, dataset, stage, tmp_path):
    run = adversarial_runs[dataset, stage]
    (best,) = run.glob("checkpoints/best-*.ckpt")
    assert (run / "checkpoints/last.ckpt").is_file()
    table = "test_protocols" if dataset == "h36m" else "test_3dhp_sequences"
    fitted = _rows(best.parent / f"{best.stem}.{table}.csv")
    summary = "average" if dataset == "h36m" else "all"
    headline = "P2" if dataset == "h36m" else "PCK"
    assert 0 < float(fitted[summary][headline]) < (1000 if dataset == "h36m" else 100.1)

    copy = tmp_path / "model.ckpt"
    shutil.copy(best, copy)
    assert cli.main(["test", "-c", str(run / "config.yaml"), "--ckpt_path", str(copy)]) == 0
    assert _rows(tmp_path / f"model.{table}.csv")[summary][headline] == fitted[summary][headline]

    result = cli.lightning_main(["predict", "-c", str(run / "config.yaml"), "--ckpt_path", str(copy)])
    frames = sum(len(s) for s in result.datamodule.sequences["test"])
    predictions = result.trainer.predict_loop.predictions
    assert sum(p["poses_3d"][..., 0, 0].numel() for p in predictions) == frames

    out = tmp_path / "lifter.pt"
    assert cli.main(["export", "--ckpt_path", str(copy), "--format", "torchscript", "--out", str(out)]) == 0
    exported, lifter = torch.jit.load(str(out)), load_lifting_module(copy).lifter
    x = torch.randn(2, 5, 17, 2)
    assert torch.allclose(exported(x), lifter(x), atol=1e-5)


def test_student_checkpoint_stands_on_its_own(adversarial_runs, tmp_path):
    run = adversarial_runs["h36m", "student"]
    (best,) = run.glob("checkpoints/best-*.ckpt")
    moved = tmp_path / "student.ckpt"
    shutil.copy(best, moved)
    teachers = Path(torch.load(moved, weights_only=True)["hyper_parameters"]["teacher_checkpoint"])
    away = tmp_path / "away"
    shutil.move(teachers.parents[1], away)  # the teachers' run is gone (put back for the other tests)
    try:
        assert not teachers.exists()
        _stands_on_its_own(DistillationLifting, moved, run, tmp_path)
    finally:
        shutil.move(away, teachers.parents[1])


def test_teachers_checkpoint_stands_on_its_own(adversarial_runs, tmp_path):
    (best,) = adversarial_runs["3dhp", "solo"].glob("checkpoints/best-*.ckpt")
    module = _stands_on_its_own(AdversarialLifting, best, adversarial_runs["3dhp", "solo"], tmp_path)
    assert module.discriminator.num_joints == 17  # linked from the data by the CLI, completed in the checkpoint


def _stands_on_its_own(regime, checkpoint: Path, run: Path, tmp_path: Path) -> pl.LightningModule:
    """``load_from_checkpoint`` without unpickling; the same weights; test, predict and export work."""
    module = regime.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert saved.keys() == module.state_dict().keys()
    assert all(torch.equal(value, module.state_dict()[key]) for key, value in saved.items())
    _, data = cli.instantiate_from_config(str(run / "config.yaml"))
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.test(module, datamodule=data)
    assert len(module.last_tables["test"]) >= 1
    predictions = trainer.predict(module, datamodule=data)
    assert sum(p["poses_3d"][..., 0, 0].numel() for p in predictions) == sum(len(s) for s in data.sequences["test"])
    out = tmp_path / "lifter.pt"
    assert cli.main(["export", "--ckpt_path", str(checkpoint), "--format", "torchscript", "--out", str(out)]) == 0
    return module


@pytest.mark.parametrize(
    "experiment, regime, overrides",
    [
        ("quickstart", SupervisedLifting, ["--model.init_args.lifter.init_args.channels", "32"]),
        ("synthetic_semi", BackProjectionLifting,
         ["--model.init_args.lifter.init_args.channels", "32", "--model.init_args.warmup_epochs", "0",
          "--model.init_args.trajectory_model.init_args.channels", "32",
          "--model.init_args.trajectory_model.init_args.filter_widths", "[3]"]),
        ("synthetic_multiview", MultiviewLifting,
         ["--model.init_args.lifter.init_args.channels", "32", "--model.init_args.lifter.init_args.head_channels", "32",
          "--model.init_args.retrieval_stride", "10"]),
    ],
)  # fmt: skip
def test_temporal_regime_checkpoint_stands_on_its_own(experiment, regime, overrides, tmp_path):
    run = fit(tmp_path / "runs", experiment, *overrides, "--model.init_args.lifter.init_args.filter_widths", "[3]")
    moved = tmp_path / "moved.ckpt"
    shutil.copy(run / "checkpoints/last.ckpt", moved)
    module = _stands_on_its_own(regime, moved, run, tmp_path)
    assert module.lifter.receptive_field == 3 and module.lifter.num_joints_in == 17
    assert np.isfinite(float(module.last_tables["test"][0].rows[-1][1][0]))


def tiny_dstformer(network: str) -> list[str]:
    """Options that make the DSTformer at ``model.init_args.<network>`` 16 wide, one layer, 9-frame clips."""
    sizes = {"dim_feat": "16", "dim_rep": "16", "depth": "1", "maxlen": "9"}
    return [v for arg, size in sizes.items() for v in (f"--model.init_args.{network}.init_args.{arg}", size)]


CLIPS = ["--data.init_args.chunk_length", "9", "--data.init_args.eval_chunk_length", "9"]


@pytest.mark.parametrize(
    "experiment, regime, overrides",
    [
        ("synthetic_dstformer_small", SupervisedLifting, [*tiny_dstformer("lifter"), *CLIPS]),
        ("synthetic_semi_dstformer_small", BackProjectionLifting,
         [*tiny_dstformer("lifter"), *tiny_dstformer("trajectory_model"), *CLIPS,
          "--model.init_args.warmup_epochs", "0"]),
        ("synthetic_multiview_dstformer_small", MultiviewLifting,
         [*tiny_dstformer("lifter.init_args.trunk"), *CLIPS, "--model.init_args.lifter.init_args.head_channels", "32",
          "--model.init_args.retrieval_stride", "10"]),
        ("synthetic_adversarial_solo_dstformer", AdversarialLifting,
         [*small("solo"), "--model.init_args.lifter.init_args.width", "16"]),
    ],
    ids=["supervised", "back_projection", "multiview", "adversarial"],
)  # fmt: skip
def test_sequence_to_sequence_lifter_in_every_regime_through_config(experiment, regime, overrides, tmp_path):
    from components.networks.dstformer import DSTformer

    run = fit(tmp_path / "runs", experiment, *overrides)
    moved = tmp_path / "moved.ckpt"
    shutil.copy(run / "checkpoints/last.ckpt", moved)
    module = _stands_on_its_own(regime, moved, run, tmp_path)
    assert any(isinstance(network, DSTformer) for network in module.lifter.modules())
    assert module.lifter.receptive_field == 1
    assert np.isfinite(float(module.last_tables["test"][0].rows[-1][1][-1]))


def _student_fit(tmp_path: Path, teachers: Path, capsys) -> str:
    """``poselift fit`` of the student from ``teachers``; must stop with status 2 and write nothing."""
    root = tmp_path / "runs"
    args = ["fit", "-c", str(CONFIGS / "experiments/synthetic_adversarial_student.yaml"), *FAST, *small("student"),
            "--model.init_args.teacher_checkpoint", str(teachers),
            "--trainer.logger.init_args.save_dir", str(root)]  # fmt: skip
    assert cli.main(args) == 2
    assert not root.exists()
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and message.startswith("poselift fit: error: teacher_checkpoint ")
    return message


def test_student_refuses_a_missing_foreign_or_mismatched_teacher(adversarial_runs, tmp_path, capsys):
    missing = _student_fit(tmp_path, tmp_path / "gone.ckpt", capsys)
    assert missing.endswith("gone.ckpt: file not found")
    (teachers,) = adversarial_runs["h36m", "teachers"].glob("checkpoints/best-*.ckpt")
    checkpoint = torch.load(teachers, weights_only=True)
    hyper_parameters = checkpoint["hyper_parameters"]
    regime = {"_class_path": "lightning_modules.supervised.SupervisedLifting"}
    torch.save(dict(checkpoint, hyper_parameters=hyper_parameters | regime), tmp_path / "supervised.ckpt")
    assert _student_fit(tmp_path, tmp_path / "supervised.ckpt", capsys).endswith(
        "supervised.ckpt is a lightning_modules.supervised.SupervisedLifting checkpoint; expected an "
        "lightning_modules.adversarial.AdversarialLifting one"
    )
    spec = checkpoint["hyper_parameters"]["lifter"]
    other = {**spec, "init_args": {**spec["init_args"], "layout": "mpi_inf_3dhp"}}
    torch.save(
        dict(checkpoint, hyper_parameters={**checkpoint["hyper_parameters"], "lifter": other}), tmp_path / "3dhp.ckpt"
    )
    assert _student_fit(tmp_path, tmp_path / "3dhp.ckpt", capsys).endswith(
        "3dhp.ckpt: its lifter (layout 'mpi_inf_3dhp') does not fit the configured teacher "
        "PartLifter(layout='h36m', parts='torso_legs')"
    )
