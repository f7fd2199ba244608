"""Smooth random signals of time that the motion kinds are built from.

Every function takes the times ``t`` ``(T,)`` in seconds (frames at :data:`FPS`) and draws its randomness
from the generator it is given, in a fixed order, so a take is reproducible from one seed.
"""

from __future__ import annotations

import numpy as np

from datamodules.synthetic.volume import CaptureVolume

FPS = 50.0
"""Frame rate of every synthetic motion (Human3.6M's)."""


def smooth_noise(
    rng: np.random.Generator, t: np.ndarray, low: float = 0.05, high: float = 0.4, parts: int = 3
) -> np.ndarray:
    """Smooth random signal ``(T,)`` in [-1, 1]: a sum of sinusoids with frequencies in [low, high] Hz."""
    freq, phase = rng.uniform(low, high, parts), rng.uniform(0, 2 * np.pi, parts)
    weight = rng.uniform(0.5, 1, parts)
    return np.sin(2 * np.pi * freq * t[:, None] + phase) @ weight / weight.sum()


def unit_noise(rng: np.random.Generator, t: np.ndarray, low: float = 0.05, high: float = 0.4) -> np.ndarray:
    """Like :func:`smooth_noise`, mapped to [0, 1]."""
    return 0.5 + 0.5 * smooth_noise(rng, t, low, high)


def cycle_phase(rng: np.random.Generator, t: np.ndarray, period: tuple[float, float]) -> np.ndarray:
    """Position ``(T,)`` in [0, 1) within an episode repeating every ``period`` (drawn in range) seconds."""
    return (t / rng.uniform(*period) + rng.uniform()) % 1.0


def smooth_window(phase: np.ndarray, start: float, stop: float, ramp: float = 0.12) -> np.ndarray:
    """Smooth 0 -> 1 -> 0 over the cycle interval [start, stop], with smoothstep ramps of width ``ramp``."""
    rise = np.clip((phase - start) / ramp, 0, 1)
    fall = np.clip((stop - phase) / ramp, 0, 1)
    level = np.minimum(rise, fall)
    return level * level * (3 - 2 * level)


def drift_path(
    rng: np.random.Generator, t: np.ndarray, volume: CaptureVolume, scale: float, wander: float = 0.25
) -> np.ndarray:
    """A spot anywhere in ``scale`` x 3/4 of the volume's ellipse plus a slow wander: ``(T, 2)`` metres."""
    radius, angle = 0.75 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)  # uniform over the disk
    spot = radius * np.array([np.cos(angle), np.sin(angle)])
    walk = np.stack([smooth_noise(rng, t, 0.02, 0.1), smooth_noise(rng, t, 0.02, 0.1)], axis=-1)
    return (scale * (spot + wander * walk)) @ volume.axes.T


def facing(rng: np.random.Generator, t: np.ndarray, swing: float) -> np.ndarray:
    """Yaw ``(T,)`` degrees: a random heading plus slow turns of about ``swing`` degrees."""
    return rng.uniform(0, 360) + swing * smooth_noise(rng, t, 0.02, 0.12)
