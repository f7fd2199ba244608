"""The one checkpoint path: reading (one trust policy), network specs, architecture checks, import.

- :func:`read_checkpoint`: every file poselift opens as a checkpoint goes through it. Tensors and plain values load
  always; pickled objects only with the caller's explicit trust (``--trust-pickle``, ``trust_pickle=True``,
  ``--weights_only false``), since unpickling can run code.
- :func:`complete_specs`: a checkpoint stores each injected network as a LightningCLI spec (``class_path`` +
  ``init_args``); arguments the CLI linked from the data are filled in from the live network when it is saved, so
  ``load_from_checkpoint`` rebuilds every network on its own.
- :func:`check_architecture`: a checkpoint of another architecture is refused by naming the differing arguments,
  not the tensors.
- :func:`import_videopose3d` turns a published VideoPose3D ``.bin`` (pose model and, when present, trajectory
  model) into a poselift checkpoint; :func:`import_motionbert` does the same for a MotionBERT pose checkpoint.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import sys
from collections import Counter
from pathlib import Path

import lightning
import torch
from torch import Tensor, nn

from components.atomic import atomic_destination
from components.errors import InputError, MissingFileError
from components.networks.motionbert import HUMAN36M_METRES_PER_UNIT, load_motionbert
from components.networks.videopose3d import lifter_from_state_dict, load_videopose3d_checkpoint
from components.skeleton import layout

ZIP_SIGNATURE = b"PK\x03\x04"
FIRST_PARTY_NETWORKS = ("components.",)  # packages whose network classes a checkpoint may name without trust


def read_checkpoint(path: str | Path, trust_pickle: bool = False, what: str = "checkpoint") -> dict:
    """A Lightning checkpoint's contents, tensors and plain values only unless ``trust_pickle``.

    Checkpoints written by ``poselift fit`` hold no pickled objects and always load; a module built in Python
    stores its networks as objects, which only ``trust_pickle=True`` unpickles (unpickling can run code: trusted
    files only). ``what`` names the file's role in errors (``--ckpt_path``, ``teacher_checkpoint`` ...).

    Raises:
        FileNotFoundError: no such file. ValueError: pickled objects without trust, or not a Lightning checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} {path}: file not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=not trust_pickle)
    except pickle.UnpicklingError as error:
        if _is_zip(path):
            raise InputError(
                f"{what} {path} holds pickled objects (a module built in Python stores its networks as objects): "
                "only for a file you trust, pass --trust-pickle (tools) or --weights_only false (fit, test, predict)"
            ) from None
        raise _unreadable(path, what, error) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:  # torch reports damaged archives several ways
        raise _unreadable(path, what, error) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        keys = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise InputError(f"{what} {path}: expected a Lightning checkpoint with a 'state_dict', got {keys}")
    return checkpoint


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == ZIP_SIGNATURE


def _unreadable(path: Path, what: str, error: Exception) -> InputError:
    """torch's first line, unless the file is no zip archive at all (then torch's unpickling complaint about
    ``weights_only`` would mislead)."""
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
    reason = reason if _is_zip(path) else "no zip signature: not a file written by torch.save"
    return InputError(f"{what} {path}: cannot read as a Lightning checkpoint ({reason})")


INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"


def class_path(obj_or_cls) -> str:
    cls = obj_or_cls if inspect.isclass(obj_or_cls) else type(obj_or_cls)
    return f"{cls.__module__}.{cls.__qualname__}"


def init_args_of(module: nn.Module) -> dict:
    """The constructor arguments a module kept as attributes (tuples as lists, networks it was given as specs:
    plain values for YAML and JSON, and a checkpoint that loads without unpickling objects)."""
    args = {}
    for name in list(inspect.signature(type(module).__init__).parameters)[1:]:
        if hasattr(module, name):
            value = getattr(module, name)
            args[name] = list(value) if isinstance(value, tuple) else value
            if isinstance(value, nn.Module):
                args[name] = module_spec(value)
    return args


def module_spec(module: nn.Module | None) -> dict | None:
    """``{"class_path": ..., "init_args": ...}`` of a network, as LightningCLI writes it."""
    if module is None:
        return None
    return {"class_path": class_path(module), "init_args": init_args_of(module)}


def complete_specs(hyper_parameters: dict, modules: dict[str, nn.Module | None]) -> None:
    """Fill the init args a spec lacks from the live module, in place.

    LightningCLI hides linked arguments (e.g. ``num_joints_in`` taken from the data) from the saved config, so
    without this a checkpoint would rebuild its lifter with default joint counts.
    """
    for name, module in modules.items():
        spec = hyper_parameters.get(name)
        if module is not None and isinstance(spec, dict) and "class_path" in spec:
            hyper_parameters[name] = {**spec, "init_args": {**spec.get("init_args", {}), **init_args_of(module)}}


def check_architecture(checkpoint: dict, module: nn.Module, source: str = "checkpoint") -> None:
    """Raise a ``ValueError`` naming what differs when ``checkpoint`` was trained with another architecture."""
    differences = architecture_differences(checkpoint, module)
    if differences:
        raise InputError(
            f"{source} was trained with another architecture than the configured model: "
            + "; ".join(differences)
            + " (configure the model as it was trained, e.g. test with the run's config.yaml)"
        )


def architecture_differences(checkpoint: dict, module: nn.Module, shown: int = 3) -> list[str]:
    """Why ``checkpoint["state_dict"]`` cannot load into ``module``; empty when every tensor fits.

    Names the networks' differing constructor arguments (``lifter.channels: checkpoint 64, model 32``) and the
    tensors one side lacks, counted per network; only when neither explains it, up to ``shown`` tensors whose
    shapes differ.
    """
    saved, current = checkpoint.get("state_dict", {}), module.state_dict()
    shapes = [
        f"{key}: checkpoint {tuple(saved[key].shape)}, model {tuple(value.shape)}"
        for key, value in current.items()
        if key in saved and tuple(saved[key].shape) != tuple(value.shape)
    ]
    # tensors one side lacks, counted per network (``lifter``, ``trajectory_model``, ...)
    unmatched = {
        "model": Counter(key.split(".")[0] for key in current.keys() - saved.keys()),
        "checkpoint": Counter(key.split(".")[0] for key in saved.keys() - current.keys()),
    }
    if not (shapes or unmatched["model"] or unmatched["checkpoint"]):
        return []
    differences = _init_arg_differences(checkpoint.get("hyper_parameters", {}), module)
    differences += [
        f"{name}: {count} tensors in the {side} only"
        for side, counts in unmatched.items()
        for name, count in sorted(counts.items())
    ]
    if shapes and not differences:
        differences = shapes[:shown] + ([f"{len(shapes) - shown} more tensors"] if len(shapes) > shown else [])
    return differences


def _init_arg_differences(hyper_parameters: dict, module: nn.Module) -> list[str]:
    """``network.arg: checkpoint X, model Y`` for the plain constructor arguments of every saved network spec."""
    plain = (bool, int, float, str, list, type(None))
    differences = []
    for name, spec in sorted(hyper_parameters.items()):
        network = getattr(module, name, None)
        if not (isinstance(spec, dict) and "init_args" in spec and isinstance(network, nn.Module)):
            continue
        live = init_args_of(network)
        for arg, value in sorted(spec["init_args"].items()):
            mine = live.get(arg)
            if arg in live and isinstance(value, plain) and isinstance(mine, plain) and value != mine:
                differences.append(f"{name}.{arg}: checkpoint {value}, model {mine}")
    return differences


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
) -> nn.Module:
    """Convert a VideoPose3D checkpoint into a poselift checkpoint at ``out``; returns the rebuilt module."""
    checkpoint = load_videopose3d_checkpoint(source, trust_pickle)
    lifter, _ = lifter_from_state_dict(checkpoint["model_pos"], in_features, causal)
    trajectory_model = None
    if checkpoint.get("model_traj") is not None:
        trajectory_model, _ = lifter_from_state_dict(checkpoint["model_traj"], in_features, causal)
    epoch = int(checkpoint.get("epoch", 0) or 0)
    return _write_supervised(out, lifter, trajectory_model, input_layout, output_layout, epoch)


def import_motionbert(
    source: str | Path,
    out: str | Path,
    num_heads: int = 8,
    output_scale: float = HUMAN36M_METRES_PER_UNIT,
    input_layout: str = "h36m",
    output_layout: str = "h36m",
    trust_pickle: bool = False,
) -> nn.Module:
    """Convert a MotionBERT pose checkpoint (official or MMPose layout) into a poselift checkpoint at ``out``."""
    lifter, _ = load_motionbert(source, num_heads, output_scale, trust_pickle)
    joints = {"input": (input_layout, lifter.num_joints_in), "output": (output_layout, lifter.num_joints_out)}
    for role, (name, count) in joints.items():
        if layout(name).num_joints != count:
            raise InputError(
                f"{source} has {count} {role} joints but the {role} layout {name!r} has {layout(name).num_joints}: "
                f"pass --{role}-layout with a {count}-joint layout"
            )
    return _write_supervised(out, lifter, None, input_layout, output_layout, epoch=0)


def _write_supervised(
    out: str | Path,
    lifter: nn.Module,
    trajectory_model: nn.Module | None,
    input_layout: str,
    output_layout: str,
    epoch: int,
) -> nn.Module:
    """A :class:`SupervisedLifting` of imported networks, saved at ``out`` as ``poselift fit`` would; returned."""
    from lightning_modules.supervised import SupervisedLifting  # a regime: imported here, it imports this module

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
        "epoch": epoch,
        "global_step": 0,
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": module.state_dict(),
        "hparams_name": "kwargs",
        "hyper_parameters": hyper_parameters,
    }
    save_checkpoint_atomic(payload, out)
    return module


# -- loading ----------------------------------------------------------------------------------------------------
def load_lifting_module(path: str | Path, trust_pickle: bool = False) -> nn.Module:
    """The lifter (and trajectory model) of a checkpoint of any regime, in a plain :class:`LiftingModule`.

    Only the networks, the layouts and ``flip_test`` are restored: that is all prediction and export need, and
    it avoids rebuilding regime-only parts (a distillation teacher's checkpoint file, a discriminator). The
    result predicts like the regime (``predict_step`` lives in ``LiftingModule``) and is in eval mode.

    Checkpoints written by ``poselift fit`` store each network as a ``{"class_path", "init_args"}`` spec and load
    without unpickling objects; checkpoints of modules built in Python store the network objects themselves,
    which only ``trust_pickle=True`` unpickles (unpickling can run code: trusted files only).

    Raises:
        ValueError: not a poselift checkpoint, pickled objects without ``trust_pickle``, or an unknown network.
    """
    checkpoint = read_checkpoint(path, trust_pickle)
    hparams = checkpoint.get("hyper_parameters") or {}
    if hparams.get("lifter") is None:
        raise InputError(
            f"{path}: hyper_parameters has no 'lifter' (keys: {sorted(hparams)}); expected a checkpoint of a "
            "poselift regime (LiftingModule subclass)"
        )
    networks = {
        name: _network(hparams[name], name, path, trust_pickle)
        for name in ("lifter", "trajectory_model")
        if hparams.get(name) is not None
    }
    from lightning_modules.base import LiftingModule  # the base module imports this one

    module = LiftingModule(
        networks["lifter"],
        networks.get("trajectory_model"),
        input_layout=hparams.get("input_layout", "h36m"),
        output_layout=hparams.get("output_layout", "h36m"),
        flip_test=hparams.get("flip_test", True),
    )
    module.load_state_dict(_network_weights(checkpoint, tuple(networks), path))
    return module.eval()


def _network(spec: object, name: str, path: str | Path, trust_pickle: bool) -> nn.Module:
    """A network from its checkpoint entry: a LightningCLI spec, or (pickled checkpoints) the object itself."""
    if isinstance(spec, nn.Module):
        return spec
    if not (isinstance(spec, dict) and isinstance(spec.get("class_path"), str)):
        raise InputError(f"{path}: hyper_parameters[{name!r}] must be a network or a class_path spec, got {spec!r}")
    cls = _network_class(spec["class_path"], trust_pickle, f"{path}: hyper_parameters[{name!r}]")
    init_args = {  # networks given to this one (a trunk) are specs too
        arg: _network(value, f"{name}.{arg}", path, trust_pickle) if _is_spec(value) else value
        for arg, value in spec.get("init_args", {}).items()
    }
    return cls(**init_args)


def _is_spec(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("class_path"), str) and "init_args" in value


def _network_class(class_path: str, trust_pickle: bool, where: str) -> type[nn.Module]:
    """Resolve ``package.module.Class``; a module not imported yet is imported only if first-party or trusted."""
    module_name, _, class_name = class_path.rpartition(".")
    module = sys.modules.get(module_name)
    if module is None and (trust_pickle or module_name.startswith(FIRST_PARTY_NETWORKS)):
        module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise InputError(
            f"{where} names {class_path!r}, which is not an importable torch.nn.Module subclass (classes outside "
            f"{FIRST_PARTY_NETWORKS} are imported only with trust_pickle=True)"
        )
    return cls


def _network_weights(checkpoint: dict, names: tuple[str, ...], path: str | Path) -> dict[str, Tensor]:
    state = checkpoint["state_dict"]
    weights = {key: value for key, value in state.items() if key.split(".", 1)[0] in names}
    if not any(key.startswith("lifter.") for key in weights):
        raise InputError(f"{path}: no 'lifter.*' weights in its state_dict (first keys: {sorted(state)[:5]})")
    return weights
