"""Handing freed heap memory back to the operating system while large datasets are loaded."""

from __future__ import annotations

import contextlib
import ctypes


def release_freed_memory() -> None:
    """Return heap pages freed by Python objects to the operating system (glibc ``malloc_trim``).

    glibc keeps freed small and medium blocks (a reader's per-recording arrays) in its heap, so after they are
    dropped they would still count as resident memory beside the contiguous stores, which are new mappings.
    A no-op where the C library is not glibc.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
