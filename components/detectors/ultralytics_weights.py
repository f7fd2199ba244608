"""Read an Ultralytics checkpoint (``yolo11n-pose.pt``) without the ``ultralytics`` package and without running
the code its pickle names.

Such a file is a torch zip archive: ``<archive>/data.pkl`` pickles a dict whose ``"model"`` (or ``"ema"``) is a
whole ``nn.Module`` tree of Ultralytics classes, and ``<archive>/data/<key>`` holds the raw bytes of each tensor
storage. ``torch.load`` would import ``ultralytics`` to rebuild the tree (and ``weights_only=True`` refuses it),
so :class:`_RestrictedUnpickler` resolves only a handful of harmless globals (``OrderedDict``, ``set``,
``torch.Size``, storage types, tensor rebuilders it implements itself) and turns every other class into a
:class:`_StandIn` that merely records its pickled ``__dict__``. Walking the stand-ins' ``_modules``,
``_parameters`` and ``_buffers`` then yields the flat state dict torch's ``Module.state_dict()`` would give.
"""

from __future__ import annotations

import functools
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from components.errors import InputError, MissingFileError

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


@dataclass(frozen=True)
class UltralyticsWeights:
    """What a pose network needs from the checkpoint.

    Attributes:
        state_dict: ``{dotted name: tensor}`` exactly as ``model.state_dict()`` of the pickled model, floating
            tensors converted to float32 (the file stores float16).
        strides: the head's output strides in input pixels, e.g. ``(8, 16, 32)``.
        kpt_shape: ``(keypoints, values per keypoint)``, ``(17, 3)`` for COCO with visibility.
        names: class index -> class name (``{0: "person"}``).
        reg_max: bins of the distribution-focal-loss box regression (16).
        num_classes: classes scored by the head (1).
        layers: per numbered layer of ``model.model``, its class name and where its input comes from
            (``-1`` the previous layer, or a tuple of layer indices), e.g. ``("Concat", (-1, 6))``; a network
            compares it with the topology it implements.
    """

    state_dict: dict[str, torch.Tensor]
    strides: tuple[int, ...]
    kpt_shape: tuple[int, int]
    names: dict[int, str]
    reg_max: int
    num_classes: int
    layers: tuple[tuple[str, int | tuple[int, ...]], ...]


class _StandIn:
    """An instance of a class that is never imported: keeps constructor arguments and pickled state as data."""

    qualified_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _StandIn:
        instance = super().__new__(cls)
        instance.__dict__["_constructor_args"] = args
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Accept any constructor arguments (``__new__`` kept them); no pickled class's code ever runs."""

    def __setstate__(self, state: Any) -> None:
        # modules pickle their __dict__; classes with __slots__ pickle (dict, slots)
        if isinstance(state, tuple) and len(state) == 2 and all(isinstance(s, dict | None) for s in state):
            for part in state:
                self.__dict__.update(part or {})
        elif isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<stand-in {self.qualified_name}>"


@functools.cache
def _stand_in_class(qualified_name: str) -> type[_StandIn]:
    """One stand-in class per pickled global, so ``type(obj).qualified_name`` tells what the object was."""
    return type(qualified_name.rsplit(".", 1)[-1], (_StandIn,), {"qualified_name": qualified_name})


def _safe_getattr(owner: Any, name: str, *default: Any) -> Any:
    """``getattr`` for the pickle: an attribute of a stand-in class (``Detect.forward``) is another stand-in."""
    if isinstance(owner, type) and issubclass(owner, _StandIn):
        return _stand_in_class(f"{owner.qualified_name}.{name}")
    raise pickle.UnpicklingError(f"getattr({type(owner).__name__}, {name!r}) is not allowed")


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *_: Any) -> torch.Tensor:
    """torch._utils._rebuild_tensor_v2 on a flat storage tensor (requires_grad and hooks are irrelevant here)."""
    if storage.numel() == 0:
        return torch.empty(size, dtype=storage.dtype)
    return storage.as_strided(size, stride, offset)


def _rebuild_parameter(data: torch.Tensor, *_: Any) -> torch.Tensor:
    """A parameter is kept as its plain tensor: only the values matter for ``load_state_dict``."""
    return data


class _StorageType:
    """What ``torch.FloatStorage`` and friends resolve to: only the element type is needed."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "getattr"): _safe_getattr,
    ("torch", "Size"): torch.Size,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` resolving only :data:`_ALLOWED` globals; every other class becomes a stand-in."""

    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self._archive, self._prefix = archive, prefix
        self._storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # protocol 2 spells it the Python 2 way
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and isinstance(vars(torch).get(name), torch.dtype):  # vars: no lazy imports
            return vars(torch)[name]
        return _stand_in_class(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        """``("storage", storage type, key, location, numel)`` -> the flat tensor read from ``data/<key>``."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        _, storage_type, key, _, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unknown storage type {storage_type!r}")
        if key not in self._storages:
            raw = bytearray(self._archive.read(f"{self._prefix}data/{key}"))
            flat = torch.frombuffer(raw, dtype=storage_type.dtype) if raw else torch.empty(0, dtype=storage_type.dtype)
            self._storages[key] = flat[:numel]
        return self._storages[key]


def _unpickle_archive(path: Path) -> Any:
    """The object pickled in a torch zip archive, with stand-ins for every non-allowed class."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(f"{path}: not an Ultralytics checkpoint (expected a torch zip archive): {error}") from None
    with archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
        if not pickles:
            raise InputError(f"{path}: not an Ultralytics checkpoint (the zip archive holds no <archive>/data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        if prefix + "byteorder" in archive.namelist() and archive.read(prefix + "byteorder") != b"little":
            raise InputError(f"{path}: big-endian tensor storages are not supported")
        with archive.open(pickles[0]) as file:
            try:
                return _RestrictedUnpickler(file, archive, prefix).load()
            except (pickle.UnpicklingError, KeyError, EOFError, ValueError, TypeError, RuntimeError) as error:
                raise InputError(f"{path}: unreadable checkpoint pickle: {error}") from None


def _state_dict(module: _StandIn, prefix: str = "") -> dict[str, torch.Tensor]:
    """``Module.state_dict()`` on a stand-in tree: parameters, persistent buffers, then children, in order."""
    attributes = module.__dict__
    state = {prefix + name: value for name, value in attributes.get("_parameters", {}).items() if value is not None}
    skipped = attributes.get("_non_persistent_buffers_set", set())
    for name, value in attributes.get("_buffers", {}).items():
        if value is not None and name not in skipped:
            state[prefix + name] = value
    for name, child in attributes.get("_modules", {}).items():
        if child is not None:
            state.update(_state_dict(child, f"{prefix}{name}."))
    return state


def _numbered_layers(model: _StandIn, path: Path) -> list[_StandIn]:
    """The layers of ``model.model``; the last must be a pose head (it knows ``kpt_shape``)."""
    layers = model.__dict__.get("_modules", {}).get("model")
    children = list(layers.__dict__.get("_modules", {}).values()) if isinstance(layers, _StandIn) else []
    if not children or "kpt_shape" not in children[-1].__dict__:
        raise InputError(f"{path}: the checkpoint's model has no pose head (a last layer with kpt_shape)")
    return children


def _layer_summary(layer: _StandIn) -> tuple[str, int | tuple[int, ...]]:
    """``(class name, input source)`` of one numbered layer, from the ``f`` Ultralytics stores on each."""
    source = layer.__dict__.get("f", -1)
    return type(layer).qualified_name.rsplit(".", 1)[-1], source if isinstance(source, int) else tuple(source)


def read_ultralytics_weights(path: str | Path) -> UltralyticsWeights:
    """The float32 state dict and head facts of an Ultralytics pose checkpoint such as ``yolo11n-pose.pt``.

    Raises:
        MissingFileError: no such file.
        InputError: the file is not a torch zip checkpoint holding an Ultralytics pose model.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such checkpoint file")
    checkpoint = _unpickle_archive(path)
    if not isinstance(checkpoint, dict):
        raise InputError(f"{path}: not an Ultralytics checkpoint (expected a dict, found {type(checkpoint)})")
    model = checkpoint.get("ema") or checkpoint.get("model")  # Ultralytics prefers the EMA weights when present
    if not isinstance(model, _StandIn):
        raise InputError(f"{path}: not an Ultralytics checkpoint (no 'model' or 'ema' module; keys {list(checkpoint)})")
    layers = _numbered_layers(model, path)
    head = layers[-1].__dict__
    state = {name: value.float() if value.is_floating_point() else value for name, value in _state_dict(model).items()}
    names = model.__dict__.get("names") or {index: str(index) for index in range(head["nc"])}
    return UltralyticsWeights(
        state_dict=state,
        strides=tuple(int(s) for s in head["stride"].tolist()),
        kpt_shape=(int(head["kpt_shape"][0]), int(head["kpt_shape"][1])),
        names={int(index): str(name) for index, name in names.items()},
        reg_max=int(head["reg_max"]),
        num_classes=int(head["nc"]),
        layers=tuple(_layer_summary(layer) for layer in layers),
    )
