"""Exported lifters compute what the eager lifter computes, on shapes they were not traced with."""

import json

import lightning
import lightning.pytorch as pl
import pytest
import torch
from torch import nn

import cli
from components.export import METADATA_FILE, export_lifter
from components.networks.temporal_conv import TemporalConvLifter
from lightning_modules.checkpoints import (
    INSTANTIATOR,
    class_path,
    load_lifting_module,
    module_spec,
    save_checkpoint_atomic,
)
from lightning_modules.supervised import SupervisedLifting

# torch 2.13 deprecates torch.jit as a whole; loading a TorchScript file is what these tests check.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
J = 17
# (batch, frames past the receptive field): one output frame for one sequence, many for several.
SHAPES = [(1, 0), (3, 13)]


def small_lifter(causal: bool, num_joints_out: int = J, seed: int = 0) -> TemporalConvLifter:
    torch.manual_seed(seed)
    lifter = TemporalConvLifter(filter_widths=(3, 3), channels=16, causal=causal, num_joints_out=num_joints_out)
    for bn in (lifter.expand_bn, *lifter.layers_bn):  # non-trivial running statistics: BatchNorm folding matters
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return lifter.eval()


def inputs(lifter: nn.Module) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    rf = lifter.receptive_field
    return [torch.randn(batch, rf + extra, J, 2, generator=generator) * 0.3 for batch, extra in SHAPES]


def eager(lifter: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return lifter(x)


def run_onnx(path, x: torch.Tensor) -> torch.Tensor:
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"keypoints_2d": x.numpy()})[0])


@pytest.mark.parametrize("causal", [False, True])
def test_torchscript_equals_eager_on_other_batches_and_lengths(tmp_path, causal):
    lifter = small_lifter(causal)
    path = export_lifter(lifter, tmp_path / "lifter.pt", "torchscript")
    extra = {METADATA_FILE: ""}
    loaded = torch.jit.load(str(path), _extra_files=extra)
    for x in inputs(lifter):
        torch.testing.assert_close(loaded(x), eager(lifter, x), atol=1e-5, rtol=0)
    metadata = json.loads(extra[METADATA_FILE])
    assert metadata["receptive_field"] == "9" and metadata["causal"] == str(causal).lower()
    assert lifter.training is False and all(p.requires_grad for p in lifter.parameters())  # left as it was


@pytest.mark.parametrize("causal", [False, True])
def test_onnx_equals_eager_on_other_batches_and_lengths(tmp_path, causal):
    pytest.importorskip("onnxscript")
    onnx = pytest.importorskip("onnx")
    lifter = small_lifter(causal)
    path = export_lifter(SupervisedLifting(lifter), tmp_path / "lifter.onnx", "onnx")  # a LiftingModule works too
    for x in inputs(lifter):
        torch.testing.assert_close(run_onnx(path, x), eager(lifter, x), atol=1e-5, rtol=0)
    metadata = {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}
    assert metadata["causal"] == str(causal).lower() and metadata["frames"] == "dynamic"


def test_onnx_with_fixed_frames_has_a_static_frame_axis(tmp_path):
    pytest.importorskip("onnxscript")
    onnx = pytest.importorskip("onnx")
    lifter = small_lifter(causal=True)
    path = export_lifter(lifter, tmp_path / "window.onnx", "onnx", frames=lifter.receptive_field)
    batch, frames, joints, features = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert batch.dim_param and (frames.dim_value, joints.dim_value, features.dim_value) == (9, J, 2)
    x = torch.randn(4, 9, J, 2)
    torch.testing.assert_close(run_onnx(path, x), eager(lifter, x), atol=1e-5, rtol=0)


class ShapeBakingLifter(nn.Module):
    """Builds its output from Python integers, which a trace records as constants."""

    receptive_field, causal, num_joints_in, num_joints_out = 1, False, J, J

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, keypoints_2d: torch.Tensor) -> torch.Tensor:
        batch, frames = int(keypoints_2d.shape[0]), int(keypoints_2d.shape[1])
        return torch.zeros(batch, frames, J, 3) + self.scale


def test_export_errors(tmp_path):
    lifter = small_lifter(causal=False)
    with pytest.raises(ValueError, match=r"unknown export format 'tflite'; expected one of \('onnx', 'torchscript'\)"):
        export_lifter(lifter, tmp_path / "lifter.tflite", "tflite")
    with pytest.raises(ValueError, match="frames must be at least the receptive field 9, got 5"):
        export_lifter(lifter, tmp_path / "lifter.pt", "torchscript", frames=5)
    with pytest.raises(RuntimeError, match="trace fixed a shape"):
        export_lifter(ShapeBakingLifter(), tmp_path / "baked.pt", "torchscript")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written or refused is left behind


def cli_style_checkpoint(path, lifter: nn.Module, trajectory_model: nn.Module) -> None:
    """A checkpoint as ``poselift fit`` writes it: networks as class_path specs, weights under their names,
    plus weights of a regime-only part that export must ignore."""
    module = SupervisedLifting(lifter, trajectory_model)
    hyper_parameters = {
        "_class_path": class_path(SupervisedLifting), "lifter": module_spec(lifter),
        "trajectory_model": module_spec(trajectory_model), "input_layout": "h36m", "output_layout": "h36m",
        "flip_test": False, "_instantiator": INSTANTIATOR,
    }  # fmt: skip
    state = module.state_dict() | {"discriminator.weight": torch.zeros(3)}
    save_checkpoint_atomic(
        {"pytorch-lightning_version": lightning.__version__, "state_dict": state, "hyper_parameters": hyper_parameters},
        path,
    )


def test_cli_export_of_a_fit_style_checkpoint(tmp_path, capsys):
    lifter, trajectory = small_lifter(causal=True), small_lifter(causal=True, num_joints_out=1, seed=1)
    checkpoint = tmp_path / "best.ckpt"
    cli_style_checkpoint(checkpoint, lifter, trajectory)
    restored = load_lifting_module(checkpoint)
    assert not restored.flip["test"] and restored.lifter.causal
    torch.testing.assert_close(restored.trajectory_model.expand_bn.running_var, trajectory.expand_bn.running_var)
    out = tmp_path / "deploy" / "lifter.pt"
    assert cli.main(["export", "--ckpt_path", str(checkpoint), "--format", "torchscript", "--out", str(out)]) == 0
    assert "receptive field 9, causal True" in capsys.readouterr().out
    for x in inputs(lifter):
        torch.testing.assert_close(torch.jit.load(str(out))(x), eager(lifter, x), atol=1e-5, rtol=0)


def test_cli_export_of_a_saved_python_module_needs_trust(tmp_path, capsys):
    pytest.importorskip("onnxscript")
    lifter = small_lifter(causal=False)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.strategy.connect(SupervisedLifting(lifter))
    checkpoint = tmp_path / "module.ckpt"
    trainer.save_checkpoint(checkpoint)
    out = tmp_path / "lifter.onnx"
    args = ["export", "--ckpt_path", str(checkpoint), "--format", "onnx", "--out", str(out), "--frames", "12"]
    assert cli.main(args) == 2
    assert "pickled objects" in capsys.readouterr().err and not out.exists()
    assert cli.main([*args, "--trust-pickle"]) == 0
    x = torch.randn(2, 12, J, 2)
    torch.testing.assert_close(run_onnx(out, x), eager(lifter, x), atol=1e-5, rtol=0)


def test_loading_refuses_unknown_networks_and_foreign_files(tmp_path):
    checkpoint = tmp_path / "odd.ckpt"
    spec = {"class_path": "os.system", "init_args": {}}
    save_checkpoint_atomic({"state_dict": {}, "hyper_parameters": {"lifter": spec}}, checkpoint)
    with pytest.raises(ValueError, match=r"hyper_parameters\['lifter'\] names 'os.system'"):
        load_lifting_module(checkpoint)
    save_checkpoint_atomic({"model_pos": {}}, checkpoint)
    with pytest.raises(ValueError, match="expected a Lightning checkpoint with a 'state_dict'"):
        load_lifting_module(checkpoint)
    with pytest.raises(FileNotFoundError, match="missing.ckpt: file not found"):
        load_lifting_module(tmp_path / "missing.ckpt")
