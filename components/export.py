"""Deployable lifters: load any regime's checkpoint, export its lifter to ONNX or TorchScript.

The exported graph is the lifter alone in eval mode (BatchNorm running statistics, no dropout), the dilated
whole-sequence path: ``keypoints_2d`` ``(batch, frames, J_in, F)`` screen-normalised 2D in, ``poses_3d``
``(batch, frames - receptive_field + 1, J_out, 3)`` root-relative camera-space metres out. Callers pad sequences
themselves as ``datamodules/windows.py`` does (edge replication; a causal lifter pads only in front). Flip
test-time augmentation and the trajectory model are not part of the graph.

- ONNX: the dynamo exporter (``torch.export``), with symbolic batch and frame axes. The older TorchScript-based
  ONNX exporter is not used: it silently fixes shapes that the lifters compute from their input.
- TorchScript: ``torch.jit.trace``. Tracing records the operations of one example, so a lifter whose forward
  computes with Python integers can come out tied to that example's shape; every trace is therefore run on a
  second shape and compared with the eager lifter, and a graph that does not generalise is refused.

Both are written through a temporary file in the destination folder and a rename, and carry the lifter's
timing as metadata (ONNX ``metadata_props``; TorchScript extra file ``poselift.json``).
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from components.atomic import atomic_destination
from components.errors import InputError, PoseliftError

FORMATS = ("onnx", "torchscript")


class ExportError(PoseliftError, RuntimeError):
    """A lifter that cannot be exported faithfully (the message says why)."""


INPUT_NAME, OUTPUT_NAME = "keypoints_2d", "poses_3d"
METADATA_FILE = "poselift.json"
# Warns, on every export, that torchvision's operators (which lifters never use) have no translation.
ONNX_REGISTRY_LOGGER = "torch.onnx._internal.exporter._registration"


# -- export -----------------------------------------------------------------------------------------------------
class _Inference(nn.Module):
    """One tensor in, one out: the lifter's dilated path (exporters trace ``forward`` with positional tensors)."""

    def __init__(self, lifter: nn.Module) -> None:
        super().__init__()
        self.lifter = lifter

    def forward(self, keypoints_2d: Tensor) -> Tensor:
        return self.lifter(keypoints_2d)


def export_lifter(
    model: nn.Module,
    path: str | Path,
    format: Literal["onnx", "torchscript"],
    frames: int | None = None,
) -> Path:
    """Export a lifter for inference outside Python training code.

    Args:
        model: a :class:`LiftingModule` (its ``lifter`` is exported) or a lifter itself; neither is modified.
        path: destination file (e.g. ``model.onnx``, ``model.pt``); the folder is created.
        format: ``"onnx"`` or ``"torchscript"``.
        frames: input frames per sequence. None: a dynamic frame axis (any ``frames >= receptive_field``).
            A number fixes the ONNX frame axis (``receptive_field`` gives a one-output-frame graph for
            streaming runtimes); a TorchScript trace stays shape-generic and only uses it as the example length.

    Returns:
        ``path``. The batch axis is always dynamic.

    Raises:
        ValueError: unknown format, ``frames < receptive_field``, or a lifter without ``num_joints_in``.
        RuntimeError: the exported graph disagrees with the eager lifter on another input shape.
    """
    if format not in FORMATS:
        raise InputError(f"unknown export format {format!r}; expected one of {FORMATS}")
    lifter = getattr(model, "lifter", model)  # a LightningModule's lifter, or the lifter itself
    inference = _Inference(copy.deepcopy(lifter)).eval()
    example = _example_input(lifter, frames)
    metadata = _metadata(lifter, example, frames)
    writer = _export_onnx if format == "onnx" else _export_torchscript
    # With gradients on, the temporal convolution takes its batched path (one matrix multiply over all
    # sequences) instead of the no-grad path that loops over the batch in Python, which a trace would unroll.
    inference.requires_grad_(True)
    with atomic_destination(Path(path)) as temporary, torch.enable_grad():
        run_exported = writer(inference, example, temporary, frames is None, metadata)
        _verify(run_exported, inference, example, frames is None, format)  # before the file is published
    return Path(path)


def _example_input(lifter: nn.Module, frames: int | None) -> Tensor:
    """``(2, frames, J_in, F)`` random 2D; two frames past the receptive field when the frame axis is dynamic, so
    the example output has more than one frame (exporters specialise axes of size 1)."""
    if not hasattr(lifter, "num_joints_in"):
        raise InputError(f"{type(lifter).__name__} has no num_joints_in: cannot build an example input to export")
    receptive_field = int(lifter.receptive_field)
    if frames is not None and frames < receptive_field:
        raise InputError(f"frames must be at least the receptive field {receptive_field}, got {frames}")
    length = receptive_field + 2 if frames is None else frames
    generator = torch.Generator().manual_seed(0)
    shape = (2, length, int(lifter.num_joints_in), int(getattr(lifter, "in_features", 2)))
    parameter = next(lifter.parameters(), None)
    example = torch.randn(shape, generator=generator) * 0.3  # screen-normalised coordinates lie in [-1, 1]
    return example if parameter is None else example.to(parameter.device, parameter.dtype)


def _metadata(lifter: nn.Module, example: Tensor, frames: int | None) -> dict[str, str]:
    """What a runtime needs to pad and read the graph, as strings (ONNX metadata values are strings)."""
    return {
        "receptive_field": str(int(lifter.receptive_field)),
        "causal": str(bool(getattr(lifter, "causal", False))).lower(),
        "num_joints_in": str(example.shape[2]),
        "in_features": str(example.shape[3]),
        "num_joints_out": str(int(getattr(lifter, "num_joints_out", -1))),
        "frames": "dynamic" if frames is None else str(frames),
        "input": f"{INPUT_NAME} (batch, frames, J_in, F) screen-normalised 2D",
        "output": f"{OUTPUT_NAME} (batch, frames - receptive_field + 1, J_out, 3) root-relative metres",
    }


@contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _export_onnx(
    inference: nn.Module, example: Tensor, path: Path, dynamic_frames: bool, metadata: dict[str, str]
) -> Callable[[Tensor], Tensor] | None:
    """Dynamo ONNX export; returns an onnxruntime runner for verification, or None without onnxruntime."""
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's dependency, imported late by torch)
    except ImportError:
        raise ImportError("ONNX export needs onnx and onnxscript: pip install 'poselift[export]'") from None
    receptive_field = int(metadata["receptive_field"])
    axes = {0: torch.export.Dim("batch", min=1)}
    if dynamic_frames:
        axes[1] = torch.export.Dim("frames", min=receptive_field)
    with warnings.catch_warnings(), _quiet_logger(ONNX_REGISTRY_LOGGER):
        warnings.simplefilter("ignore")  # deprecation notices inside torch.export, not about this model
        program = torch.onnx.export(
            inference, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes={"keypoints_2d": axes}, verbose=False,
        )  # fmt: skip
    program.model.metadata_props.update(metadata)
    program.save(path, external_data=False)  # one self-contained file, so one rename publishes it
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {INPUT_NAME: x.detach().cpu().numpy()})[0])


def _export_torchscript(
    inference: nn.Module, example: Tensor, path: Path, dynamic_frames: bool, metadata: dict[str, str]
) -> Callable[[Tensor], Tensor]:
    with warnings.catch_warnings():
        # TracerWarnings come from the lifter's input checks (Python comparisons of the example's shape),
        # which the trace drops; the deprecation notice is about torch.jit as a whole.
        warnings.simplefilter("ignore")
        # check_trace re-traces and compares graph text, which fails spuriously on shape arithmetic;
        # _verify compares outputs on another shape instead.
        traced = torch.jit.trace(inference, example, check_trace=False)
        # Weights become constants: the graph then runs with autograd on as well (traced in-place ops on
        # parameter-derived tensors would otherwise be refused), and there is nothing left to train by accident.
        frozen = torch.jit.freeze(traced)
        torch.jit.save(frozen, str(path), _extra_files={METADATA_FILE: json.dumps(metadata)})
    return frozen


def _verify(
    run_exported: Callable[[Tensor], Tensor] | None,
    inference: nn.Module,
    example: Tensor,
    dynamic_frames: bool,
    format: str,
) -> None:
    """Compare the exported graph with the eager lifter on a shape it was not traced with."""
    if run_exported is None:
        return
    batch, frames = example.shape[0] + 1, example.shape[1] + (3 if dynamic_frames else 0)
    other = torch.randn(batch, frames, *example.shape[2:], generator=torch.Generator().manual_seed(1)) * 0.3
    other = other.to(example)
    with torch.no_grad():
        expected, got = inference(other), run_exported(other)
    if got.shape != expected.shape or not torch.allclose(got.to(expected), expected, atol=1e-4, rtol=1e-4):
        raise ExportError(
            f"the exported {format} graph of {type(inference.lifter).__name__} disagrees with the eager lifter on "
            f"input {tuple(other.shape)} (output {tuple(got.shape)} vs {tuple(expected.shape)}): its trace fixed "
            "a shape; export another format"
        )
