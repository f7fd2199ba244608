"""The dilated temporal convolution lifter of VideoPose3D and its strided single-frame twin, in one module.

Architecture (Pavllo et al., CVPR 2019): ``expand_conv`` (width ``w0``) -> BatchNorm -> ReLU -> Dropout, then one
residual block per further width ``w_i``: a width-``w_i`` convolution dilated by ``d_i = w0 * ... * w_{i-1}`` and a
width-1 convolution, each followed by BatchNorm -> ReLU -> Dropout, plus the block input as a residual; finally
``shrink``, a width-1 convolution with bias. All convolutions are "valid" (no zero padding), so ``T`` input frames
give ``T - receptive_field + 1`` output frames; sequences are edge-padded outside the model (datamodules/windows.py).

Two ways to run the same parameters (identical state_dict, so switching needs no copy):

- **dilated** (``forward(x)``): any ``T >= receptive_field``; used for evaluation on whole sequences.
- **strided twin** (``forward(x, strided=True)``): exactly ``receptive_field`` frames in, one frame out. Each
  convolution uses stride = width instead of dilation, so it computes only the frames that the single output depends
  on (14.8x fewer multiply-adds than the dilated model for 243 frames); used for training.

Both run channels-last ``(B, T, C)``, where every convolution is a matrix multiply:

- A width-``w`` convolution with stride ``w`` reads non-overlapping groups of ``w`` consecutive frames. In
  channels-last memory such a group is ``w * C`` contiguous numbers, so reshaping ``(B, T, C)`` to
  ``(B, T / w, w * C)`` (a free view) lines every group up as one row, and the convolution *is* that row times the
  weight laid out as ``(w * C_in, C_out)``, tap-major. Same weights, same sums, only in another order.
- A width-``w`` convolution with dilation ``d`` is ``out[t] = sum_k x[t + k * d] @ W_k^T`` (``W_k`` the
  ``(C_out, C_in)`` matrix of tap ``k``): ``w`` matrix multiplies on shifted row ranges, accumulated in place (no
  copy of the input), or, when autograd records the graph, one matrix multiply on the ``w`` shifted ranges
  concatenated along channels.
- When BatchNorm uses its running statistics (eval mode) it is an affine map per channel and is folded into the
  convolution's weight and bias on the fly (``W * s``, ``beta - mean * s``); the parameters stay untouched.

Results equal the plain ``conv1d`` formulation up to float32 rounding (tests/components/networks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.camera import normalize_to_person
from components.errors import InputError
from components.lifter import Timing

INPUT_NORMALIZATIONS = ("screen", "person")


class TemporalConvLifter(nn.Module):
    """Lifts screen-normalised 2D keypoint sequences to root-relative 3D poses in metres (VideoPose3D).

    The state_dict keys and shapes equal those of the published VideoPose3D checkpoints (``TemporalModel`` and
    ``TemporalModelOptimized1f``): ``expand_bn.*``, ``shrink.{weight,bias}``, ``expand_conv.weight``,
    ``layers_conv.{i}.weight`` and ``layers_bn.{i}.*``, in that order.

    Args:
        num_joints_in: ``J_in``, joints of the 2D input layout.
        num_joints_out: ``J_out``, joints of the 3D output layout (1 for a trajectory model).
        in_features: ``F``, features per input joint: 2 (x, y) or 3 (x, y, score).
        filter_widths: odd convolution widths, the first for ``expand_conv``; the receptive field is their product.
        channels: ``C``, channels of every hidden layer.
        dropout: dropout probability after every hidden layer (training only).
        causal: each output frame is the *last* frame of its window instead of the centre, so a window of
            ``receptive_field`` frames ending at ``t`` predicts ``t``; residuals take the last frame of each block
            input accordingly.
        input_normalization: ``screen`` lifts the input as given (screen-normalised by the frame width, as
            published); ``person`` first re-centres and rescales every frame on the person
            (:func:`components.camera.normalize_to_person`), so the lifter does not depend on the frame's size
            and orientation (a portrait phone video) or on where the person stands. A trajectory model needs
            ``screen``: it reads the position the other discards.
    """

    def __init__(
        self,
        num_joints_in: int = 17,
        num_joints_out: int = 17,
        in_features: int = 2,
        filter_widths: Sequence[int] = (3, 3, 3),
        channels: int = 1024,
        dropout: float = 0.25,
        causal: bool = False,
        input_normalization: Literal["screen", "person"] = "screen",
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in filter_widths)
        if not widths or any(w < 1 or w % 2 == 0 for w in widths):
            raise InputError(f"filter_widths must be a non-empty sequence of positive odd numbers, got {widths}")
        if not 0.0 <= dropout < 1.0:
            raise InputError(f"dropout must lie in [0, 1), got {dropout}")
        if input_normalization not in INPUT_NORMALIZATIONS:
            raise InputError(f"input_normalization must be one of {INPUT_NORMALIZATIONS}, got {input_normalization!r}")
        self.num_joints_in = num_joints_in
        self.num_joints_out = num_joints_out
        self.in_features = in_features
        self.filter_widths = widths
        self.channels = channels
        self.dropout = dropout
        self.causal = causal
        self.input_normalization = input_normalization
        # The modules only hold the parameters (forward uses their weights directly, see the module docstring).
        # Registration order reproduces the published key order: the base class creates expand_bn and shrink.
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.shrink = nn.Conv1d(channels, 3 * num_joints_out, 1)
        self.expand_conv = nn.Conv1d(num_joints_in * in_features, channels, widths[0], bias=False)
        self.layers_conv = nn.ModuleList()
        self.layers_bn = nn.ModuleList()
        for width, dilation in zip(widths[1:], self.dilations[1:], strict=True):
            self.layers_conv.append(nn.Conv1d(channels, channels, width, dilation=dilation, bias=False))
            self.layers_bn.append(nn.BatchNorm1d(channels, momentum=0.1))
            self.layers_conv.append(nn.Conv1d(channels, channels, 1, bias=False))
            self.layers_bn.append(nn.BatchNorm1d(channels, momentum=0.1))

    @property
    def receptive_field(self) -> int:
        """Input frames that one output frame depends on: the product of the filter widths."""
        return math.prod(self.filter_widths)

    @property
    def timing(self) -> Timing:
        """Which input frames an output frame reads (``components.lifter.Timing``)."""
        return Timing.of(self)

    @property
    def dilations(self) -> tuple[int, ...]:
        """Dilation of each width's convolution in the dilated model: the product of the earlier widths."""
        return tuple(math.prod(self.filter_widths[:i]) for i in range(len(self.filter_widths)))

    output_layers = ("shrink",)  # what a network reusing the trunk (``features``) drops

    @property
    def feature_width(self) -> int:
        """Width of :meth:`features` per frame: ``channels``."""
        return self.channels

    def set_bn_momentum(self, momentum: float) -> None:
        """Set the momentum of every BatchNorm (the training schedule decays it from 0.1 towards 0.001)."""
        if not 0.0 <= momentum <= 1.0:
            raise InputError(f"BatchNorm momentum must lie in [0, 1], got {momentum}")
        for bn in (self.expand_bn, *self.layers_bn):
            bn.momentum = momentum

    def extra_repr(self) -> str:
        return (
            f"J_in={self.num_joints_in}, J_out={self.num_joints_out}, F={self.in_features}, "
            f"filter_widths={self.filter_widths}, receptive_field={self.receptive_field}, causal={self.causal}, "
            f"input_normalization={self.input_normalization}"
        )

    def forward(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor:
        """Lift a batch of 2D keypoint windows.

        Args:
            keypoints_2d: ``(B, T, J_in, F)`` screen-normalised 2D keypoints.
            strided: run the strided single-frame twin (training windows, ``T == receptive_field``) instead of the
                dilated model (``T >= receptive_field``). Both use the same parameters and agree exactly.

        Returns:
            ``(B, T - receptive_field + 1, J_out, 3)`` root-relative 3D poses in metres; output frame ``i`` belongs
            to input frame ``timing.input_frame(i)``.
        """
        x = self.features(keypoints_2d, strided)
        out = F.linear(x, self.shrink.weight.squeeze(-1), self.shrink.bias)
        return out.reshape(x.shape[0], out.shape[1], self.num_joints_out, 3)

    def features(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor:
        """The last hidden layer, ``(B, T - receptive_field + 1, channels)``: the trunk other heads can share."""
        self._check_input(keypoints_2d, strided)
        if self.input_normalization == "person":
            keypoints_2d = normalize_to_person(keypoints_2d)
        batch, frames = keypoints_2d.shape[:2]
        x = self._hidden_layer(keypoints_2d.reshape(batch, frames, -1), 0, strided)
        for block in range(1, len(self.filter_widths)):
            x = self._residual_block(x, block, strided)
        return x

    def _check_input(self, keypoints_2d: Tensor, strided: bool) -> None:
        shape = tuple(keypoints_2d.shape)
        expected = f"(B, T, J_in={self.num_joints_in}, F={self.in_features})"
        if keypoints_2d.dim() != 4 or shape[2:] != (self.num_joints_in, self.in_features):
            raise InputError(f"keypoints_2d must have shape {expected}, got {shape}")
        rf = self.receptive_field
        if strided and shape[1] != rf:
            raise InputError(f"the strided twin needs exactly receptive_field={rf} frames, got shape {shape}")
        if shape[1] < rf:
            raise InputError(f"the lifter needs at least receptive_field={rf} frames, got shape {shape}")

    def _residual_block(self, x: Tensor, block: int, strided: bool) -> Tensor:
        """Block ``block >= 1``: dilated (or strided) conv, width-1 conv, plus the input at the predicted frame."""
        width, dilation = self.filter_widths[block], self.dilations[block]
        # Predicted frame within each width-w window of the block input: the centre, or the last one when causal.
        offset = width - 1 if self.causal else width // 2
        if strided:
            residual = x[:, offset::width]
        else:
            residual = x[:, offset * dilation : x.shape[1] - (width - 1 - offset) * dilation]
        h = self._hidden_layer(x, 2 * block - 1, strided)
        h = self._hidden_layer(h, 2 * block, strided)
        # In place saves an allocation, but only when no graph keeps h for the ReLU backward.
        return h + residual if h.requires_grad else h.add_(residual)

    def _hidden_layer(self, x: Tensor, index: int, strided: bool) -> Tensor:
        """Convolution ``index`` (0 = expand_conv) -> BatchNorm -> Dropout -> ReLU on ``(B, T, C)`` tensors.

        Dropout before ReLU equals the usual order exactly (the dropout scale is non-negative) and lets both run in
        place: BatchNorm's backward needs its input, not its output, and ReLU's backward needs only its output.
        """
        conv, bn = self._layer(index)
        if bn.training or bn.running_mean is None:
            h = _temporal_conv(x, conv.weight, None, conv.dilation[0], strided)
            # BatchNorm1d on (B, C, T) normalises over batch and frames: exactly BatchNorm on the (B * T, C) rows.
            # The in-place ops below then act on BatchNorm's own output, not on a view of it (a view would make
            # autograd copy the gradient back into the base tensor).
            rows = bn(h.reshape(-1, h.shape[-1]))
        else:
            h = _temporal_conv(x, *_fold_batch_norm(conv.weight, bn), conv.dilation[0], strided)
            rows = h.view(-1, h.shape[-1])
        if self.training and self.dropout > 0:
            rows = rows.mul_(_dropout_mask(rows, self.dropout))
        return rows.relu_().view(h.shape)

    def _layer(self, index: int) -> tuple[nn.Conv1d, nn.BatchNorm1d]:
        if index == 0:
            return self.expand_conv, self.expand_bn
        return self.layers_conv[index - 1], self.layers_bn[index - 1]


def _dropout_mask(like: Tensor, p: float) -> Tensor:
    """Dropout multipliers shaped like ``like``: 0 with probability ``p``, else ``1 / (1 - p)``.

    Each element compares 8 random bits (when ``p`` is a multiple of 2**-8, as 0.25 and 0.5 are) or 16 random
    bits (``p`` rounded to a multiple of 2**-16, at most 8e-6 away) with a threshold; the bits come 8 or 4 to an
    int64 draw. On CPU the generator is serial, and one ``bernoulli_`` sample per element made dropout cost as much
    as a third of the matrix multiplies.
    """
    bits = 8 if (p * 2**8).is_integer() else 16
    count, per_draw = like.numel(), 64 // bits
    draws = torch.empty(-(-count // per_draw), dtype=torch.int64, device=like.device).random_(-(2**63), None)
    uniform = draws.view(torch.int8 if bits == 8 else torch.int16)[:count].view(like.shape)
    # uniform is uniform over [-2**(bits-1), 2**(bits-1)): P(uniform < threshold) = round(p * 2**bits) / 2**bits.
    keep = uniform >= round(p * 2**bits) - 2 ** (bits - 1)
    return keep.to(like.dtype).mul_(1.0 / (1.0 - p))


def _fold_batch_norm(weight: Tensor, bn: nn.BatchNorm1d) -> tuple[Tensor, Tensor]:
    """Fold an eval-mode BatchNorm into the preceding bias-free convolution.

    ``bn(conv(x, W)) = conv(x, W * s) + (beta - mean * s)`` with ``s = gamma / sqrt(var + eps)`` per output channel.

    Args:
        weight: ``(C_out, C_in, w)`` convolution weight.

    Returns:
        The scaled weight ``(C_out, C_in, w)`` and the bias ``(C_out,)``.
    """
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = -bn.running_mean * scale
    if bn.bias is not None:
        bias = bias + bn.bias
    return weight * scale[:, None, None], bias


def _tap_matrix(weight: Tensor) -> Tensor:
    """``(C_out, C_in, w)`` convolution weight -> ``(C_out, w * C_in)``, tap-major columns ``k * C_in + c``.

    This is the matrix of the strided convolution (column ``k * C_in + c`` multiplies channel ``c`` of the
    ``k``-th frame of a group), and its column block ``k`` is the ``(C_out, C_in)`` matrix of tap ``k``. Swapping
    only the last two dimensions keeps the copy cache-friendly (6x faster than a full ``(w, C_in, C_out)`` one).
    """
    if weight.shape[-1] == 1:
        # One tap: the same matrix without the transpose, whose backward would leave the gradient with another
        # stride on the size-1 axis than the parameter's (DDP then warns and copies every step).
        return weight.flatten(1)
    return weight.transpose(1, 2).reshape(weight.shape[0], -1)


def _temporal_conv(x: Tensor, weight: Tensor, bias: Tensor | None, dilation: int, strided: bool) -> Tensor:
    """Valid 1D convolution on channels-last frames, as matrix multiplies.

    Args:
        x: ``(B, T, C_in)``.
        weight: ``(C_out, C_in, w)`` in the ``nn.Conv1d`` layout.
        bias: ``(C_out,)`` or None.
        dilation: tap spacing of the dilated form (ignored when strided).
        strided: stride ``w`` and no dilation: ``T`` must be a multiple of ``w``.

    Returns:
        ``(B, T / w, C_out)`` when strided, else ``(B, T - (w - 1) * dilation, C_out)``.
    """
    batch, frames, channels_in = x.shape
    width = weight.shape[-1]
    matrix = _tap_matrix(weight)
    if width == 1 or strided:
        # Stride = width: each output frame reads its own w consecutive frames, i.e. w * C_in contiguous numbers.
        return F.linear(x.reshape(batch, frames // width, width * channels_in), matrix, bias)
    if x.requires_grad or matrix.requires_grad:
        return _dilated_conv_autograd(x, matrix, bias, width, dilation)
    return _dilated_conv_inplace(x, matrix, bias, width, dilation)


def _dilated_conv_autograd(x: Tensor, matrix: Tensor, bias: Tensor | None, width: int, dilation: int) -> Tensor:
    """Dilated convolution for training: the ``w`` shifted frame ranges side by side, one matrix multiply.

    Args:
        x: ``(B, T, C_in)``; matrix: ``(C_out, w * C_in)`` from ``_tap_matrix``; bias: ``(C_out,)`` or None.

    Returns:
        ``(B, T - (w - 1) * dilation, C_out)``.
    """
    out_frames = x.shape[1] - (width - 1) * dilation
    shifted = torch.cat([x[:, k * dilation : k * dilation + out_frames] for k in range(width)], dim=-1)
    return F.linear(shifted, matrix, bias)


def _dilated_conv_inplace(x: Tensor, matrix: Tensor, bias: Tensor | None, width: int, dilation: int) -> Tensor:
    """Dilated convolution without autograd: ``out[t] = bias + sum_k x[t + k * dilation] @ W_k^T``.

    Each term is one GEMM on a contiguous range of rows, accumulated into the output in place, so nothing but
    the output is allocated.

    Args:
        x: ``(B, T, C_in)``; matrix: ``(C_out, w * C_in)`` from ``_tap_matrix``; bias: ``(C_out,)`` or None.

    Returns:
        ``(B, T - (w - 1) * dilation, C_out)``.
    """
    out_frames = x.shape[1] - (width - 1) * dilation
    # out= GEMMs escape autocast, so match the input's dtype by hand (x may come out of an autocast F.linear).
    matrix, bias = matrix.to(x.dtype), None if bias is None else bias.to(x.dtype)
    taps = matrix.t().reshape(width, -1, matrix.shape[0])  # (w, C_in, C_out) views, no copy
    out = x.new_empty(x.shape[0], out_frames, matrix.shape[0])
    for sequence, rows in zip(x, out, strict=True):
        if bias is None:
            torch.mm(sequence[:out_frames], taps[0], out=rows)
        else:
            torch.addmm(bias, sequence[:out_frames], taps[0], out=rows)
        for k in range(1, width):
            rows.addmm_(sequence[k * dilation : k * dilation + out_frames], taps[k])
    return out
