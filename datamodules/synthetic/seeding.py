"""Random generators keyed by names, so that each subject, take and camera draws its own numbers.

Keying by name (not by call order) keeps a dataset stable when another part of it changes: adding an action
does not move the random numbers of the others.
"""

from __future__ import annotations

import zlib

import numpy as np

from components.errors import InputError


def seeded_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator fixed by ``seed`` and string ``keys`` (CRC32: stable across processes, unlike ``hash``)."""
    if seed < 0:
        raise InputError(f"seed must be non-negative, got {seed}")
    return np.random.default_rng([seed, *(zlib.crc32(key.encode()) for key in keys)])
