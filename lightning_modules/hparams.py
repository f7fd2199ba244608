"""Network specs in the LightningCLI form (``class_path`` + ``init_args``), as checkpoints store them."""

from __future__ import annotations

import inspect

from torch import nn

INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"


def class_path(obj_or_cls) -> str:
    cls = obj_or_cls if inspect.isclass(obj_or_cls) else type(obj_or_cls)
    return f"{cls.__module__}.{cls.__qualname__}"


def init_args_of(module: nn.Module) -> dict:
    """The constructor arguments a module kept as attributes (tuples as lists, for YAML and JSON)."""
    args = {}
    for name in list(inspect.signature(type(module).__init__).parameters)[1:]:
        if hasattr(module, name):
            value = getattr(module, name)
            args[name] = list(value) if isinstance(value, tuple) else value
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
