"""The poselift command end to end on the tiny synthetic set: fit + test, test from a run folder, tools."""

import contextlib
import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch

import cli
from components.networks.dstformer import DSTformer
from components.networks.motionbert import HUMAN36M_METRES_PER_UNIT
from components.networks.temporal_conv import TemporalConvLifter
from lightning_modules.base import LiftingModule
from lightning_modules.supervised import SupervisedLifting

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SMALL = [
    "--data.init_args.synthetic_size", "tiny",
    "--data.init_args.batch_size", "256",
    "--model.init_args.lifter.init_args.channels", "32",
    "--model.init_args.lifter.init_args.filter_widths", "[3, 3]",
    "--trainer.max_epochs", "1",
]  # fmt: skip


def read_p1(path: Path) -> float:
    rows = {row["action"]: row for row in csv.DictReader(path.open())}
    return float(rows["average"]["P1"])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One CLI fit (which ends by testing its last and its best checkpoint) of the quickstart experiment, made
    small (2 epochs, so that last and best can differ): the run folder and what the command printed."""
    root = tmp_path_factory.mktemp("runs")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("POSELIFT_CACHE", str(tmp_path_factory.mktemp("cache")))
        cli.main(["fit", "-c", str(CONFIGS / "experiments/quickstart.yaml"), *SMALL, "--trainer.max_epochs", "2",
                  "--trainer.logger.init_args.save_dir", str(root)])  # fmt: skip
    (folder,) = root.glob("quickstart/version_*")
    return folder, printed.getvalue()


@pytest.fixture(scope="module")
def run(fitted):
    return fitted[0]


def test_fit_ends_with_labelled_tables_of_the_last_and_the_best_checkpoint(fitted):
    run, printed = fitted
    (best,) = run.glob("checkpoints/best-*.ckpt")
    for checkpoint in (run / "checkpoints/last.ckpt", best):
        table = checkpoint.parent / f"{checkpoint.stem}.test_protocols.csv"
        assert table.is_file() and table.with_suffix(".json").is_file()
        rows = list(csv.DictReader(table.open()))
        assert [r["action"] for r in rows][-1] == "average" and len(rows) >= 3
        assert 0 < read_p1(table) < 1000
    titles = [line for line in printed.splitlines() if line.startswith("test: all subjects (mm)")]
    assert titles == [
        "test: all subjects (mm) | last checkpoint (epoch 1)",
        f"test: all subjects (mm) | best on validation (val/p1_mm {_best_score(best):.2f}, {best.name})",
    ]
    assert (run / "config.yaml").is_file() and list(run.glob("events.out.tfevents.*"))


def _best_score(checkpoint: Path) -> float:
    callbacks = torch.load(checkpoint, weights_only=False)["callbacks"]
    (state,) = [v for k, v in callbacks.items() if "val/p1_mm" in k]
    return float(state["best_model_score"])


def test_test_from_the_run_folder_reproduces_the_table(run, tmp_path, capsys):
    (best,) = run.glob("checkpoints/best-*.ckpt")
    expected = read_p1(best.parent / f"{best.stem}.test_protocols.csv")
    copy = tmp_path / "model.ckpt"
    copy.write_bytes(best.read_bytes())
    cli.main(["test", "--config", str(run / "config.yaml"), "--ckpt_path", str(copy)])
    assert read_p1(tmp_path / "model.test_protocols.csv") == pytest.approx(expected, abs=1e-3)
    assert "average" in capsys.readouterr().out


def test_predict_from_the_run_folder_returns_every_test_frame(run):
    (best,) = run.glob("checkpoints/best-*.ckpt")
    result = cli.lightning_main(["predict", "--config", str(run / "config.yaml"), "--ckpt_path", str(best)])
    predictions = result.trainer.predict_loop.predictions
    frames = sum(len(s) for s in result.datamodule.sequences["test"])
    assert sum(p["poses_3d"][..., 0, 0].numel() for p in predictions) == frames
    assert predictions[0]["poses_3d"].shape[-2:] == (17, 3)


def test_joint_settings_follow_the_regimes_declarations(monkeypatch):
    links = cli.network_joint_links()
    assert links["model.init_args.lifter.init_args.num_joints_out"] == "output_count"
    assert links["model.init_args.discriminator.init_args.num_joints"] == "input_count"  # AdversarialLifting
    assert links["model.init_args.teacher.init_args.layout"] == "input_layout"  # DistillationLifting
    assert "model.init_args.trajectory_model.init_args.num_joints_out" not in links  # one root joint, its own
    critic = type("WithCritic", (), {"network_joints": {"critic": {"num_joints": "input_count"}}})
    monkeypatch.setattr(cli, "regimes", lambda: [LiftingModule, critic])
    assert cli.network_joint_links()["model.init_args.critic.init_args.num_joints"] == "input_count"
    clash = type("Clash", (), {"network_joints": {"lifter": {"num_joints_in": "output_count"}}})
    monkeypatch.setattr(cli, "regimes", lambda: [LiftingModule, clash])
    with pytest.raises(TypeError, match="Clash.network_joints: model.init_args.lifter.init_args.num_joints_in fo"):
        cli.network_joint_links()


def test_checkpoint_rebuilds_its_lifter_with_linked_joint_counts(run):
    (best,) = run.glob("checkpoints/best-*.ckpt")
    spec = torch.load(best, weights_only=False)["hyper_parameters"]["lifter"]["init_args"]
    assert spec["num_joints_in"] == 17 and spec["num_joints_out"] == 17 and spec["filter_widths"] == [3, 3]
    model = SupervisedLifting.load_from_checkpoint(best)
    assert isinstance(model.lifter, TemporalConvLifter) and model.receptive_field == 9
    weights = torch.load(best, weights_only=False)["state_dict"]
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())


def test_import_videopose3d_checkpoint_predicts_like_its_source(run, tmp_path):
    lifter = TemporalConvLifter(filter_widths=(3, 3), channels=32).eval()
    trajectory = TemporalConvLifter(filter_widths=(3, 3), channels=32, num_joints_out=1).eval()
    for module in (lifter, trajectory):  # non-trivial BatchNorm statistics
        for bn in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm1d)):
            bn.running_mean.uniform_(-0.1, 0.1), bn.running_var.uniform_(0.5, 2.0)
    source = tmp_path / "pretrained.bin"
    torch.save({"epoch": 80, "model_pos": lifter.state_dict(), "model_traj": trajectory.state_dict()}, source)
    out = tmp_path / "imported.ckpt"
    assert cli.main(["import-videopose3d", str(source), "--out", str(out)]) == 0
    imported = SupervisedLifting.load_from_checkpoint(out).eval()
    x = torch.randn(2, 40, 17, 2)
    with torch.no_grad():
        assert torch.equal(imported.lifter(x), lifter(x))
        assert torch.equal(imported.trajectory_model(x), trajectory(x))
    cli.main(["test", "--config", str(run / "config.yaml"), "--ckpt_path", str(out),
              "--model.init_args.trajectory_model", "components.networks.temporal_conv.TemporalConvLifter",
              "--model.init_args.trajectory_model.init_args.num_joints_out", "1",
              "--model.init_args.trajectory_model.init_args.channels", "32",
              "--model.init_args.trajectory_model.init_args.filter_widths", "[3, 3]"])  # fmt: skip
    assert read_p1(tmp_path / "imported.test_protocols.csv") > 0


def test_import_motionbert_checkpoint_tests_and_predicts_like_any_other(run, tmp_path):
    torch.manual_seed(0)
    small = {"dim_feat": 16, "dim_rep": 12, "depth": 2, "num_heads": 4, "maxlen": 27}
    source = DSTformer(**small).eval()
    with torch.no_grad():
        for parameter in source.parameters():
            parameter.normal_(0.0, 0.2)
    path = tmp_path / "motionbert_best_epoch.bin"
    torch.save({"epoch": 60, "model_pos": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    out = tmp_path / "motionbert.ckpt"
    assert cli.main(["import-motionbert", str(path), "--out", str(out), "--num-heads", "4"]) == 0
    imported = SupervisedLifting.load_from_checkpoint(out).eval()
    x = torch.randn(2, 27, 17, 3)
    with torch.no_grad():
        assert torch.allclose(imported.lifter(x), HUMAN36M_METRES_PER_UNIT * source(x))
    clips = ["--config", str(run / "config.yaml"), "--ckpt_path", str(out), "--data.init_args.eval_batch_size", "16",
             "--data.init_args.eval_chunk_length", "27"]  # fmt: skip
    cli.main(["test", *clips])
    assert read_p1(tmp_path / "motionbert.test_protocols.csv") > 0
    result = cli.lightning_main(["predict", *clips])
    predictions = result.trainer.predict_loop.predictions
    frames = sum(len(s) for s in result.datamodule.sequences["test"])
    assert sum(p["poses_3d"][..., 0, 0].numel() for p in predictions) == frames
    assert cli.main(["test", *clips[:-1], "28"]) == 2  # clips longer than the model's maxlen are refused


def test_import_motionbert_refuses_a_layout_of_another_joint_count(tmp_path, capsys):
    path = tmp_path / "motionbert.bin"
    torch.save({"model_pos": DSTformer(dim_feat=8, dim_rep=8, depth=1, num_heads=2, maxlen=3).state_dict()}, path)
    out = tmp_path / "imported.ckpt"
    assert (
        cli.main(
            ["import-motionbert", str(path), "--out", str(out), "--num-heads", "2", "--input-layout", "mpi_inf_3dhp_28"]
        )
        == 2
    )
    assert (
        "has 17 input joints but the input layout 'mpi_inf_3dhp_28' has 28" in capsys.readouterr().err
        and not out.exists()
    )


def test_import_refuses_pickles_without_trust(tmp_path, capsys):
    lifter = TemporalConvLifter(filter_widths=(3,), channels=16)
    source = tmp_path / "run_py_style.bin"
    torch.save({"model_pos": lifter.state_dict(), "model_traj": None, "random_state": np.random.RandomState(1)}, source)
    out = tmp_path / "imported.ckpt"
    assert cli.main(["import-videopose3d", str(source), "--out", str(out)]) == 2
    assert "--trust-pickle" in capsys.readouterr().err and not out.exists()
    assert cli.main(["import-videopose3d", str(source), "--out", str(out), "--trust-pickle"]) == 0
    assert SupervisedLifting.load_from_checkpoint(out).trajectory_model is None


def test_synthesize_tool_writes_and_summarises(tmp_path, capsys):
    assert cli.main(["synthesize", "--out", str(tmp_path / "syn"), "--size", "tiny"]) == 0
    assert {p.name for p in (tmp_path / "syn").iterdir()} == {
        "data_3d_h36m.npz", "data_2d_h36m_gt.npz", "data_2d_h36m_noisy.npz",
    }  # fmt: skip
    assert "S11" in capsys.readouterr().out
    assert cli.main(["synthesize", "--dataset", "3dhp", "--out", str(tmp_path / "3dhp"), "--size", "tiny"]) == 0
    assert (tmp_path / "3dhp/S8/Seq2/annot.mat").is_file()
    assert (tmp_path / "3dhp/mpi_inf_3dhp_test_set/TS6/annot_data.mat").is_file()
    assert "TS6" in capsys.readouterr().out


def instantiate(*args: str) -> cli.PoseliftCLI:
    return cli.PoseliftCLI(
        cli.LiftingModule, cli.PoseDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False,
        args=[*args, "--trainer.logger", "false"],
    )  # fmt: skip


@pytest.mark.parametrize("experiment", sorted(p.name for p in (CONFIGS / "experiments").glob("*.yaml")))
def test_every_experiment_config_instantiates(experiment):
    parsed = instantiate("-c", str(CONFIGS / "experiments" / experiment))
    assert parsed.datamodule.timing.receptive_field == parsed.model.receptive_field
    assert parsed.model.lifter.num_joints_in == parsed.datamodule.num_joints_in


@pytest.mark.parametrize("path", sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.glob("[dmt]*/*.yaml")))
def test_every_building_block_config_instantiates(path):
    group = path.split("/")[0]
    parsed = instantiate("-c", str(CONFIGS / "experiments/quickstart.yaml"), f"--{group}", str(CONFIGS / path))
    widths = getattr(parsed.model.lifter, "filter_widths", (1,))  # frame-wise lifters have no filters
    assert parsed.datamodule.timing.receptive_field == int(np.prod(widths)) == parsed.model.receptive_field
    assert parsed.datamodule.timing.causal == parsed.model.lifter.causal


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    """A result table's rows by their first column."""
    rows = list(csv.DictReader(path.open()))
    label = next(iter(rows[0]))
    return {row[label]: row for row in rows}


SEQUENCE_ROWS = ["TS1", "TS2", "TS3", "TS4", "TS5", "TS6", "GS", "noGS", "Outdoor", "all"]


@pytest.fixture(scope="module")
def run_3dhp(tmp_path_factory):
    """A CLI fit + test of the lifter on the tiny synthetic MPI-INF-3DHP set."""
    root = tmp_path_factory.mktemp("runs_3dhp")
    cli.main(["fit", "-c", str(CONFIGS / "experiments/synthetic_3dhp.yaml"), *SMALL,
              "--trainer.logger.init_args.save_dir", str(root)])  # fmt: skip
    (folder,) = root.glob("quickstart/version_*")
    return folder


def test_3dhp_fit_ends_with_pck_auc_mpjpe_tables(run_3dhp):
    (best,) = run_3dhp.glob("checkpoints/best-*.ckpt")
    sequences = read_rows(best.parent / f"{best.stem}.test_3dhp_sequences.csv")
    assert list(sequences) == SEQUENCE_ROWS
    assert all(0 <= float(row["PCK"]) <= 100 and float(row["AUC"]) <= float(row["PCK"]) for row in sequences.values())
    activities = read_rows(best.parent / f"{best.stem}.test_3dhp_activities.csv")
    assert list(activities)[-1] == "all" and len(activities) >= 3
    assert float(activities["all"]["MPJPE"]) == pytest.approx(float(sequences["all"]["MPJPE"]), rel=1e-9)


def test_human36m_model_tested_on_3dhp(run, tmp_path, capsys):
    (best,) = run.glob("checkpoints/best-*.ckpt")
    copy = tmp_path / "h36m.ckpt"
    copy.write_bytes(best.read_bytes())
    cli.main(["test", "-c", str(CONFIGS / "experiments/synthetic_3dhp.yaml"), *SMALL, "--ckpt_path", str(copy),
              "--trainer.logger.init_args.save_dir", str(tmp_path)])  # fmt: skip
    assert list(read_rows(tmp_path / "h36m.test_3dhp_sequences.csv")) == SEQUENCE_ROWS
    out = capsys.readouterr().out
    assert "per sequence" in out and "per activity" in out and "Outdoor" in out


def test_retrieval_tool_scores_the_model_and_its_baselines(run, tmp_path, capsys):
    (best,) = run.glob("checkpoints/best-*.ckpt")
    args = ["retrieval", "-c", str(run / "config.yaml"), "--ckpt_path", str(best), "--baseline_ckpt", str(best)]
    assert cli.main([*args, "--stride", "20", "--out", str(tmp_path)]) == 0
    rows = read_rows(tmp_path / "test_retrieval.csv")
    assert list(rows) == ["2D keypoints", "3D lifted (this model)", "3D lifted (supervised)"]
    scores = {method: [v for k, v in row.items() if k != "method"] for method, row in rows.items()}
    assert scores["3D lifted (this model)"] == scores["3D lifted (supervised)"]  # the same weights
    assert "cross-view retrieval" in capsys.readouterr().out
    assert cli.main(["retrieval", "-c", str(run / "config.yaml"), "--split", "nothing"]) == 2


def test_retrieval_tool_on_3dhp_training_cameras(run_3dhp, tmp_path):
    (best,) = run_3dhp.glob("checkpoints/best-*.ckpt")
    args = ["retrieval", "-c", str(run_3dhp / "config.yaml"), "--ckpt_path", str(best), "--split", "train"]
    assert cli.main([*args, "--data.init_args.train_subjects=[S8]", "--stride", "5", "--out", str(tmp_path)]) == 0
    rows = read_rows(tmp_path / "train_retrieval.csv")
    assert list(rows) == ["2D keypoints", "3D lifted (this model)"]
