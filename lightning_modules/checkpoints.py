"""Lightning checkpoints that ``poselift test`` / ``predict`` and ``load_from_checkpoint`` accept.

``import_videopose3d`` turns a published VideoPose3D ``.bin`` (pose model and, when present, trajectory model)
into such a checkpoint: the regime's hyperparameters in the LightningCLI form (class paths + init args), so
that ``SupervisedLifting.load_from_checkpoint`` rebuilds the networks, and the weights under ``lifter.`` and
``trajectory_model.``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import lightning
import torch

from components.atomic import atomic_destination
from components.networks.videopose3d import lifter_from_state_dict, load_videopose3d_checkpoint
from lightning_modules.hparams import INSTANTIATOR, class_path, module_spec
from lightning_modules.supervised import SupervisedLifting


def read_checkpoint(path: str | Path, trust_pickle: bool = False, what: str = "checkpoint") -> dict:
    """A Lightning checkpoint's contents, tensors and plain values only unless ``trust_pickle``.

    Checkpoints written by ``poselift fit`` hold no pickled objects and always load; a module built in Python
    stores its networks as objects, which only ``trust_pickle=True`` unpickles (unpickling can run code: trusted
    files only). ``what`` names the file's role in errors (e.g. ``teacher_checkpoint``).

    Raises:
        FileNotFoundError: no such file. ValueError: pickled objects without trust, or not a Lightning checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{what} {path} holds pickled objects (a module built in Python stores its networks as objects); "
            "pass trust_pickle=True (--trust-pickle) for a file you trust"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:  # torch reports damaged archives with several types
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise ValueError(f"{what} {path}: cannot read as a Lightning checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        keys = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{what} {path}: expected a Lightning checkpoint with a 'state_dict', got {keys}")
    return checkpoint


def save_checkpoint_atomic(payload: dict, path: str | Path) -> Path:
    """``torch.save`` through a temporary file and a rename: an interrupted write leaves no partial file."""
    path = Path(path)
    with atomic_destination(path) as temporary:
        torch.save(payload, temporary)
    return path


def import_videopose3d(
    source: str | Path,
    out: str | Path,
    in_features: int = 2,
    causal: bool = False,
    input_layout: str = "h36m",
    output_layout: str = "h36m",
    trust_pickle: bool = False,
) -> SupervisedLifting:
    """Convert a VideoPose3D checkpoint into a poselift checkpoint at ``out``; returns the rebuilt module."""
    checkpoint = load_videopose3d_checkpoint(source, trust_pickle)
    lifter, _ = lifter_from_state_dict(checkpoint["model_pos"], in_features, causal)
    trajectory_model = None
    if checkpoint.get("model_traj") is not None:
        trajectory_model, _ = lifter_from_state_dict(checkpoint["model_traj"], in_features, causal)
    module = SupervisedLifting(
        lifter=lifter, trajectory_model=trajectory_model, input_layout=input_layout, output_layout=output_layout
    )
    hyper_parameters = {
        "_class_path": class_path(SupervisedLifting),
        "lifter": module_spec(lifter),
        "trajectory_model": module_spec(trajectory_model),
        "input_layout": input_layout,
        "output_layout": output_layout,
        "_instantiator": INSTANTIATOR,
    }
    payload = {
        "epoch": int(checkpoint.get("epoch", 0) or 0),
        "global_step": 0,
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": module.state_dict(),
        "hparams_name": "kwargs",
        "hyper_parameters": hyper_parameters,
    }
    save_checkpoint_atomic(payload, out)
    return module
