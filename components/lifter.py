"""The lifter contract and its timing: what every network a regime trains must offer, and the one place that says
which input frames an output frame depends on.

A lifter maps screen-normalised 2D ``(B, T_in, J_in, F)`` to root-relative camera-space poses in metres
``(B, T_in - receptive_field + 1, J_out, 3)``; it accepts ``strided=True`` for windows of exactly
``receptive_field`` frames (its fast single-frame twin, when it has one). A lifter that takes windows of a bounded
length (a sequence-to-sequence transformer's clips) says so with ``max_frames`` (input frames); others take any.

Timing: output frame ``t`` of a window reads input frames ``[t, t + receptive_field)`` of that window, and belongs
to input frame ``t + pad_before``: the centre of those frames, or the last one when the lifter is causal. A whole
sequence is therefore edge-padded by ``pad_before`` frames in front and ``pad_after`` behind
(:meth:`Timing.pad_sequence`) to give one output per frame. The window sampler, every regime, retrieval,
streaming and the figures ask this object; none works it out again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from components.errors import InputError

CONTRACT = ("receptive_field", "causal", "forward")


def check_window_frames(lifter: object, frames: int | None, option: str) -> None:
    """Raise naming ``option`` when windows of ``frames`` input frames (None: whole sequences of any length) are
    longer than the lifter's ``max_frames``; lifters without it take any length."""
    longest = getattr(lifter, "max_frames", None)
    if longest is None or (frames is not None and frames <= longest):
        return
    given = "whole sequences (None)" if frames is None else f"windows of {frames} input frames"
    raise InputError(f"{option} gives {given}, but the lifter takes at most max_frames={longest}: set it <= {longest}")


@dataclass(frozen=True)
class Timing:
    """Receptive field and causality of a lifter, which fix how much context each output frame needs."""

    receptive_field: int = 1
    causal: bool = False

    def __post_init__(self) -> None:
        if self.receptive_field < 1 or self.receptive_field % 2 == 0:
            raise InputError(f"receptive_field must be a positive odd number, got {self.receptive_field}")

    @classmethod
    def of(cls, lifter) -> Timing:
        """The timing of a network that follows the contract."""
        return cls(int(lifter.receptive_field), bool(lifter.causal))

    @property
    def pad(self) -> int:
        """``(receptive_field - 1) / 2``: frames of context on each side of a centred window."""
        return (self.receptive_field - 1) // 2

    @property
    def causal_shift(self) -> int:
        """How far a causal window is moved into the past: ``pad`` (0 when centred)."""
        return self.pad if self.causal else 0

    @property
    def pad_before(self) -> int:
        """Input frames before the one an output frame belongs to; also the edge padding in front of a sequence."""
        return self.pad + self.causal_shift

    @property
    def pad_after(self) -> int:
        """Input frames after the one an output frame belongs to; also the edge padding behind a sequence."""
        return self.pad - self.causal_shift

    def input_frame(self, output_frame: int) -> int:
        """Index, within a window, of the input frame that ``output_frame`` of that window predicts."""
        return output_frame + self.pad_before

    def pad_sequence(self, frames: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """``(T, ...)`` -> ``(T + receptive_field - 1, ...)`` edge-padded, so the lifter gives one output per frame."""
        before, after = self.pad_before, self.pad_after
        if isinstance(frames, Tensor):
            first, last = frames[:1].expand(before, *frames.shape[1:]), frames[-1:].expand(after, *frames.shape[1:])
            return torch.cat([first, frames, last])
        return np.pad(frames, ((before, after), *[(0, 0)] * (frames.ndim - 1)), mode="edge")


@runtime_checkable
class Lifter(Protocol):
    """What a regime needs of a network (the ``lifter`` and, when there is one, the ``trajectory_model``)."""

    receptive_field: int
    causal: bool

    def forward(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor: ...


def check_lifter(network, role: str = "lifter") -> Timing:
    """The network's timing; a ``TypeError`` naming what is missing when it does not follow the contract."""
    missing = [name for name in CONTRACT if not hasattr(network, name)]
    if missing:
        raise TypeError(
            f"{role} {type(network).__name__} lacks {missing} of the lifter contract (components.lifter.Lifter): "
            "receptive_field (odd int), causal (bool), forward(keypoints_2d, strided=False)"
        )
    return Timing.of(network)
