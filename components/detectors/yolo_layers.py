"""The building blocks of the YOLO11 pose network, written from the published architecture.

Attribute names (``cv1``, ``cv2``, ``m``, ``attn``, ``ffn``, ``dfl`` ...) reproduce the keys of Ultralytics'
state dicts, so the checkpoint loads with ``strict=True``. Blocks receive their sub-blocks (or channel counts)
as arguments; :mod:`components.detectors.yolo_pose` reads those counts from the checkpoint's tensor shapes.
Feature maps are ``(batch, channels, height, width)`` throughout.
"""

from __future__ import annotations

import torch
from torch import nn

BATCHNORM_EPS = 1e-3  # Ultralytics' BatchNorm2d eps (torch's default is 1e-5)


class ConvBnAct(nn.Module):
    """Conv2d (no bias, "same" padding) -> BatchNorm2d -> SiLU (or nothing, where the block is linear)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(c_out, eps=BATCHNORM_EPS)
        self.act = nn.SiLU() if act else nn.Identity()

    @property
    def in_channels(self) -> int:
        return self.conv.in_channels

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the (evaluation-mode) BatchNorm into the convolution: one op instead of two at inference."""
        if not isinstance(self.bn, nn.BatchNorm2d):
            return
        gain = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        fused = nn.Conv2d(
            self.conv.in_channels,
            self.conv.out_channels,
            self.conv.kernel_size,
            self.conv.stride,
            self.conv.padding,
            groups=self.conv.groups,
            bias=True,
        ).to(self.conv.weight)
        fused.weight.copy_(self.conv.weight * gain[:, None, None, None])
        fused.bias.copy_(self.bn.bias - self.bn.running_mean * gain)
        self.conv, self.bn = fused, nn.Identity()


class Bottleneck(nn.Module):
    """Two convolutions with a residual connection when input and output widths agree."""

    def __init__(self, cv1: ConvBnAct, cv2: ConvBnAct):
        super().__init__()
        self.cv1, self.cv2 = cv1, cv2
        self.add = cv1.in_channels == cv2.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3k(nn.Module):
    """CSP block: one path through a chain of bottlenecks, one shortcut path, merged by a 1x1 convolution."""

    def __init__(self, cv1: ConvBnAct, cv2: ConvBnAct, cv3: ConvBnAct, blocks: list[Bottleneck]):
        super().__init__()
        self.cv1, self.cv2, self.cv3 = cv1, cv2, cv3
        self.m = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), dim=1))


class C3k2(nn.Module):
    """Split the 1x1 projection in two halves; each inner block refines the last output; all are concatenated."""

    def __init__(self, cv1: ConvBnAct, cv2: ConvBnAct, blocks: list[nn.Module]):
        super().__init__()
        self.cv1, self.cv2 = cv1, cv2
        self.m = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = list(self.cv1(x).chunk(2, dim=1))
        for block in self.m:
            outputs.append(block(outputs[-1]))
        return self.cv2(torch.cat(outputs, dim=1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained max-pools (receptive fields 5, 9, 13) concatenated."""

    def __init__(self, cv1: ConvBnAct, cv2: ConvBnAct, kernel: int = 5):
        super().__init__()
        self.cv1, self.cv2 = cv1, cv2
        self.m = nn.MaxPool2d(kernel, stride=1, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [self.cv1(x)]
        for _ in range(3):
            outputs.append(self.m(outputs[-1]))
        return self.cv2(torch.cat(outputs, dim=1))


class Attention(nn.Module):
    """Multi-head self-attention over all positions, with a depthwise positional encoding of the values.

    The ``qkv`` projection's channels are grouped per head as ``[query, key, value]`` of widths
    ``(key_dim, key_dim, head_dim)``; keys are half as wide as values (attention ratio 0.5).
    """

    def __init__(self, qkv: ConvBnAct, proj: ConvBnAct, pe: ConvBnAct, num_heads: int):
        super().__init__()
        self.qkv, self.proj, self.pe = qkv, proj, pe
        dim = proj.out_channels
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = (qkv.out_channels - dim) // (2 * num_heads)
        self.scale = self.key_dim**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        qkv = self.qkv(x).view(batch, self.num_heads, 2 * self.key_dim + self.head_dim, height * width)
        query, key, value = qkv.split((self.key_dim, self.key_dim, self.head_dim), dim=2)
        weights = ((query.transpose(-2, -1) @ key) * self.scale).softmax(dim=-1)  # (batch, heads, N, N)
        attended = (value @ weights.transpose(-2, -1)).view(batch, channels, height, width)
        return self.proj(attended + self.pe(value.reshape(batch, channels, height, width)))


class PSABlock(nn.Module):
    """Attention then a two-layer feed-forward network, each with a residual connection."""

    def __init__(self, attn: Attention, ffn: nn.Sequential):
        super().__init__()
        self.attn, self.ffn = attn, ffn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.ffn(x)


class C2PSA(nn.Module):
    """Half of the channels pass through attention blocks, the other half bypass them."""

    def __init__(self, cv1: ConvBnAct, cv2: ConvBnAct, blocks: list[PSABlock]):
        super().__init__()
        self.cv1, self.cv2 = cv1, cv2
        self.m = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bypass, attended = self.cv1(x).chunk(2, dim=1)
        return self.cv2(torch.cat((bypass, self.m(attended)), dim=1))


class Concat(nn.Module):
    """Concatenate feature maps along channels (a layer of its own so layer indices match the checkpoint)."""

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(inputs, dim=1)


class DFL(nn.Module):
    """Distribution focal loss decoding: the expected value of a softmax over ``bins`` distance bins.

    ``conv`` is a fixed 1x1 convolution holding ``0, 1, ..., bins - 1`` (it is in the checkpoint).
    """

    def __init__(self, bins: int = 16):
        super().__init__()
        self.conv = nn.Conv2d(bins, 1, 1, bias=False).requires_grad_(False)
        self.bins = bins

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """``(batch, 4 * bins, anchors)`` logits -> ``(batch, 4, anchors)`` distances in grid cells."""
        batch, _, anchors = logits.shape
        probabilities = logits.view(batch, 4, self.bins, anchors).transpose(1, 2).softmax(dim=1)
        return self.conv(probabilities).view(batch, 4, anchors)


def _flatten_levels(branches: nn.ModuleList, features: list[torch.Tensor]) -> torch.Tensor:
    """Apply one branch per pyramid level and join the levels' positions: ``(batch, channels, anchors)``."""
    return torch.cat([branch(x).flatten(2) for branch, x in zip(branches, features, strict=True)], dim=2)


def anchor_grid(shapes: list[tuple[int, int]], strides: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Cell centres of every level, in grid units, with each cell's stride: ``(anchors, 3)`` = ``[x, y, stride]``.

    The order (level, then row, then column) matches the flattened head outputs.
    """
    rows = []
    for (height, width), stride in zip(shapes, strides, strict=True):
        ys, xs = torch.meshgrid(
            torch.arange(height, dtype=like.dtype, device=like.device) + 0.5,
            torch.arange(width, dtype=like.dtype, device=like.device) + 0.5,
            indexing="ij",
        )
        rows.append(torch.stack((xs.flatten(), ys.flatten(), torch.full_like(xs.flatten(), stride)), dim=1))
    return torch.cat(rows)


class PoseHead(nn.Module):
    """Per pyramid level: a box branch (``cv2``, distance distributions), a class branch (``cv3``) and a
    keypoint branch (``cv4``); decoded into input-image pixels.

    Returns ``boxes (batch, anchors, 4)`` as ``x1, y1, x2, y2`` pixels, ``scores (batch, anchors, classes)``
    in 0..1 and ``keypoints (batch, anchors, K, 3)`` as ``x, y`` pixels and a visibility in 0..1.
    """

    def __init__(
        self,
        cv2: nn.ModuleList,
        cv3: nn.ModuleList,
        cv4: nn.ModuleList,
        strides: tuple[int, ...],
        kpt_shape: tuple[int, int],
    ):
        super().__init__()
        self.cv2, self.cv3 = cv2, cv3
        self.dfl = DFL(cv2[0][-1].out_channels // 4)
        self.cv4 = cv4  # registered after dfl, as in the checkpoint, so state-dict keys come in the same order
        self.strides = tuple(strides)
        self.kpt_shape = tuple(kpt_shape)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        anchors = anchor_grid([tuple(x.shape[-2:]) for x in features], self.strides, features[0])
        centres, stride = anchors[:, :2].T, anchors[:, 2]  # (2, anchors), (anchors,)
        distances = self.dfl(_flatten_levels(self.cv2, features))  # (batch, 4, anchors): left, top, right, bottom
        boxes = torch.cat((centres - distances[:, :2], centres + distances[:, 2:]), dim=1) * stride
        scores = _flatten_levels(self.cv3, features).sigmoid()
        keypoints = self._decode_keypoints(_flatten_levels(self.cv4, features), centres, stride)
        return boxes.transpose(1, 2), scores.transpose(1, 2), keypoints

    def _decode_keypoints(self, raw: torch.Tensor, centres: torch.Tensor, stride: torch.Tensor) -> torch.Tensor:
        """``(batch, K * 3, anchors)`` raw outputs -> ``(batch, anchors, K, 3)``: x, y in input pixels (the raw value
        is half the offset in cells from the cell's top-left corner: ``(raw * 2 + centre - 0.5) * stride``)
        and a sigmoid visibility."""
        batch, _, count = raw.shape
        raw = raw.view(batch, *self.kpt_shape, count)
        xy = (raw[:, :, :2] * 2.0 + (centres - 0.5)) * stride
        visibility = raw[:, :, 2:3].sigmoid()
        return torch.cat((xy, visibility), dim=2).permute(0, 3, 1, 2)
