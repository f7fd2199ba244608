"""Writing dataset files so that a reader never sees half a dataset, even when the writer is interrupted."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from components.atomic import atomic_destination


def save_npz_atomic(path: Path, **arrays) -> None:
    """``np.savez_compressed`` to a temporary file beside ``path``, then rename it into place."""
    with atomic_destination(path) as temporary, open(temporary, "wb") as file:
        np.savez_compressed(file, **arrays)


def save_npz_files(directory: Path, contents: Mapping[str, Mapping[str, object]]) -> None:
    """Write ``contents`` (file name -> its arrays by key) into ``directory``, each file atomically."""
    # Compression dominates the run time and zlib releases the GIL: write the files side by side.
    with ThreadPoolExecutor(len(contents)) as pool:
        list(pool.map(lambda name: save_npz_atomic(directory / name, **contents[name]), contents))


def build_directory_atomically(
    target: Path, write: Callable[[Path], object], is_complete: Callable[[Path], bool]
) -> Path:
    """Return ``target``, first filling it with ``write(folder)`` unless ``is_complete(target)`` already.

    ``write`` fills a temporary sibling folder that is renamed into place at the end, so an interrupted run
    never leaves a half-written dataset; concurrent callers (e.g. DDP ranks) keep whichever finished first.
    """
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(staging)
        # Renamed folders are complete, so an incomplete one was damaged by hand: ours replaces it.
        if target.exists() and not is_complete(target):
            shutil.rmtree(target)
        try:
            os.rename(staging, target)
        except OSError:
            if not is_complete(target):  # not another caller finishing first: a real error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
