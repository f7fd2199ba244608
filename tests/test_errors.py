"""Bad input: every case of docs/errors.md gives its documented message and leaves no partial output.

Readers are called directly on small files in the real formats (written by the helpers of
``tests/datamodules``) and then damaged; the ``poselift`` command is run in-process (``cli.main``) and, for a
few cases, for real in a subprocess (exit status 2, one ``poselift <subcommand>: error:`` line on stderr).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import nn

import cli
from components.networks.temporal_conv import TemporalConvLifter
from datamodules.human36m import Human36mDataModule, load_keypoints_2d, load_positions_3d
from datamodules.mpi_inf_3dhp_files import (
    TEST_CAMERAS,
    load_annot_mat,
    load_calibration,
    load_preprocessed_npz,
    load_test_annotations,
)
from datamodules.mpi_inf_3dhp_writers import (
    save_annot_mat,
    save_calibration,
    save_preprocessed_npz,
    save_test_annotations,
)
from lightning_modules.callbacks import NonFiniteLossError, StopOnNonFiniteLoss
from lightning_modules.checkpoints import module_spec
from lightning_modules.supervised import SupervisedLifting
from tests.datamodules.test_human36m import ACTIONS, FRAMES, GT_METADATA, write_dataset

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "configs/experiments/quickstart.yaml")
SMALL = [
    "-c", QUICKSTART,
    "--data.init_args.synthetic_size", "tiny",
    "--data.init_args.batch_size", "256",
    "--model.init_args.lifter.init_args.channels", "32",
    "--model.init_args.lifter.init_args.filter_widths", "[3, 3]",
    "--trainer.max_epochs", "1",
    "--trainer.num_sanity_val_steps", "0",
]  # fmt: skip
TIMEOUT = 300


def files_under(folder: Path) -> list[str]:
    """Everything a command left below ``folder`` (files and folders), relative; [] when it does not exist."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("poselift")]


# --------------------------------------------------------------------------- the real command, in subprocesses


def poselift(*args: str, cache: Path, log: Path) -> subprocess.Popen:
    """``python cli.py ARGS`` (what the ``poselift`` script runs) without launcher or PL_* variables; stdout and
    stderr go to ``log`` + ``.out`` / ``.err`` (files, not pipes: nobody reads them while it runs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PL_", "SLURM_", "POSELIFT_DEBUG"))}
    env.update(OMP_NUM_THREADS="1", POSELIFT_CACHE=str(cache))
    command = [sys.executable, "cli.py", *args]
    with open(f"{log}.out", "w") as out, open(f"{log}.err", "w") as err:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)


@pytest.fixture(scope="module", autouse=True)
def commands(tmp_path_factory, cache_dir):
    """Three real commands on bad input, started when the module starts so that their imports (most of their
    run time) overlap the in-process tests; the ``test_command_*`` tests at the end collect them."""
    folder = tmp_path_factory.mktemp("commands")
    (folder / "a_file").write_text("not a folder")
    runs = {name: folder / name for name in ("missing", "nonfinite", "unwritable")}
    options = {
        "missing": ["--data.init_args.data_dir", str(folder / "no_data"),
                    "--trainer.logger.init_args.save_dir", str(runs["missing"])],
        "nonfinite": ["--model.init_args.lr", "1e30", "--trainer.logger.init_args.save_dir", str(runs["nonfinite"])],
        "unwritable": ["--trainer.logger.init_args.save_dir", str(folder / "a_file/runs")],
    }  # fmt: skip
    started = {
        name: poselift("fit", *SMALL, *extra, cache=cache_dir, log=folder / name) for name, extra in options.items()
    }
    yield SimpleNamespace(folder=folder, runs=runs, started=started)
    for process in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()


def finished(commands, name: str) -> SimpleNamespace:
    returncode = commands.started[name].wait(timeout=TIMEOUT)
    log = commands.folder / name
    return SimpleNamespace(
        returncode=returncode, stdout=Path(f"{log}.out").read_text(), stderr=Path(f"{log}.err").read_text()
    )


# --------------------------------------------------------------------------- Human3.6M npz readers


def with_2d(**positions) -> dict:
    """The contents of a ``data_2d_h36m_gt.npz`` holding ``positions`` (subject -> action -> views)."""
    return {"positions_2d": positions, "metadata": GT_METADATA}


@pytest.fixture(scope="module")
def h36m_files(tmp_path_factory) -> Path:
    """Small Human3.6M files in the VideoPose3D layout: 3D for S1 and S9, 2D for those and S2."""
    return write_dataset(tmp_path_factory.mktemp("h36m"))


NAN_VIEWS = [np.full((6, 17, 2), 500.0, np.float32) for _ in range(4)]
NAN_VIEWS[2][4, 13] = np.nan

H36M_READER_CASES = {
    # 1. missing file
    "missing 3D file": ({}, load_positions_3d, "data_3d_h36m.npz", FileNotFoundError,
                        "{dir}/data_3d_h36m.npz: file not found"),
    # 2. missing keys
    "missing positions_3d": ({"poses": np.zeros(3)}, load_positions_3d, "data_3d_h36m.npz",
                             KeyError, "{dir}/data_3d_h36m.npz: missing key 'positions_3d' (found ['poses'])"),
    "missing positions_2d": ({"metadata": GT_METADATA}, load_keypoints_2d, "data_2d_h36m_gt.npz",
                             KeyError, "{dir}/data_2d_h36m_gt.npz: missing key 'positions_2d' (found ['metadata'])"),
    # 3. wrong joint counts
    "3D joints": ({"positions_3d": {"S1": {"Walking": np.zeros((5, 17, 3))}}}, load_positions_3d,
                  "data_3d_h36m.npz", ValueError,
                  "{dir}/data_3d_h36m.npz: positions_3d['S1']['Walking'] has shape (5, 17, 3), "
                  "expected (frames, 32, 3)"),
    "2D joints": (with_2d(S1={"Walking": [np.zeros((5, 16, 2))] * 4}), load_keypoints_2d, "data_2d_h36m_gt.npz",
                  ValueError, "{dir}/data_2d_h36m_gt.npz: positions_2d['S1']['Walking'][0] has shape (5, 16, 2), "
                  "expected (frames, 17, 2 or 3)"),
    # 5. NaN (missing detections) in the 2D
    "NaN 2D": (with_2d(S9={"Walking": NAN_VIEWS}), load_keypoints_2d, "data_2d_h36m_gt.npz", ValueError,
               "{dir}/data_2d_h36m_gt.npz: positions_2d['S9']['Walking'][2] (camera 2) holds NaN/inf 2D keypoints, "
               "first at frame 4, joint 13 (left_wrist); 1 of 6 frames are affected. Fill missing detections "
               "(e.g. interpolate or repeat the last position) before training"),
    # 7. camera count
    "3 cameras": (with_2d(S1={"Walking": [np.zeros((5, 17, 2))] * 3}), load_keypoints_2d, "data_2d_h36m_gt.npz",
                  ValueError, "{dir}/data_2d_h36m_gt.npz: positions_2d['S1']['Walking'] has 3 cameras, expected 4"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(H36M_READER_CASES))
def test_h36m_reader_errors(case, tmp_path):
    contents, reader, name, error, message = H36M_READER_CASES[case]
    if contents:  # the file in the VideoPose3D layout (pickled dicts in an npz), holding the bad contents
        np.savez_compressed(tmp_path / name, **contents)
    with pytest.raises(error) as raised:
        reader(tmp_path / name)
    assert raised.value.args[0] == message.format(dir=tmp_path)


# 11. corrupt files: truncated archives and garbage bytes
def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(400))


def damage_in_the_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[200:260] = np.random.default_rng(1).bytes(60)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("name", "reader", "damage", "message"),
    [
        ("data_3d_h36m.npz", load_positions_3d, truncate,
         "{path}: corrupt .npz archive, cannot read 'positions_3d' (BadZipFile: File is not a zip file)"),
        ("data_3d_h36m.npz", load_positions_3d, damage_in_the_middle,
         "{path}: corrupt .npz archive, cannot read 'positions_3d' ("),
        ("data_2d_h36m_gt.npz", load_keypoints_2d, garbage,
         "{path}: not a NumPy .npz archive (no zip signature); expected np.savez output"),
    ],
)  # fmt: skip
def test_corrupt_h36m_npz(name, reader, damage, message, tmp_path, h36m_files):
    path = tmp_path / name
    path.write_bytes((h36m_files / name).read_bytes())
    damage(path)
    with pytest.raises(ValueError) as raised:
        reader(path)
    text = raised.value.args[0]
    assert text.startswith(message.format(path=path)) and len(text) < 400  # a damaged pickle is not echoed


def write_3dhp_files(folder: Path) -> dict[str, Path]:
    """One small file of each MPI-INF-3DHP format, written by the real writers."""
    rng = np.random.default_rng(0)
    views = rng.uniform(0, 2000, (2, 5, 28, 3))
    joints = rng.uniform(0, 2000, (30, 17, 3))
    frames = {"data_2d": joints[:5, :, :2], "data_3d": joints[:5], "valid": np.ones(5)}
    return {
        "annot.mat": save_annot_mat(folder / "annot.mat", views[..., :2], views, views),
        "annot_data.mat": save_test_annotations(
            folder / "annot_data.mat", joints[..., :2], joints, joints, np.ones(30), np.ones(30)
        ),
        "data_test_3dhp.npz": save_preprocessed_npz(folder / "data_test_3dhp.npz", {"TS1": frames}),
        "camera.calibration": save_calibration(folder / "camera.calibration", [TEST_CAMERAS["TS1"]]),
    }


@pytest.mark.parametrize(
    ("name", "reader", "damage", "message"),
    [
        ("annot.mat", load_annot_mat, truncate, "{path}: cannot read as a MATLAB v5 annot.mat ("),
        ("annot.mat", load_annot_mat, garbage, "{path}: cannot read as a MATLAB v5 annot.mat ("),
        ("annot_data.mat", load_test_annotations, truncate, "{path}: damaged MATLAB v7.3 (HDF5) annot_data.mat ("),
        ("annot_data.mat", load_test_annotations, garbage,
         "{path}: expected a MATLAB v7.3 (HDF5) file, but it has no HDF5 signature"),
        ("data_test_3dhp.npz", load_preprocessed_npz, truncate,
         "{path}: corrupt .npz archive, cannot read 'data' (BadZipFile: File is not a zip file)"),
        ("data_test_3dhp.npz", load_preprocessed_npz, garbage,
         "{path}: not a NumPy .npz archive (no zip signature); expected np.savez output"),
        ("camera.calibration", load_calibration, garbage,
         "{path}: not a Skeletool camera.calibration text file (UnicodeDecodeError: "),
    ],
)  # fmt: skip
def test_corrupt_3dhp_files(name, reader, damage, message, tmp_path):
    path = write_3dhp_files(tmp_path)[name]
    damage(path)
    with pytest.raises(ValueError) as raised:
        reader(path)
    assert raised.value.args[0].startswith(message.format(path=path)) and len(raised.value.args[0]) < 400


# --------------------------------------------------------------------------- the Human3.6M datamodule


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        # 6. unknown subject or action
        ({"train_subjects": ["S99"]}, KeyError, "2D source 'gt' has no subject 'S99' (has ['S1', 'S2', 'S9'])"),
        ({"actions": ["Walking", "Jumping"]}, KeyError,
         "{dir}/data_2d_h36m_gt.npz: actions ['Jumping'] match no action (prefix match); "
         "available: ['Greeting', 'Sitting', 'SittingDown', 'Walking']"),
        # 8. a split empty after the filters
        ({"train_subjects": ["S1"], "val_subjects": ["S9"], "test_subjects": ["S9"], "actions": ["Sitting"]},
         ValueError, "split 'val' is empty after filters: subjects ['S9'] have no recording left with "
         "actions=['Sitting'], cameras=None, subset=1.0"),
        ({"train_subjects": ["S1"], "val_subjects": [], "test_subjects": ["S9"]}, ValueError,
         "split 'val' is empty: no val_subjects are configured"),
    ],
)  # fmt: skip
def test_h36m_datamodule_errors(options, error, message, h36m_files):
    data = Human36mDataModule(data_dir=str(h36m_files), **options)
    with pytest.raises(error) as raised:
        data.setup("fit")  # readers raise here
        data.require_split("val")  # what the command asks for each split its subcommand reads
    assert raised.value.args[0] == message.format(dir=h36m_files)


def test_2d_shorter_than_3d(tmp_path):  # 4. 2D/3D length mismatch
    short = {action: [np.zeros((FRAMES - 1, 17, 2), np.float32)] * 4 for action in ACTIONS["S1"]}
    folder = write_dataset(tmp_path, contents_2d=with_2d(S1=short))
    data = Human36mDataModule(data_dir=str(folder), train_subjects=["S1"], val_subjects=[], test_subjects=[])
    with pytest.raises(ValueError) as raised:
        data.setup("fit")
    assert raised.value.args[0] == "S1/Sitting camera 0: 2D has 39 frames, fewer than the 3D's 40"


def test_camera_index_out_of_range():  # 7. camera filter naming a camera the dataset lacks
    with pytest.raises(ValueError) as raised:
        Human36mDataModule(cameras=[0, 4])
    assert raised.value.args[0] == "cameras [0, 4]: Human3.6M camera indices are 0-3"


# --------------------------------------------------------------------------- 9. checkpoints of other architectures


def lifting(channels: int = 32, joints_in: int = 17, trajectory: bool = False) -> SupervisedLifting:
    lifter = TemporalConvLifter(filter_widths=(3, 3), channels=channels, num_joints_in=joints_in)
    traj = TemporalConvLifter(filter_widths=(3, 3), channels=channels, num_joints_out=1) if trajectory else None
    return SupervisedLifting(lifter=lifter, trajectory_model=traj)


def checkpoint_of(module: SupervisedLifting, specs: bool = True) -> dict:
    networks = {"lifter": module.lifter, "trajectory_model": module.trajectory_model}
    return {
        "state_dict": module.state_dict(),
        "hyper_parameters": {name: module_spec(network) for name, network in networks.items()} if specs else {},
    }


ARCHITECTURE = "checkpoint was trained with another architecture than the configured model: {} (configure the "
ARCHITECTURE += "model as it was trained, e.g. test with the run's config.yaml)"


@pytest.mark.parametrize(
    ("saved", "specs", "differences"),
    [
        (lifting(channels=64), True, "lifter.channels: checkpoint 64, model 32"),
        (lifting(joints_in=16), True, "lifter.num_joints_in: checkpoint 16, model 17"),
        (lifting(trajectory=True), True, "trajectory_model: 20 tensors in the checkpoint only"),
        (lifting(channels=64), False, "lifter.expand_bn.weight: checkpoint (64,), model (32,); "
         "lifter.expand_bn.bias: checkpoint (64,), model (32,); lifter.expand_bn.running_mean: checkpoint (64,), "
         "model (32,); 13 more tensors"),
    ],
)  # fmt: skip
def test_checkpoint_of_another_architecture(saved, specs, differences):
    with pytest.raises(ValueError) as raised:
        lifting().on_load_checkpoint(checkpoint_of(saved, specs))
    assert raised.value.args[0] == ARCHITECTURE.format(differences)
    lifting().on_load_checkpoint(checkpoint_of(lifting(), specs))  # a fitting checkpoint passes


# --------------------------------------------------------------------------- 10. non-finite losses


class ManualNaN(pl.LightningModule):
    """Manual optimisation (as the adversarial regime) whose loss is NaN at batch 2."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.layer = nn.Linear(3, 1)
        self.weights_before: dict[str, torch.Tensor] = {}

    def training_step(self, batch, batch_idx):
        self.weights_before = {k: v.clone() for k, v in self.state_dict().items()}
        loss = self.layer(batch).square().mean() * (float("nan") if batch_idx == 2 else 1.0)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.randn(20, 3), batch_size=4)


def test_nonfinite_loss_under_manual_optimisation(tmp_path):
    model = ManualNaN()
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, callbacks=[StopOnNonFiniteLoss()],
    )  # fmt: skip
    with pytest.raises(NonFiniteLossError) as raised:
        trainer.fit(model)
    path = tmp_path / "checkpoints/nonfinite.ckpt"
    assert raised.value.args[0] == (
        "non-finite loss nan at epoch 0, step 2 (batch 2 of the epoch): training stopped before applying it; "
        f"the weights of the last finite step are saved in {path}"
    )
    saved = torch.load(path, weights_only=False)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in model.weights_before.items())
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())  # the NaN update was never applied


def test_nonfinite_loss_on_another_process_stops_this_one(tmp_path):
    """The flag is reduced with ``any``: a rank whose own loss is finite saves and stops with the others."""
    decisions, saved = [], []
    trainer = SimpleNamespace(
        strategy=SimpleNamespace(reduce_boolean_decision=lambda local, all: decisions.append((local, all)) or True),
        checkpoint_callback=SimpleNamespace(dirpath=str(tmp_path)),
        save_checkpoint=lambda path, weights_only: saved.append(path),
        current_epoch=3, global_step=70, fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_idx=5)),
    )  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=r"^non-finite loss on another process at epoch 3, step 70 \("):
        StopOnNonFiniteLoss().on_before_backward(trainer, None, torch.tensor(0.5))
    assert decisions == [(False, False)] and saved == [tmp_path / "nonfinite.ckpt"]


def test_every_trainer_config_stops_on_nonfinite_losses():
    for config in sorted((ROOT / "configs/trainer").glob("*.yaml")):
        assert "class_path: lightning_modules.callbacks.StopOnNonFiniteLoss" in config.read_text(), config.name


# --------------------------------------------------------------------------- the command in-process: no output left


def run_command(capsys, *args: str) -> tuple[int, list[str]]:
    status = cli.main(list(args))
    return status, error_lines(capsys.readouterr().err)


def nan_dataset(folder: Path, source: Path) -> Path:
    """A copy of the files in ``source`` whose S9 ``Walking`` camera 1 misses the pelvis at frame 7 (NaN)."""
    folder.mkdir()
    (folder / "data_3d_h36m.npz").write_bytes((source / "data_3d_h36m.npz").read_bytes())
    with np.load(source / "data_2d_h36m_gt.npz", allow_pickle=True) as archive:
        positions, metadata = archive["positions_2d"].item(), archive["metadata"].item()
    positions["S9"]["Walking"][1][7, 0] = np.nan
    np.savez_compressed(folder / "data_2d_h36m_gt.npz", positions_2d=positions, metadata=metadata)
    return folder


@pytest.mark.parametrize(
    ("case", "options", "message"),
    [
        ("unknown subject", ["--data.init_args.test_subjects", "[S99]"],
         "2D source 'gt' has no subject 'S99' (has ['S1', 'S11', 'S5', 'S6', 'S7', 'S8', 'S9'])"),
        ("unknown action", ["--data.init_args.actions", "[Jumping]"],
         "{cache}/synthetic_h36m_tiny_seed0/data_2d_h36m_gt.npz: actions ['Jumping'] match no action "
         "(prefix match); available: ['Directions', 'Walking']"),
        ("empty split", ["--data.init_args.data_dir", "{data}", "--data.init_args.train_subjects", "[S1]",
                         "--data.init_args.test_subjects", "[S9]", "--data.init_args.val_subjects", "[S9]",
                         "--data.init_args.actions", "[Sitting]"],
         "split 'val' is empty after filters: subjects ['S9'] have no recording left with actions=['Sitting'], "
         "cameras=None, subset=1.0"),
        ("NaN detections", ["--data.init_args.data_dir", "{nan_data}", "--data.init_args.train_subjects", "[S1]",
                            "--data.init_args.test_subjects", "[S9]", "--data.init_args.val_subjects", "[S9]"],
         "{nan_data}/data_2d_h36m_gt.npz: positions_2d['S9']['Walking'][1] (camera 1) holds NaN/inf 2D keypoints, "
         "first at frame 7, joint 0 (pelvis); 1 of 43 frames are affected. Fill missing detections (e.g. "
         "interpolate or repeat the last position) before training"),
    ],
)  # fmt: skip
def test_data_errors_leave_no_run_folder(case, options, message, tmp_path, cache_dir, h36m_files, capsys):
    places = {"cache": cache_dir, "data": h36m_files, "nan_data": tmp_path / "nan"}
    if case == "NaN detections":
        nan_dataset(places["nan_data"], h36m_files)
    runs = tmp_path / "runs"
    options = [option.format(**places) for option in options]
    status, lines = run_command(capsys, "fit", *SMALL, *options, "--trainer.logger.init_args.save_dir", str(runs))
    assert (status, lines) == (2, [f"poselift fit: error: {message.format(**places)}"])
    assert files_under(runs) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_run_folder(tmp_path, capsys):  # 12. unwritable run folder
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    status, lines = run_command(capsys, "fit", *SMALL, "--trainer.logger.init_args.save_dir", str(locked / "runs"))
    assert (status, lines) == (2, [f"poselift fit: error: run folder {locked}/runs: {locked} is not writable"])
    assert files_under(locked) == []


def test_test_with_a_checkpoint_of_other_joints(tmp_path, capsys):
    """LightningCLI rebuilds the model from the checkpoint's hyper-parameters (so its widths are adopted), but
    joint counts follow the data's layouts: a 16-joint checkpoint cannot be tested on 17-joint data."""
    source = tmp_path / "sixteen.bin"
    lifter = TemporalConvLifter(filter_widths=(3, 3), channels=32, num_joints_in=16, num_joints_out=16)
    torch.save({"model_pos": lifter.state_dict()}, source)
    sixteen = tmp_path / "sixteen.ckpt"
    assert cli.main(["import-videopose3d", str(source), "--out", str(sixteen)]) == 0
    runs = tmp_path / "runs"
    status, lines = run_command(
        capsys, "test", *SMALL, "--ckpt_path", str(sixteen), "--trainer.logger.init_args.save_dir", str(runs)
    )
    differences = "lifter.num_joints_in: checkpoint 16, model 17; lifter.num_joints_out: checkpoint 16, model 17"
    assert (status, lines) == (2, [f"poselift test: error: --ckpt_path {sixteen}: {ARCHITECTURE.format(differences)}"])
    assert files_under(runs) == []
    status, lines = run_command(capsys, "test", *SMALL, "--ckpt_path", str(tmp_path / "gone.ckpt"))
    assert (status, lines) == (2, [f"poselift test: error: --ckpt_path {tmp_path}/gone.ckpt: file not found"])
    garbage(tmp_path / "damaged.ckpt")
    status, lines = run_command(capsys, "test", *SMALL, "--ckpt_path", str(tmp_path / "damaged.ckpt"))
    assert status == 2 and lines[0].startswith(
        f"poselift test: error: --ckpt_path {tmp_path}/damaged.ckpt: cannot read as a Lightning checkpoint ("
    )


def test_debug_variable_keeps_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("POSELIFT_DEBUG", "1")
    with pytest.raises(FileNotFoundError, match=re.escape(f"{tmp_path}/data_2d_h36m_gt.npz: file not found")):
        cli.main(["fit", *SMALL, "--data.init_args.data_dir", str(tmp_path)])


# --------------------------------------------------------------------------- the real command (subprocesses)


def test_command_missing_file_exits_2_and_writes_nothing(commands):
    result = finished(commands, "missing")
    message = f"{commands.folder}/no_data/data_2d_h36m_gt.npz: file not found"
    assert (result.returncode, error_lines(result.stderr)) == (2, [f"poselift fit: error: {message}"])
    assert "Traceback" not in result.stderr and files_under(commands.runs["missing"]) == []


def test_command_unwritable_run_folder(commands):
    result = finished(commands, "unwritable")
    file = commands.folder / "a_file"
    message = f"run folder {file}/runs: {file} is a file, not a folder"
    assert (result.returncode, error_lines(result.stderr)) == (2, [f"poselift fit: error: {message}"])


def test_command_nonfinite_loss_saves_the_last_finite_weights(commands):
    result = finished(commands, "nonfinite")
    (checkpoint,) = commands.runs["nonfinite"].glob("quickstart/version_0/checkpoints/nonfinite.ckpt")
    message = (
        "non-finite loss nan at epoch 0, step 1 (batch 1 of the epoch): training stopped before applying it; "
        f"the weights of the last finite step are saved in {checkpoint}"
    )
    assert (result.returncode, error_lines(result.stderr)) == (2, [f"poselift fit: error: {message}"])
    model = SupervisedLifting.load_from_checkpoint(checkpoint, map_location="cpu")
    assert all(torch.isfinite(p).all() for p in model.parameters())
