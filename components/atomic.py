"""Writing files so that readers never see half of one: write a temporary file beside the target, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_destination(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` (same suffix: some writers pick the format from it), renamed onto ``path``
    when the block succeeds and removed when it fails, leaving ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(descriptor)
    os.chmod(temporary, 0o644)  # mkstemp makes the file private; outputs are meant to be shared
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """``text`` into ``path`` (UTF-8), atomically."""
    with atomic_destination(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
