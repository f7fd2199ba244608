"""Reading checkpoints published by other code bases: weights-only first, full unpickling only on trust."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from components.errors import InputError, MissingFileError, PoseliftError


class UntrustedCheckpointError(PoseliftError, RuntimeError):
    """The file holds pickled Python objects besides tensors; loading it could run code."""


def read_published(path: str | Path, trust_pickle: bool = False, what: str = "checkpoint") -> object:
    """The unpickled contents of a ``torch.save`` file from another code base.

    Weights-only loading is tried first. Training scripts often also pickle objects (a NumPy ``RandomState``, a
    logger's state), which a weights-only load rejects; loading those runs the pickle and needs
    ``trust_pickle=True`` (only for files from a source you trust).

    Raises:
        MissingFileError: no such file. UntrustedCheckpointError: pickled objects without trust.
        InputError: not a file ``torch.load`` can read.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} {path}: file not found")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            if not trust_pickle:
                raise UntrustedCheckpointError(
                    f"{what} {path} holds pickled Python objects besides weights, and loading it can execute "
                    "code. If you trust its source, pass --trust-pickle (trust_pickle=True)."
                ) from error
            return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError) as error:  # torch reports damaged archives several ways
        if isinstance(error, PoseliftError):
            raise
        reason = f"{type(error).__name__}: {error}"
        raise InputError(f"{what} {path}: not a readable PyTorch checkpoint ({reason})") from None
