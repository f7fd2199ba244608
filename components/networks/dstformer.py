"""DSTformer, the dual-stream spatio-temporal transformer of MotionBERT, as a sequence-to-sequence lifter.

Architecture (Zhu et al., ICCV 2023; facts in ``reference/motionbert.md``): every joint of every frame is a token.
``joints_embed`` maps its ``F`` input features to ``dim_feat``; a spatial embedding per joint (``pos_embed``) and a
temporal embedding per frame (``temp_embed``, ``maxlen`` rows, the first ``T`` used) are added. Each of ``depth``
layers runs two streams on the same tokens and fuses them:

- ``blocks_st``: spatial then temporal; ``blocks_ts``: temporal then spatial. Each is four pre-norm residual
  sub-blocks: multi-head self-attention over the ``J`` joints of a frame (``attn_s``) or over the ``T`` frames of
  a joint (``attn_t``), each followed by its MLP (``mlp_s`` / ``mlp_t``, GELU, ``mlp_ratio * dim_feat`` wide).
- ``ts_attn``: with ``att_fuse`` a linear map of the two outputs side by side to two logits per token, whose
  softmax weighs the streams (they sum to 1 per token); without it the streams are averaged.

Then ``norm`` (LayerNorm), the representation ``pre_logits`` (Linear to ``dim_rep`` + tanh, what
:meth:`DSTformer.features` returns) and ``head`` (Linear to 3 per token). The state_dict names are those of the
published checkpoints; the Human3.6M configuration (the defaults) has 42,466,317 parameters. When the output
layout has other joints than the input (COCO in, H36M out), ``joint_map`` (a linear map over the joint axis,
absent otherwise) turns the ``J_in`` token outputs into ``J_out`` joints.

Timing (``components.lifter``): ``T`` frames in give ``T`` frames out (``T <= maxlen``), so the window arithmetic
``T_out = T_in - receptive_field + 1`` holds with ``receptive_field = 1``: no edge padding, output frame ``t``
belongs to input frame ``t``. Unlike a convolution, each output frame depends on *every* frame of its clip (the
temporal attention spans the clip), so callers must cut sequences into clips of at most ``maxlen`` frames
(``eval_chunk_length``); a longer clip is refused. The model is not causal.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.errors import InputError
from components.lifter import Timing

Axis = Literal["joints", "frames"]
INIT_STD = 0.02  # truncated-normal init of linear weights and embeddings, as for vision transformers
NORM_EPS = 1e-6  # LayerNorm epsilon of the published model: imported weights compute exactly what they did there


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth: zero a residual branch ``(B, ...)`` for whole samples with probability ``p``.

    Kept samples are scaled by ``1 / (1 - p)`` so the expected branch is unchanged; identity when not training.
    """
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - p)
    return x * keep.div_(1.0 - p)


class AxisAttention(nn.Module):
    """Multi-head self-attention among the tokens of one axis of ``(B, T, J, C)``: the joints of a frame
    (``over="joints"``, spatial) or the frames of a joint (``over="frames"``, temporal).

    Every frame (or joint) is an independent attention problem of its own: the other axis joins the batch.
    """

    def __init__(self, dim: int, num_heads: int, over: Axis, attention_dropout: float, dropout: float) -> None:
        super().__init__()
        if dim % num_heads:
            raise InputError(f"dim_feat={dim} must be a multiple of num_heads={num_heads}")
        self.num_heads, self.over, self.attention_dropout = num_heads, over, attention_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, T, J, C)`` -> ``(B, T, J, C)``: softmax(Q K^T / sqrt(C / heads)) V per head, then ``proj``."""
        tokens = x.transpose(1, 2) if self.over == "frames" else x  # attended axis second to last
        lead, (length, channels) = tokens.shape[:-2], tokens.shape[-2:]
        heads = self.num_heads
        # (..., N, 3C) -> 3 x (batch, heads, N, C / heads): the fused kernels want one batch axis
        qkv = self.qkv(tokens).reshape(-1, length, 3, heads, channels // heads).permute(2, 0, 3, 1, 4)
        dropout = self.attention_dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(*qkv.unbind(0), dropout_p=dropout)
        out = self.proj_drop(self.proj(out.transpose(1, 2).reshape(*lead, length, channels)))
        return out.transpose(1, 2) if self.over == "frames" else out


class MLP(nn.Module):
    """``fc1`` -> GELU -> dropout -> ``fc2`` -> dropout, per token."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class DualAxisBlock(nn.Module):
    """Four pre-norm residual sub-blocks: attention + MLP over joints (``_s``) and over frames (``_t``).

    Args:
        order: ``"st"`` spatial first (``blocks_st``), ``"ts"`` temporal first (``blocks_ts``).
        drop_path: stochastic-depth probability of each residual branch.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        order: Literal["st", "ts"],
        dropout: float,
        attention_dropout: float,
        drop_path: float,
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.order, self.drop_path = order, drop_path
        self.norm1_s = nn.LayerNorm(dim, eps=NORM_EPS)
        self.attn_s = AxisAttention(dim, num_heads, "joints", attention_dropout, dropout)
        self.norm2_s = nn.LayerNorm(dim, eps=NORM_EPS)
        self.mlp_s = MLP(dim, hidden, dropout)
        self.norm1_t = nn.LayerNorm(dim, eps=NORM_EPS)
        self.attn_t = AxisAttention(dim, num_heads, "frames", attention_dropout, dropout)
        self.norm2_t = nn.LayerNorm(dim, eps=NORM_EPS)
        self.mlp_t = MLP(dim, hidden, dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, T, J, C)`` -> ``(B, T, J, C)``."""
        for axis in self.order:
            attn, mlp = getattr(self, f"attn_{axis}"), getattr(self, f"mlp_{axis}")
            norm1, norm2 = getattr(self, f"norm1_{axis}"), getattr(self, f"norm2_{axis}")
            x = x + drop_path(attn(norm1(x)), self.drop_path, self.training)
            x = x + drop_path(mlp(norm2(x)), self.drop_path, self.training)
        return x


class DSTformer(nn.Module):
    """Lifts screen-normalised 2D keypoint clips to 3D, every frame of the clip (MotionBERT's DSTformer).

    Follows the lifter contract (``components.lifter``) with ``receptive_field = 1`` and ``causal = False``: see the
    module docstring for what that means for a model whose output frames each see the whole clip.

    Args:
        num_joints_in: ``J_in``, joints of the 2D input layout (the tokens of a frame).
        num_joints_out: ``J_out``, joints of the 3D output; another count than ``J_in`` adds ``joint_map``.
        in_features: ``F``, features per input joint: 3 (x, y, detector score) as published, or 2. A model
            with 3 also takes 2D without scores (ground truth), with score 1.
        dim_feat: token width in every layer.
        dim_rep: width of the representation (``pre_logits``).
        depth: layers, each with a spatial-temporal and a temporal-spatial block.
        num_heads: attention heads (``dim_feat`` must be a multiple).
        mlp_ratio: MLP hidden width over ``dim_feat``.
        maxlen: longest clip, in frames (rows of the temporal embedding).
        dropout: dropout after the embedding, every attention projection and every MLP layer (training only).
        attention_dropout: dropout on the attention probabilities (training only).
        drop_path: stochastic depth of the last layer's residual branches; it grows linearly from 0 over the layers.
        att_fuse: fuse the two streams with learned softmax weights per token (else average them).
        output_scale: factor applied to the head's output. 1 for models trained here (their targets are
            metres); an imported MotionBERT model predicts normalised 2.5D units and needs metres per unit
            (``components.networks.motionbert``).
    """

    receptive_field = 1
    causal = False

    def __init__(
        self,
        num_joints_in: int = 17,
        num_joints_out: int = 17,
        in_features: int = 3,
        dim_feat: int = 512,
        dim_rep: int = 512,
        depth: int = 5,
        num_heads: int = 8,
        mlp_ratio: float = 2,
        maxlen: int = 243,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path: float = 0.0,
        att_fuse: bool = True,
        output_scale: float = 1.0,
    ) -> None:
        super().__init__()
        _check_counts(num_joints_in=num_joints_in, num_joints_out=num_joints_out, in_features=in_features)
        _check_counts(depth=depth, maxlen=maxlen, dim_feat=dim_feat, dim_rep=dim_rep, num_heads=num_heads)
        _check_probabilities(dropout=dropout, attention_dropout=attention_dropout, drop_path=drop_path)
        self.num_joints_in, self.num_joints_out, self.in_features = num_joints_in, num_joints_out, in_features
        self.dim_feat, self.dim_rep, self.depth, self.num_heads = dim_feat, dim_rep, depth, num_heads
        self.mlp_ratio, self.maxlen, self.att_fuse = mlp_ratio, maxlen, att_fuse
        self.dropout, self.attention_dropout, self.drop_path = dropout, attention_dropout, drop_path
        if not output_scale > 0:
            raise InputError(f"output_scale must be > 0, got {output_scale}")
        self.output_scale = float(output_scale)
        self.joints_embed = nn.Linear(in_features, dim_feat)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_joints_in, dim_feat))
        self.temp_embed = nn.Parameter(torch.zeros(1, maxlen, 1, dim_feat))
        self.pos_drop = nn.Dropout(dropout)
        # deeper layers drop their residual branches more often (stochastic depth, linear rule)
        rates = [drop_path * layer / max(depth - 1, 1) for layer in range(depth)]
        block_args = (dim_feat, num_heads, mlp_ratio)
        self.blocks_st = nn.ModuleList(DualAxisBlock(*block_args, "st", dropout, attention_dropout, r) for r in rates)
        self.blocks_ts = nn.ModuleList(DualAxisBlock(*block_args, "ts", dropout, attention_dropout, r) for r in rates)
        if att_fuse:
            self.ts_attn = nn.ModuleList(nn.Linear(2 * dim_feat, 2) for _ in range(depth))
        self.norm = nn.LayerNorm(dim_feat, eps=NORM_EPS)
        self.pre_logits = nn.Sequential(OrderedDict(fc=nn.Linear(dim_feat, dim_rep), act=nn.Tanh()))
        self.head = nn.Linear(dim_rep, 3)
        if num_joints_in != num_joints_out:
            self.joint_map = nn.Linear(num_joints_in, num_joints_out)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal linear weights and embeddings, zero biases; fusion starts at equal weights."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=INIT_STD)
                nn.init.zeros_(module.bias)
        for embedding in (self.pos_embed, self.temp_embed):
            nn.init.trunc_normal_(embedding, std=INIT_STD)
        for fuse in getattr(self, "ts_attn", ()):
            # zero logits: softmax weights 1/2 each, so neither stream is preferred before training
            nn.init.zeros_(fuse.weight)
            nn.init.zeros_(fuse.bias)

    output_layers = ("head", "joint_map")  # what a network reusing the representation (``features``) drops

    @property
    def feature_width(self) -> int:
        """Width of :meth:`features` per frame, flattened over the joints: ``num_joints_in * dim_rep``."""
        return self.num_joints_in * self.dim_rep

    @property
    def max_frames(self) -> int:
        """The longest clip (``maxlen``): the bound of the lifter contract (``components.lifter``)."""
        return self.maxlen

    @property
    def timing(self) -> Timing:
        """``components.lifter.Timing``: one output frame per input frame, no padding (see the module docstring)."""
        return Timing.of(self)

    def extra_repr(self) -> str:
        return (
            f"J_in={self.num_joints_in}, J_out={self.num_joints_out}, F={self.in_features}, dim_feat={self.dim_feat}, "
            f"dim_rep={self.dim_rep}, depth={self.depth}, heads={self.num_heads}, maxlen={self.maxlen}, "
            f"att_fuse={self.att_fuse}" + (f", output_scale={self.output_scale}" if self.output_scale != 1.0 else "")
        )

    def forward(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor:
        """Lift a batch of 2D clips, every frame.

        Args:
            keypoints_2d: ``(B, T, J_in, F)`` screen-normalised 2D keypoints, ``1 <= T <= maxlen``.
            strided: the contract's single-window flag; a sequence-to-sequence model has no strided twin, so
                it only checks that the window has ``receptive_field`` (1) frames.

        Returns:
            ``(B, T, J_out, 3)``: frame ``t`` is the pose of input frame ``t`` (in the targets' units).
        """
        out = self.head(self.features(keypoints_2d, strided))
        if self.output_scale != 1.0:
            out = out * self.output_scale
        if self.num_joints_in != self.num_joints_out:
            out = self.joint_map(out.transpose(-1, -2)).transpose(-1, -2)
        return out

    def features(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor:
        """The representation ``(B, T, J_in, dim_rep)`` (tanh, in ``[-1, 1]``): the trunk other heads can share."""
        self._check_input(keypoints_2d, strided)
        x = self.pos_drop(self.tokens(keypoints_2d))
        for layer in range(self.depth):
            x = self.fuse(layer, self.blocks_st[layer](x), self.blocks_ts[layer](x))
        return self.pre_logits(self.norm(x))

    def tokens(self, keypoints_2d: Tensor) -> Tensor:
        """``(B, T, J_in, F)`` -> ``(B, T, J_in, dim_feat)`` tokens with both embeddings, ``temp_embed[:, :T]``."""
        frames = keypoints_2d.shape[1]
        if keypoints_2d.shape[-1] < self.in_features:  # 2D without scores (ground truth): score 1, as published
            keypoints_2d = torch.cat([keypoints_2d, keypoints_2d.new_ones(keypoints_2d.shape[:-1] + (1,))], dim=-1)
        return self.joints_embed(keypoints_2d) + self.pos_embed[:, None] + self.temp_embed[:, :frames]

    def fusion_weights(self, layer: int, x_st: Tensor, x_ts: Tensor) -> Tensor:
        """``(B, T, J, 2)`` softmax weights of the two streams ``(B, T, J, C)`` of ``layer`` (``att_fuse`` only)."""
        return self.ts_attn[layer](torch.cat([x_st, x_ts], dim=-1)).softmax(dim=-1)

    def fuse(self, layer: int, x_st: Tensor, x_ts: Tensor) -> Tensor:
        """The tokens after ``layer``: the streams ``(B, T, J, C)`` weighted per token, or averaged."""
        if not self.att_fuse:
            return (x_st + x_ts) / 2
        weights = self.fusion_weights(layer, x_st, x_ts)
        return x_st * weights[..., :1] + x_ts * weights[..., 1:]

    def _check_input(self, keypoints_2d: Tensor, strided: bool) -> None:
        shape = tuple(keypoints_2d.shape)
        features = (self.in_features, 2) if self.in_features == 3 else (self.in_features,)
        expected = f"(B, T, J_in={self.num_joints_in}, F={' or '.join(map(str, features))})"
        if keypoints_2d.dim() != 4 or shape[2] != self.num_joints_in or shape[3] not in features or shape[1] < 1:
            raise InputError(f"keypoints_2d must have shape {expected}, got {shape}")
        if shape[1] > self.maxlen:
            raise InputError(
                f"DSTformer takes clips of at most maxlen={self.maxlen} frames, got T={shape[1]}: "
                f"cut sequences into clips (eval_chunk_length <= {self.maxlen})"
            )
        if strided and shape[1] != self.receptive_field:
            raise InputError(f"strided=True needs receptive_field={self.receptive_field} frames, got shape {shape}")


def _check_counts(**counts: int) -> None:
    """Raise an ``InputError`` naming the first size that is not a positive integer."""
    for name, value in counts.items():
        if value < 1:
            raise InputError(f"{name} must be >= 1, got {value}")


def _check_probabilities(**probabilities: float) -> None:
    """Raise an ``InputError`` naming the first dropout probability outside ``[0, 1)``."""
    for name, value in probabilities.items():
        if not 0.0 <= value < 1.0:
            raise InputError(f"{name} must lie in [0, 1), got {value}")
