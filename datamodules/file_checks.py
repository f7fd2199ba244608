"""Checks shared by the dataset readers: a file exists, a damaged file's error stays short, a text or JSON file
is read with errors that name it, and one entry of an ``.npz`` archive of pickled Python objects (the Human3.6M
and preprocessed MPI-INF-3DHP files) is read safely."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from components.errors import InputError, MissingFileError, MissingKeyError

ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # an npz is a zip archive (the second: an empty one)


def existing(path: str | Path) -> Path:
    """``path`` as a Path; FileNotFoundError naming it unless it is a file."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: file not found")
    return path


def brief(error: Exception, limit: int = 160) -> str:
    """``Type: message`` cut to ``limit`` characters (decoders of damaged files can echo long byte strings)."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_text(path: Path, error: type[InputError] = InputError) -> str:
    """The file's UTF-8 text; ``error`` names the file and why it cannot be read, or the byte that is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as problem:
        raise error(f"{path}: not UTF-8 text (byte {problem.start}: {problem.reason})") from None
    except OSError as problem:
        raise error(f"{path}: cannot read ({problem.strerror or problem})") from None


def read_json(path: Path, error: type[InputError] = InputError) -> object:
    """The parsed JSON of a UTF-8 file (:func:`read_text`); ``error`` names the file and the parse problem."""
    try:
        return json.loads(read_text(path, error))
    except json.JSONDecodeError as problem:
        raise error(f"{path}: not valid JSON ({problem})") from None
    except RecursionError:
        raise error(f"{path}: not valid JSON (nested too deeply)") from None


def load_pickled_dict(path: str | Path, key: str, contents: str) -> dict:
    """The dict pickled under ``key`` of the ``.npz`` file ``path``.

    Args:
        contents: what the dict maps, for the error when it is no dict (e.g. ``"subject -> action -> array"``).

    Raises:
        FileNotFoundError, KeyError (naming the keys found), ValueError (no zip archive, a damaged archive, or
        no dict under ``key``).
    """
    path = existing(path)
    with path.open("rb") as handle:  # checked first: np.load would try to unpickle any other bytes
        if handle.read(4) not in ZIP_SIGNATURES:
            raise InputError(f"{path}: not a NumPy .npz archive (no zip signature); expected np.savez output")
    try:
        with np.load(path, allow_pickle=True) as archive:
            found = archive.files
            value = archive[key] if key in found else None
    except Exception as error:  # damaged zip, deflate or pickle data fail with many exception types
        raise InputError(f"{path}: corrupt .npz archive, cannot read {key!r} ({brief(error)})") from error
    if value is None:
        raise MissingKeyError(f"{path}: missing key {key!r} (found {found})")
    value = value.item() if value.dtype == object and value.shape == () else value
    if not isinstance(value, dict):
        raise InputError(f"{path}: {key!r} must be a pickled dict {contents}, got {type(value).__name__}")
    return value
