"""A YOLO11 pose detector in pure PyTorch, loading Ultralytics' ``yolo11n-pose.pt`` without the ``ultralytics``
package (which would replace a CPU torch with a CUDA build).

Pipeline per batch of frames: :class:`Letterbox` (keep the aspect ratio, long side to 640, pad to a multiple of
32 with grey 114) -> :class:`YoloPoseNet` (backbone, neck, pose head decoded into input pixels) -> score
threshold and :func:`non_maximum_suppression` per frame -> boxes and COCO-17 keypoints in the frame's pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from components.detectors.ultralytics_weights import UltralyticsWeights, read_ultralytics_weights
from components.detectors.yolo_layers import (
    C2PSA,
    SPPF,
    Attention,
    Bottleneck,
    C3k,
    C3k2,
    Concat,
    ConvBnAct,
    PoseHead,
    PSABlock,
)
from components.errors import InputError
from components.geometry import box_iou

YOLO11_POSE_TOPOLOGY: tuple[tuple[str, int | tuple[int, ...]], ...] = (
    *(("Conv", -1), ("Conv", -1), ("C3k2", -1), ("Conv", -1), ("C3k2", -1), ("Conv", -1), ("C3k2", -1)),
    *(("Conv", -1), ("C3k2", -1), ("SPPF", -1), ("C2PSA", -1)),  # backbone, strides 2 ... 32
    *(("Upsample", -1), ("Concat", (-1, 6)), ("C3k2", -1), ("Upsample", -1), ("Concat", (-1, 4)), ("C3k2", -1)),
    *(("Conv", -1), ("Concat", (-1, 13)), ("C3k2", -1), ("Conv", -1), ("Concat", (-1, 10)), ("C3k2", -1)),
    ("Pose", (16, 19, 22)),  # the head reads the stride 8, 16 and 32 outputs of the neck
)
"""Per numbered layer: its type and input (``-1`` the previous layer), as in the published YOLO11 pose model."""

PAD_VALUE = 114  # the grey Ultralytics trains with in letterbox borders
HEAD_CHANNELS_PER_ATTENTION_HEAD = 64  # C2PSA gives its attention one head per 64 channels


class _Shapes:
    """Builds layers whose widths, kernels and depths are read off a state dict's tensor shapes."""

    def __init__(self, state_dict: Mapping[str, torch.Tensor]):
        self.shapes = {name: tuple(value.shape) for name, value in state_dict.items()}

    def has(self, prefix: str) -> bool:
        return any(name.startswith(prefix + ".") for name in self.shapes)

    def count(self, prefix: str) -> int:
        """How many numbered children ``prefix.0``, ``prefix.1`` ... exist."""
        count = 0
        while self.has(f"{prefix}.{count}"):
            count += 1
        return count

    def conv(self, prefix: str, stride: int = 1, act: bool = True, depthwise: bool = False) -> ConvBnAct:
        c_out, c_in_per_group, kernel, _ = self.shapes[f"{prefix}.conv.weight"]
        groups = c_out if depthwise else 1
        return ConvBnAct(c_in_per_group * groups, c_out, kernel, stride, groups, act)

    def plain_conv(self, prefix: str) -> nn.Conv2d:
        """The biased 1x1 output convolution that ends each head branch."""
        c_out, c_in, kernel, _ = self.shapes[f"{prefix}.weight"]
        return nn.Conv2d(c_in, c_out, kernel)


def _bottleneck(shapes: _Shapes, prefix: str) -> Bottleneck:
    return Bottleneck(shapes.conv(f"{prefix}.cv1"), shapes.conv(f"{prefix}.cv2"))


def _c3k(shapes: _Shapes, prefix: str) -> C3k:
    blocks = [_bottleneck(shapes, f"{prefix}.m.{i}") for i in range(shapes.count(f"{prefix}.m"))]
    return C3k(shapes.conv(f"{prefix}.cv1"), shapes.conv(f"{prefix}.cv2"), shapes.conv(f"{prefix}.cv3"), blocks)


def _c3k2(shapes: _Shapes, prefix: str) -> C3k2:
    inner = _c3k if shapes.has(f"{prefix}.m.0.cv3") else _bottleneck  # deeper stages nest C3k blocks
    blocks = [inner(shapes, f"{prefix}.m.{i}") for i in range(shapes.count(f"{prefix}.m"))]
    return C3k2(shapes.conv(f"{prefix}.cv1"), shapes.conv(f"{prefix}.cv2"), blocks)


def _sppf(shapes: _Shapes, prefix: str) -> SPPF:
    return SPPF(shapes.conv(f"{prefix}.cv1"), shapes.conv(f"{prefix}.cv2"), kernel=5)


def _psa_block(shapes: _Shapes, prefix: str) -> PSABlock:
    proj = shapes.conv(f"{prefix}.attn.proj", act=False)
    attention = Attention(
        shapes.conv(f"{prefix}.attn.qkv", act=False),
        proj,
        shapes.conv(f"{prefix}.attn.pe", act=False, depthwise=True),
        num_heads=max(1, proj.out_channels // HEAD_CHANNELS_PER_ATTENTION_HEAD),
    )
    ffn = nn.Sequential(shapes.conv(f"{prefix}.ffn.0"), shapes.conv(f"{prefix}.ffn.1", act=False))
    return PSABlock(attention, ffn)


def _c2psa(shapes: _Shapes, prefix: str) -> C2PSA:
    blocks = [_psa_block(shapes, f"{prefix}.m.{i}") for i in range(shapes.count(f"{prefix}.m"))]
    return C2PSA(shapes.conv(f"{prefix}.cv1"), shapes.conv(f"{prefix}.cv2"), blocks)


def _head_branch(shapes: _Shapes, prefix: str, depthwise_first: bool) -> nn.Sequential:
    """Two 3x3 convolutions (the class branch: each a depthwise 3x3 then a 1x1) and a biased 1x1 output."""
    if depthwise_first:
        stages = [
            nn.Sequential(shapes.conv(f"{prefix}.{i}.0", depthwise=True), shapes.conv(f"{prefix}.{i}.1"))
            for i in range(2)
        ]
    else:
        stages = [shapes.conv(f"{prefix}.{i}") for i in range(2)]
    return nn.Sequential(*stages, shapes.plain_conv(f"{prefix}.2"))


def _pose_head(shapes: _Shapes, prefix: str, weights: UltralyticsWeights) -> PoseHead:
    def branches(name: str, depthwise_first: bool = False) -> nn.ModuleList:
        levels = range(shapes.count(f"{prefix}.{name}"))
        return nn.ModuleList(_head_branch(shapes, f"{prefix}.{name}.{i}", depthwise_first) for i in levels)

    box, score, keypoint = branches("cv2"), branches("cv3", depthwise_first=True), branches("cv4")
    return PoseHead(box, score, keypoint, weights.strides, weights.kpt_shape)


_LAYER_BUILDERS: dict[str, Callable[[_Shapes, str], nn.Module]] = {
    "Conv": lambda shapes, prefix: shapes.conv(prefix, stride=2),  # every numbered Conv halves the resolution
    "C3k2": _c3k2,
    "SPPF": _sppf,
    "C2PSA": _c2psa,
    "Upsample": lambda shapes, prefix: nn.Upsample(scale_factor=2.0, mode="nearest"),
    "Concat": lambda shapes, prefix: Concat(),
}


class YoloPoseNet(nn.Module):
    """YOLO11 pose: ``model`` is the ModuleList of numbered layers, so state-dict keys match Ultralytics'.

    ``forward(images)`` takes ``(batch, 3, H, W)`` RGB in 0..1 with H and W multiples of 32 and returns
    ``boxes (batch, anchors, 4)`` (x1, y1, x2, y2 input pixels), ``scores (batch, anchors, classes)`` and
    ``keypoints (batch, anchors, K, 3)`` (x, y input pixels, visibility), ``anchors = H*W/8² + H*W/16² + H*W/32²``.
    """

    def __init__(self, layers: list[nn.Module], sources: list[int | tuple[int, ...]]):
        super().__init__()
        self.model = nn.ModuleList(layers)
        self.sources = list(sources)
        self._kept = {index for source in sources if isinstance(source, tuple) for index in source if index >= 0}

    @classmethod
    def from_weights(cls, weights: UltralyticsWeights) -> YoloPoseNet:
        """The network built from the checkpoint's shapes, its weights loaded strictly, in evaluation mode."""
        if weights.layers != YOLO11_POSE_TOPOLOGY or weights.kpt_shape[1] != 3:
            raise InputError(
                f"not a YOLO11 pose checkpoint: layers {weights.layers}, kpt_shape {weights.kpt_shape} "
                f"(expected {YOLO11_POSE_TOPOLOGY} and (K, 3))"
            )
        shapes = _Shapes(weights.state_dict)
        layers = [
            _pose_head(shapes, f"model.{i}", weights) if kind == "Pose" else _LAYER_BUILDERS[kind](shapes, f"model.{i}")
            for i, (kind, _) in enumerate(weights.layers)
        ]
        network = cls(layers, [source for _, source in weights.layers])
        network.load_state_dict(weights.state_dict, strict=True)
        return network.eval()

    def fuse(self) -> YoloPoseNet:
        """Fold every BatchNorm into its convolution (inference only; outputs are unchanged)."""
        for module in self.modules():
            if isinstance(module, ConvBnAct):
                module.fuse()
        return self

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outputs: list[torch.Tensor | None] = []
        x = images
        for index, (layer, source) in enumerate(zip(self.model, self.sources, strict=True)):
            if source != -1:
                x = [x if i == -1 else outputs[i] for i in source]
            x = layer(x)
            outputs.append(x if index in self._kept else None)  # only what a later layer reads is kept
        return x


@dataclass(frozen=True)
class Letterbox:
    """How frames of one size are placed in the network input, and back.

    A frame of ``frame_size = (H, W)`` is resized to ``resized = (h, w)`` (long side ``input_size``, aspect
    kept), then padded with grey to a multiple of 32, the content centred at ``(left, top)``.
    Coordinates are continuous pixels (the top-left corner of the frame is 0, 0): ``input = frame * scale + pad``.
    """

    frame_size: tuple[int, int]
    resized: tuple[int, int]
    padded: tuple[int, int]
    left: int
    top: int

    @classmethod
    def fit(cls, height: int, width: int, input_size: int = 640, multiple: int = 32) -> Letterbox:
        ratio = input_size / max(height, width)
        resized = (max(1, round(height * ratio)), max(1, round(width * ratio)))
        padded = tuple(math.ceil(side / multiple) * multiple for side in resized)
        return cls((height, width), resized, padded, (padded[1] - resized[1]) // 2, (padded[0] - resized[0]) // 2)

    @property
    def scale(self) -> torch.Tensor:
        """Input pixels per frame pixel along ``(x, y)`` (the rounding of the resized size makes them differ)."""
        return torch.tensor([self.resized[1] / self.frame_size[1], self.resized[0] / self.frame_size[0]])

    def apply(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``(batch, H, W, 3)`` RGB -> float ``(batch, 3, padded H, padded W)`` in 0..1."""
        images = frames.permute(0, 3, 1, 2).float()
        if self.resized != self.frame_size:
            # bilinear without antialiasing: what the network was trained on (OpenCV's INTER_LINEAR)
            images = F.interpolate(images, size=self.resized, mode="bilinear", align_corners=False, antialias=False)
        right = self.padded[1] - self.resized[1] - self.left
        bottom = self.padded[0] - self.resized[0] - self.top
        images = F.pad(images, (self.left, right, self.top, bottom), value=float(PAD_VALUE))
        return images / 255.0

    def to_frame(self, xy: torch.Tensor) -> torch.Tensor:
        """``(..., 2)`` input pixels -> frame pixels."""
        offset = torch.tensor([self.left, self.top], dtype=xy.dtype, device=xy.device)
        return (xy - offset) / self.scale.to(xy)

    def to_input(self, xy: torch.Tensor) -> torch.Tensor:
        """``(..., 2)`` frame pixels -> input pixels (the inverse of :meth:`to_frame`)."""
        offset = torch.tensor([self.left, self.top], dtype=xy.dtype, device=xy.device)
        return xy * self.scale.to(xy) + offset


def non_maximum_suppression(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float = 0.7) -> torch.Tensor:
    """Greedy NMS: indices of the kept ``(N, 4)`` boxes, highest score first.

    A box is kept when no *kept* higher-scored box overlaps it by more than ``iou_threshold``. Instead of a
    loop over boxes, every step re-evaluates all boxes at once from the previous step's kept set; box ``i``'s
    decision depends only on boxes ranked before it, so after ``k`` steps the first ``k`` are final and a step
    that changes nothing has reached greedy NMS's unique answer (in as many steps as the longest chain of
    suppressions, a handful in practice).
    """
    order = scores.argsort(descending=True, stable=True)
    ranked = boxes[order]
    # [i, j]: i ranks above j and overlaps it
    suppresses = (box_iou(ranked[:, None], ranked[None]) > iou_threshold).triu(diagonal=1)
    keep = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    while True:
        updated = ~(suppresses & keep[:, None]).any(dim=0)
        if torch.equal(updated, keep):
            return order[keep]
        keep = updated


@dataclass(frozen=True)
class PersonDetections:
    """The people found in one frame, highest score first.

    Attributes:
        keypoints: float32 ``(N, K, 3)``: x, y in the frame's pixels and a visibility score in 0..1, in the
            checkpoint's keypoint order (COCO-17 for ``yolo11n-pose.pt``, see ``components.skeleton.COCO_17``).
        boxes: float32 ``(N, 5)``: x1, y1, x2, y2 in the frame's pixels and the person score in 0..1.
    """

    keypoints: np.ndarray
    boxes: np.ndarray


class YoloPoseDetector:
    """People and their 2D keypoints in batches of RGB frames, on CPU or any torch device.

    Args:
        network: a loaded :class:`YoloPoseNet` (on its device, in evaluation mode).
        class_index: which class score is the person's.
        input_size: the long side of the network input in pixels (the checkpoint was trained at 640).
        score_threshold: the least person score kept.
        iou_threshold: boxes overlapping a better one by more than this are dropped.
        max_detections: the most people reported per frame.
    """

    def __init__(
        self,
        network: YoloPoseNet,
        class_index: int = 0,
        input_size: int = 640,
        score_threshold: float = 0.25,
        iou_threshold: float = 0.7,
        max_detections: int = 300,
        max_candidates: int = 3000,
    ):
        self.network = network
        self.class_index = class_index
        self.input_size = input_size
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections
        self.max_candidates = max_candidates  # bounds the (candidates x candidates) IoU matrix

    @classmethod
    def from_weights(
        cls, path: str | Path, device: str | torch.device = "cpu", fuse: bool = True, **options
    ) -> YoloPoseDetector:
        """A detector from an Ultralytics pose checkpoint such as ``yolo11n-pose.pt``; ``fuse`` folds BatchNorm."""
        weights = read_ultralytics_weights(path)
        people = [index for index, name in weights.names.items() if name == "person"]
        if not people:
            raise InputError(f"{path}: the checkpoint has no 'person' class (classes {weights.names})")
        try:
            network = YoloPoseNet.from_weights(weights)
        except InputError as error:
            raise InputError(f"{path}: {error}") from None
        network = (network.fuse() if fuse else network).to(device)
        return cls(network, class_index=people[0], **options)

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> list[PersonDetections]:
        """uint8 ``(batch, H, W, 3)`` RGB frames (one size per call) -> one :class:`PersonDetections` per frame."""
        if not _is_frame_batch(frames):
            raise InputError(f"frames must be a uint8 array (batch, height, width, 3), got {_describe(frames)}")
        letterbox = Letterbox.fit(*frames.shape[1:3], input_size=self.input_size)
        images = letterbox.apply(torch.from_numpy(frames).to(self.device))
        boxes, scores, keypoints = self.network(images)
        return [
            self._frame_detections(letterbox, *outputs)
            for outputs in zip(boxes, scores[..., self.class_index], keypoints, strict=True)
        ]

    def _frame_detections(
        self, letterbox: Letterbox, boxes: torch.Tensor, scores: torch.Tensor, keypoints: torch.Tensor
    ) -> PersonDetections:
        """One frame's ``(anchors, 4)`` boxes, ``(anchors,)`` scores, ``(anchors, K, 3)`` keypoints -> kept people."""
        candidates = (scores > self.score_threshold).nonzero().squeeze(1)
        candidates = candidates[scores[candidates].argsort(descending=True)[: self.max_candidates]]
        kept = candidates[non_maximum_suppression(boxes[candidates], scores[candidates], self.iou_threshold)]
        kept = kept[: self.max_detections]
        height, width = letterbox.frame_size
        limits = torch.tensor([width, height], dtype=boxes.dtype, device=boxes.device)
        corners = letterbox.to_frame(boxes[kept].view(-1, 2, 2)).clamp(min=0).minimum(limits)
        joints = letterbox.to_frame(keypoints[kept, :, :2]).clamp(min=0).minimum(limits)
        return PersonDetections(
            keypoints=torch.cat((joints, keypoints[kept, :, 2:]), dim=-1).float().cpu().numpy(),
            boxes=torch.cat((corners.flatten(1), scores[kept, None]), dim=1).float().cpu().numpy(),
        )


def _is_frame_batch(frames: object) -> bool:
    """Whether ``frames`` is a uint8 ``(batch, H, W, 3)`` array."""
    return isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[3] == 3


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
