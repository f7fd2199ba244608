"""Frame-by-frame lifting for live input: a causal lifter over a rolling buffer of its receptive field.

A causal lifter predicts frame ``t`` from frames ``t - receptive_field + 1 .. t`` only, so a live stream can be
lifted one frame at a time with a delay of zero frames. :class:`StreamingLifter` keeps the last
``receptive_field`` frames and returns each new frame's pose as soon as it arrives.

It reproduces the offline evaluation exactly: the window sampler (``datamodules/windows.py``) pads a causal
sequence with ``receptive_field - 1`` copies of its first frame in front (``pad_before = 2 * pad``) and nothing
behind, so the output for frame ``t`` reads padded frames ``t .. t + receptive_field - 1``. The buffer here
starts filled with copies of the first frame for the same reason.

The buffer is one preallocated ``(2 * receptive_field, J_in, F)`` tensor. Each frame is written twice, at ``p``
and ``p + receptive_field`` (``p`` = frame count modulo the receptive field), so the last ``receptive_field``
frames in order are always the contiguous slice ``[p + 1, p + 1 + receptive_field)``: no per-frame copy of the
window and no growing list.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from components.errors import InputError
from components.lifter import Timing


class StreamingLifter:
    """Lift one 2D frame at a time with a causal lifter (contract in ``lightning_modules/base.py``).

    The lifter is switched to eval mode (BatchNorm running statistics, no dropout), as in offline evaluation.

    Args:
        lifter: a causal lifter, ``(B, T, J_in, F) -> (B, T - receptive_field + 1, J_out, 3)``, that accepts
            ``strided=True`` for windows of exactly ``receptive_field`` frames (its single-frame twin, which
            computes only what the last output needs).

    Raises:
        ValueError: the lifter is not causal (a centred lifter needs future frames).
    """

    def __init__(self, lifter: nn.Module) -> None:
        if not getattr(lifter, "causal", False):
            raise InputError(
                f"streaming needs a causal lifter (lifter.causal is True), but {type(lifter).__name__} has "
                f"causal={getattr(lifter, 'causal', None)!r}: a centred lifter needs future frames"
            )
        self.lifter = lifter.eval()
        self.receptive_field = Timing.of(lifter).receptive_field
        parameter = next(lifter.parameters(), None)
        self._dtype = parameter.dtype if parameter is not None else torch.get_default_dtype()
        self._device = parameter.device if parameter is not None else torch.device("cpu")
        self._buffer: Tensor | None = None  # allocated at the first frame, when (J_in, F) is known
        self.frames_seen = 0

    def reset(self) -> None:
        """Start a new sequence: the next frame is treated as a first frame (the buffer is kept, not freed)."""
        self.frames_seen = 0

    @torch.no_grad()
    def push(self, frame: Tensor) -> Tensor:
        """Add the next frame and return its pose.

        Args:
            frame: ``(J_in, F)`` screen-normalised 2D keypoints of the newest frame.

        Returns:
            ``(J_out, 3)`` root-relative camera-space pose of that frame, metres.
        """
        frame = self._check_frame(frame)
        rf = self.receptive_field
        slot = self.frames_seen % rf
        if self.frames_seen == 0:
            self._buffer[:] = frame  # edge replication, as the evaluation pads a causal sequence
        else:
            self._buffer[slot] = frame
            self._buffer[slot + rf] = frame
        self.frames_seen += 1
        window = self._buffer[slot + 1 : slot + 1 + rf]
        return self.lifter(window[None], strided=True)[0, -1]

    def _check_frame(self, frame: Tensor) -> Tensor:
        frame = torch.as_tensor(frame).to(device=self._device, dtype=self._dtype)
        if frame.dim() != 2:
            raise InputError(f"a frame must have shape (J_in, F), got {tuple(frame.shape)}")
        if self._buffer is None:
            self._buffer = frame.new_empty((2 * self.receptive_field, *frame.shape))
        elif frame.shape != self._buffer.shape[1:]:
            expected = tuple(self._buffer.shape[1:])
            raise InputError(
                f"a frame must have shape (J_in, F) = {expected} like the first one, got {tuple(frame.shape)}"
            )
        return frame
