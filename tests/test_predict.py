"""``poselift predict`` end to end: a user's COCO JSON in, per-video npz/JSON/GIF/PNG out, equal to the model.

The model is a small VideoPose3D-style lifter with a trajectory model, brought in through
``poselift import-videopose3d`` (cheaper than a fit); the run config is what ``poselift fit`` would save.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cli
from components.camera import normalize_screen_coordinates
from components.networks.temporal_conv import TemporalConvLifter
from components.skeleton import COCO_17, H36M_17
from datamodules.detections import DetectionsDataModule
from lightning_modules.prediction_writer import PosePredictionWriter
from lightning_modules.supervised import SupervisedLifting

ROOT = Path(__file__).resolve().parents[1]
PREDICT = ROOT / "configs/predict/detections.yaml"
FROM_CHECKPOINT = ROOT / "configs/predict/from_checkpoint.yaml"
WIDTH, HEIGHT, FRAMES = 640, 480, 12
SMALL_MODEL = ["--model.init_args.lifter.init_args.channels", "16",
               "--model.init_args.lifter.init_args.filter_widths", "[3, 3]"]  # fmt: skip


def coco_person(frame: int) -> np.ndarray:
    """``(17, 3)`` COCO pixels + score of a person walking right 4 px per frame."""
    rows = np.arange(17, dtype=np.float32)
    return np.stack([200 + 30 * (rows % 4) + 4 * frame, 60 + 20 * rows, np.full(17, 0.9)], -1).astype(np.float32)


def write_coco_json(path: Path) -> Path:
    """The walker in every frame but frame 5, a small bystander in every frame, the walker's nose missing in 8."""
    entries = []
    for frame in range(FRAMES):
        bystander = coco_person(0) * [0.2, 0.2, 1] + [560, 10, 0]
        entries.append({"image_id": frame, "category_id": 1, "keypoints": bystander.ravel().tolist(), "score": 1})
        if frame != 5:
            walker = coco_person(frame)
            walker[COCO_17.index("nose")] = 0.0 if frame == 8 else walker[COCO_17.index("nose")]
            entries.append({"image_id": frame, "category_id": 1, "keypoints": walker.ravel().tolist()})
    path.write_text(json.dumps(entries))
    return path


def small_lifter(num_joints_out: int, seed: int) -> TemporalConvLifter:
    torch.manual_seed(seed)
    lifter = TemporalConvLifter(filter_widths=(3, 3), channels=16, num_joints_out=num_joints_out)
    for bn in (m for m in lifter.modules() if isinstance(m, torch.nn.BatchNorm1d)):  # non-trivial statistics
        bn.running_mean.uniform_(-0.1, 0.1), bn.running_var.uniform_(0.5, 2.0)
    return lifter.eval()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An imported checkpoint, the in-memory model it came from, a run config and a COCO JSON."""
    folder = tmp_path_factory.mktemp("predict")
    model = SupervisedLifting(small_lifter(17, 0), small_lifter(1, 1)).eval()
    source = folder / "pretrained_h36m.bin"
    torch.save({"epoch": 3, "model_pos": model.lifter.state_dict(), "model_traj": model.trajectory_model.state_dict()},
               source)  # fmt: skip
    assert cli.main(["import-videopose3d", str(source), "--out", str(folder / "model.ckpt")]) == 0
    printed = io.StringIO()  # the config `poselift fit` would save as RUN/config.yaml
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit):
        cli.lightning_main(["fit", "-c", str(ROOT / "configs/experiments/quickstart.yaml"), *SMALL_MODEL,
                            "--print_config"])  # fmt: skip
    (folder / "config.yaml").write_text(printed.getvalue())
    detections = write_coco_json(folder / "walk.json")
    return {"folder": folder, "model": model, "ckpt": folder / "model.ckpt", "json": detections}


def poselift(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """The console script, run as users run it (the venv's ``poselift``, else ``python cli.py``)."""
    script = Path(sys.executable).with_name("poselift")
    command = [str(script)] if script.is_file() else [sys.executable, str(ROOT / "cli.py")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "POSELIFT_CACHE": str(folder / "cache")}
    return subprocess.run([*command, *args], env=env, cwd=folder, capture_output=True, text=True, timeout=300)


def expected_prediction(model: SupervisedLifting, pixels: np.ndarray, key: str, flip: bool = True) -> np.ndarray:
    """What the in-memory model predicts (metres) for ``(F, J, 2)`` pixels: normalised, edge-padded, flip-averaged."""
    screen = normalize_screen_coordinates(pixels.astype(np.float32), WIDTH, HEIGHT)
    pad = model.receptive_field // 2
    padded = torch.from_numpy(np.pad(screen, ((pad, pad), (0, 0), (0, 0)), mode="edge"))[None]
    network = model.lifter if key == "poses_3d" else model.trajectory_model
    with torch.no_grad():
        poses = model.lift(padded, network, flip=flip)[0].numpy()
    if key == "poses_3d":
        poses[:, H36M_17.root] = 0.0  # predictions are root-relative: the pelvis is exactly zero
    return poses


def test_predict_with_a_run_config_writes_arrays_json_animation_and_sheet(setup):
    folder, out = setup["folder"], setup["folder"] / "out"
    result = poselift(
        folder, "predict", "-c", str(folder / "config.yaml"), "-c", str(PREDICT), "--ckpt_path", str(setup["ckpt"]),
        "--data.init_args.path", str(setup["json"]), "--data.init_args.width", str(WIDTH),
        "--data.init_args.height", str(HEIGHT), "--trainer.default_root_dir", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"walk: {FRAMES} frames (1 empty) -> {out}/walk.npz, {out}/walk.json, {out}/walk.gif" in result.stdout
    written = sorted(p.name for p in out.iterdir())  # with the merged config LightningCLI saves
    assert written == ["config.yaml", "walk.gif", "walk.json", "walk.npz", "walk.png"]
    with np.load(out / "walk.npz") as saved:
        arrays = {key: saved[key] for key in saved.files}
    assert arrays["poses_3d"].shape == (FRAMES, 17, 3) and arrays["trajectory"].shape == (FRAMES, 1, 3)
    assert (arrays["poses_3d"][:, H36M_17.index("pelvis")] == 0).all()
    np.testing.assert_array_equal(arrays["empty_frames"], np.arange(FRAMES) == 5)
    np.testing.assert_array_equal(arrays["person"], np.where(np.arange(FRAMES) == 5, -1, 1))  # slot 0: bystander
    assert arrays["filled"][8].tolist() == [name == "head" for name in H36M_17.joint_names]  # head = COCO nose
    knee = arrays["keypoints_2d"][:, H36M_17.index("left_knee")]
    np.testing.assert_array_equal(knee, np.stack([coco_person(f)[COCO_17.index("left_knee"), :2] for f in range(12)]))
    for key in ("poses_3d", "trajectory"):  # the checkpoint predicts what the in-memory model predicts, in mm
        expected = expected_prediction(setup["model"], arrays["keypoints_2d"], key)
        np.testing.assert_allclose(arrays[key] / 1000, expected, atol=1e-5, rtol=0)
    document = json.loads((out / "walk.json").read_text())
    assert document["joint_names"] == list(H36M_17.joint_names) and len(document["frames"]) == FRAMES
    assert document["frames"][5]["empty"] and document["frames"][5]["person"] == -1
    np.testing.assert_allclose(document["frames"][7]["poses_3d"], arrays["poses_3d"][7], atol=0.005, rtol=0)
    with Image.open(out / "walk.gif") as gif:
        assert (gif.n_frames, gif.size) == (FRAMES, (640, 320))
    with Image.open(out / "walk.png") as sheet:
        assert sheet.size == (2 * 4 * 200, 2 * 200)  # 8 frames shown, 4 per row, two 200 px panels each


def test_predict_with_an_experiment_config_replaces_its_data_and_callbacks(setup, tmp_path):
    # 12 frames lifted in chunks of 5, 5 (one step) and 2: assembled, they equal the whole-sequence prediction
    run = cli.lightning_main([
        "predict", "-c", str(ROOT / "configs/experiments/synthetic_27f.yaml"), "-c", str(PREDICT),
        "--ckpt_path", str(setup["ckpt"]), "--data.init_args.path", str(setup["json"]),
        "--data.init_args.width", str(WIDTH), "--data.init_args.height", str(HEIGHT),
        "--trainer.callbacks.init_args.out_dir", str(tmp_path), "--trainer.callbacks.init_args.render", "false",
        "--trainer.callbacks.init_args.sheet", "false", "--data.init_args.eval_chunk_length", "5",
        "--data.init_args.eval_batch_size", "2", "--trainer.default_root_dir", str(tmp_path / "root"),
    ])  # fmt: skip
    assert isinstance(run.datamodule, DetectionsDataModule) and run.trainer.logger is None
    writers = [c for c in run.trainer.callbacks if isinstance(c, PosePredictionWriter)]
    assert len(writers) == 1 and writers[0].out_dir == tmp_path and not writers[0].render
    assert run.model.receptive_field == run.datamodule.timing.receptive_field == 9  # from the checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root", "walk.json", "walk.npz"]
    assert [p.name for p in (tmp_path / "root").iterdir()] == ["config.yaml"]
    with np.load(tmp_path / "walk.npz") as saved:
        expected = expected_prediction(setup["model"], saved["keypoints_2d"], "poses_3d")
        np.testing.assert_allclose(saved["poses_3d"] / 1000, expected, atol=1e-5, rtol=0)


def test_command_line_model_settings_win_over_the_checkpoint_or_are_refused(setup, tmp_path, capsys):
    args = ["predict", "-c", str(FROM_CHECKPOINT), "-c", str(PREDICT), "--ckpt_path", str(setup["ckpt"]),
            "--data.init_args.path", str(setup["json"]), "--data.init_args.width", str(WIDTH),
            "--data.init_args.height", str(HEIGHT), "--trainer.callbacks.init_args.render", "false",
            "--trainer.callbacks.init_args.sheet", "false", "--trainer.default_root_dir", str(tmp_path)]  # fmt: skip
    run = cli.lightning_main([*args, "--model.init_args.flip_test", "false"])
    assert run.model.flip["predict"] is False
    assert "flip_test: false" in (tmp_path / "config.yaml").read_text()
    with np.load(tmp_path / "walk.npz") as saved:
        expected = expected_prediction(setup["model"], saved["keypoints_2d"], "poses_3d", flip=False)
        np.testing.assert_allclose(saved["poses_3d"] / 1000, expected, atol=1e-5, rtol=0)
    wider = ["--trainer.default_root_dir", str(tmp_path / "wider"), "--model.init_args.lifter.init_args.channels", "32"]
    assert cli.main([*args, *wider]) == 2
    error = capsys.readouterr().err.strip()
    assert "channels" in error and "\n" not in error and not (tmp_path / "wider").exists()


@pytest.mark.parametrize("subcommand", ["test", "validate"])
def test_evaluation_subcommands_refuse_unlabeled_detections(setup, capsys, subcommand):
    args = ["-c", str(FROM_CHECKPOINT), "-c", str(PREDICT), "--ckpt_path", str(setup["ckpt"]),
            "--data.init_args.path", str(setup["json"]), "--data.init_args.width", "640",
            "--data.init_args.height", "480"]  # fmt: skip
    assert cli.main([subcommand, *args]) == 2
    error = capsys.readouterr().err
    assert f"poselift {subcommand}: error:" in error and f"{subcommand!r} needs 3D labels" in error


def write_videopose3d(path: Path) -> Path:
    """Three videos of different lengths (the walker's COCO keypoints), frame sizes in the metadata."""
    walker = np.stack([coco_person(frame) for frame in range(FRAMES)])
    positions = {f"clip{i}": {"custom": [walker[: FRAMES - 3 * i, :, :2]]} for i in range(3)}
    metadata = {
        "layout_name": "coco",
        "num_joints": 17,
        "keypoints_symmetry": [list(COCO_17.left), list(COCO_17.right)],
        "video_metadata": {name: {"w": WIDTH, "h": HEIGHT} for name in positions},
    }
    np.savez_compressed(path, positions_2d=positions, metadata=metadata)
    return path


@pytest.mark.ddp
def test_predict_under_two_process_ddp_gathers_every_video_on_rank_zero(setup, tmp_path):
    out = tmp_path / "out"
    result = poselift(
        tmp_path, "predict", "-c", str(FROM_CHECKPOINT), "-c", str(PREDICT), "--ckpt_path", str(setup["ckpt"]),
        "--data.init_args.path", str(write_videopose3d(tmp_path / "clips.npz")),
        "--trainer.default_root_dir", str(out), "--trainer.callbacks.init_args.render", "false",
        "--trainer.callbacks.init_args.sheet", "false",
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    expected = sorted(["config.yaml", *(f"clip{i}.{s}" for i in range(3) for s in ("json", "npz"))])
    assert sorted(p.name for p in out.iterdir()) == expected
    assert result.stdout.count(" frames (0 empty) -> ") == 3  # rank 0 alone writes and reports
    for i in range(3):
        with np.load(out / f"clip{i}.npz") as saved:
            assert saved["poses_3d"].shape == (FRAMES - 3 * i, 17, 3)
            for key in ("poses_3d", "trajectory"):
                expected = expected_prediction(setup["model"], saved["keypoints_2d"], key)
                np.testing.assert_allclose(saved[key] / 1000, expected, atol=1e-5, rtol=0)


def cut_video(video: Path, out: Path, frames: int, blank: bool = False) -> Path:
    """The first ``frames`` frames of ``video`` re-encoded (``blank``: the same length, every frame grey)."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="video decoding needs imageio-ffmpeg")
    reader = imageio_ffmpeg.read_frames(str(video))
    meta = next(reader)
    width, height = meta["size"]
    writer = imageio_ffmpeg.write_frames(str(out), (width, height), fps=meta["fps"], macro_block_size=16, quality=8)
    writer.send(None)
    for _, raw in zip(range(frames), reader, strict=False):
        frame = np.frombuffer(raw, np.uint8).reshape(height, width, 3)
        writer.send(np.full_like(frame, 128) if blank else frame)
    writer.close(), reader.close()
    return out


def test_predict_from_a_real_video_detects_lifts_and_caches_the_2d(setup, tmp_path, yolo_weights, multiperson_video):
    from components.detectors.yolo_pose import YoloPoseDetector
    from datamodules.video import open_frames

    clip = cut_video(multiperson_video, tmp_path / "walk.mp4", 6)
    folder, out = setup["folder"], tmp_path / "out"
    command = ["predict", "-c", str(folder / "config.yaml"), "-c", str(PREDICT), "--ckpt_path", str(setup["ckpt"]),
               "--data.init_args.path", str(clip), "--data.init_args.detector", str(yolo_weights),
               "--trainer.default_root_dir", str(out)]  # fmt: skip
    result = poselift(folder, *command)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"walk: 6 frames (0 empty) -> {out}/walk.npz" in result.stdout
    with np.load(out / "walk.npz") as saved:
        arrays = {key: saved[key] for key in saved.files}
    assert arrays["poses_3d"].shape == (6, 17, 3) and (arrays["poses_3d"][:, H36M_17.root] == 0).all()
    assert (float(arrays["fps"]), float(arrays["width"]), float(arrays["height"])) == (60.0, 1088.0, 1920.0)
    # The 2D lifted is the detector's own output for the most prominent person (COCO knee = H36M knee, by name).
    frames = next(open_frames(clip).batches(6))
    first = YoloPoseDetector.from_weights(yolo_weights)(frames[:1])[0].keypoints[0]
    knee = arrays["keypoints_2d"][0, H36M_17.index("left_knee")]
    np.testing.assert_allclose(knee, first[COCO_17.index("left_knee"), :2], atol=0.01)
    overlay = open_frames(out / "walk.mp4")  # the original frames with the 2D drawn, beside the 3D view
    assert (overlay.fps, overlay.expected_frames, overlay.height) == (60.0, 6, 480)
    assert sum(len(batch) for batch in overlay.batches(4)) == 6
    cached = json.loads((out / "walk.yolo11n-pose.keypoints.json").read_text())
    assert {entry["image_id"] for entry in cached} == set(range(6)) and all(e["category_id"] == 1 for e in cached)
    # Lifting again reuses the cached 2D: the detector does not run, the file is not rewritten.
    stamp = (out / "walk.yolo11n-pose.keypoints.json").stat().st_mtime_ns
    (out / "walk.npz").unlink()
    again = poselift(folder, *command, "--data.init_args.detector_batch_size", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / "walk.yolo11n-pose.keypoints.json").stat().st_mtime_ns == stamp
    with np.load(out / "walk.npz") as saved:
        np.testing.assert_array_equal(saved["poses_3d"], arrays["poses_3d"])


def reprojection_residuals(poses_3d: np.ndarray, keypoints_2d: np.ndarray) -> np.ndarray:
    """``(F, J)`` distance between the 2D and the lifted pose's x, y after the per-frame scale and shift that fit
    them best (least squares: a weak-perspective camera), over the person's 2D height in that frame."""
    lifted = poses_3d[..., :2] - poses_3d[..., :2].mean(axis=1, keepdims=True)
    seen = keypoints_2d - keypoints_2d.mean(axis=1, keepdims=True)
    scale = (lifted * seen).sum(axis=(1, 2)) / (lifted**2).sum(axis=(1, 2))
    height = seen[..., 1].max(axis=1) - seen[..., 1].min(axis=1)
    return np.linalg.norm(scale[:, None, None] * lifted - seen, axis=-1) / height[:, None]


def test_detected_2d_reprojects_near_the_pose_a_trained_lifter_lifts(tmp_path, yolo_weights, multiperson_video):
    """Through the real detector and a lifter trained here on the tiny synthetic set (single frame, person
    normalisation, so the portrait frame does not matter): the detected 2D lies within 12% of the person's
    height of the lifted pose seen by a fitted weak-perspective camera (median over joints and frames), and the
    same poses with left and right swapped do markedly worse, so joints, frames and person line up."""
    clip = cut_video(multiperson_video, tmp_path / "walk.mp4", 8)
    runs = tmp_path / "runs"
    assert cli.main(["fit", "-c", str(ROOT / "configs/experiments/quickstart.yaml"),
                     "--data.init_args.synthetic_size", "tiny", "--trainer.max_epochs", "6",
                     "--trainer.limit_val_batches", "0", "--trainer.logger.init_args.save_dir", str(runs),
                     "--model.init_args.lifter.init_args.filter_widths", "[1, 1, 1]",
                     "--model.init_args.lifter.init_args.channels", "64",
                     "--model.init_args.lifter.init_args.input_normalization", "person"]) == 0  # fmt: skip
    (run,) = runs.glob("*/version_*")
    out = tmp_path / "out"
    assert cli.main(["predict", "-c", str(run / "config.yaml"), "-c", str(PREDICT),
                     "--ckpt_path", str(run / "checkpoints/last.ckpt"), "--data.init_args.path", str(clip),
                     "--data.init_args.detector", str(yolo_weights), "--trainer.default_root_dir", str(out),
                     "--trainer.callbacks.init_args.render", "false",
                     "--trainer.callbacks.init_args.sheet", "false"]) == 0  # fmt: skip
    with np.load(out / "walk.npz") as saved:
        poses, keypoints = saved["poses_3d"], saved["keypoints_2d"]
    assert poses.shape == (8, 17, 3) and keypoints.shape == (8, 17, 2)
    lifted = float(np.median(reprojection_residuals(poses, keypoints)))
    swapped = float(np.median(reprojection_residuals(poses[:, list(H36M_17.flip_permutation)], keypoints)))
    assert lifted < 0.12 and swapped > 1.5 * lifted, (lifted, swapped)


def test_predict_from_a_video_without_people_writes_nothing(setup, tmp_path, yolo_weights, multiperson_video):
    clip = cut_video(multiperson_video, tmp_path / "empty_room.mp4", 3, blank=True)
    out = tmp_path / "out"
    result = poselift(
        setup["folder"], "predict", "-c", str(setup["folder"] / "config.yaml"), "-c", str(PREDICT),
        "--ckpt_path", str(setup["ckpt"]), "--data.init_args.path", str(clip),
        "--data.init_args.detector", str(yolo_weights), "--trainer.default_root_dir", str(out),
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{clip}: nobody is detected in any of its 3 frames" in result.stderr
    assert not out.exists() or sorted(p.name for p in out.iterdir()) in ([], ["config.yaml"])


@pytest.mark.parametrize(
    ("detector", "message"),
    [("weights/absent.pt", "detector weights weights/absent.pt: file not found"),
     ("yolo99x-pose.pt", "fetching a model by name needs the Ultralytics package (pip install ultralytics)")],
)  # fmt: skip
def test_detector_that_cannot_be_loaded_is_named(tmp_path, detector, message):
    from components.detectors.loading import load_detector

    if detector.startswith("yolo99") and _has_ultralytics():
        pytest.skip("Ultralytics is installed: it would try to fetch the name")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_detector(detector)


def _has_ultralytics() -> bool:
    import importlib.util

    return importlib.util.find_spec("ultralytics") is not None
