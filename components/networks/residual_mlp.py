"""Fully connected residual networks for lifting single frames from 2D alone, and the part-wise lifter.

The trunk (the Martinez-style residual MLP of the unsupervised lifting family) is
``Linear(J * F -> width) [-> BatchNorm] -> ReLU`` followed by ``blocks`` residual blocks, each two
``[Linear, BatchNorm?, ReLU, Dropout]`` layers plus the block input. Two heads:

- :class:`ResidualDepthMLP` (a generator): one depth per joint, tanh-bounded like its normalised 2D input.
- :class:`ResidualDiscriminator`: one logit per 2D pose; no BatchNorm, so a batch of real poses and a batch of
  fakes are never normalised together (BatchNorm statistics would let the discriminator tell batches apart).

:class:`PartLifter` splits the skeleton into torso and legs, each lifted by its own generator that sees only its
part's 2D joints: no joint's depth can depend on the other part, which removes a spurious coupling of the full
pose and keeps the adversarial game stable (a solo generator over the whole pose is the baseline).
:class:`StudentLifter` is the single network distilled from the two parts.

BatchNorm uses PyTorch's default momentum 0.1, i.e. a running average keeping 0.9 of the old statistics.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from components.adversarial import lift_pose, normalize_2d
from components.errors import InputError
from components.networks.dstformer import DSTformer
from components.skeleton import Skeleton
from components.skeleton import layout as skeleton_layout

LEG_JOINTS = ("left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle")
"""The joints of the legs part, by name; every other non-root joint belongs to the torso."""

OutputActivation = Literal["tanh", "linear"]


def _hidden_layer(in_features: int, width: int, batch_norm: bool) -> list[nn.Module]:
    """``Linear(in_features -> width) [-> BatchNorm] -> ReLU`` as a list of modules."""
    norm = [nn.BatchNorm1d(width)] if batch_norm else []
    return [nn.Linear(in_features, width), *norm, nn.ReLU()]


class ResidualBlock(nn.Module):
    """``x + f(x)`` with ``f`` two ``[Linear, BatchNorm?, ReLU, Dropout]`` layers: ``(B, width) -> (B, width)``."""

    def __init__(self, width: int, dropout: float, batch_norm: bool) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *_hidden_layer(width, width, batch_norm),
            nn.Dropout(dropout),
            *_hidden_layer(width, width, batch_norm),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


def residual_trunk(in_features: int, width: int, blocks: int, dropout: float, batch_norm: bool) -> nn.Sequential:
    """The shared trunk ``(B, in_features) -> (B, width)``: one hidden layer then ``blocks`` residual blocks."""
    if width < 1 or blocks < 0:
        raise InputError(f"width must be >= 1 and blocks >= 0, got width={width}, blocks={blocks}")
    if not 0.0 <= dropout < 1.0:
        raise InputError(f"dropout must lie in [0, 1), got {dropout}")
    residual = [ResidualBlock(width, dropout, batch_norm) for _ in range(blocks)]
    return nn.Sequential(*_hidden_layer(in_features, width, batch_norm), *residual)


def _check_keypoints(keypoints: Tensor, joints: int, features: int) -> None:
    if keypoints.dim() != 3 or tuple(keypoints.shape[1:]) != (joints, features):
        raise InputError(f"keypoints must have shape (B, {joints}, {features}), got {tuple(keypoints.shape)}")


class ResidualDepthMLP(nn.Module):
    """Generator: normalised 2D joints ``(B, J_in, F)`` -> one depth per output joint ``(B, J_out)``.

    Args:
        num_joints_in: ``J_in``, joints seen (a part's joints).
        num_joints_out: ``J_out``, depths predicted.
        in_features: ``F``, numbers per input joint (2: x, y).
        width: hidden size of every layer.
        blocks: residual blocks after the first hidden layer.
        dropout: dropout probability inside the residual blocks (training only).
        batch_norm: BatchNorm after every hidden Linear.
        output: ``tanh`` bounds depths to ``[-1, 1]``, the range of the max-abs normalised 2D (a depth beyond the
            pose's largest 2D extent is implausible); ``linear`` leaves them unbounded.
    """

    def __init__(
        self,
        num_joints_in: int,
        num_joints_out: int,
        in_features: int = 2,
        width: int = 1024,
        blocks: int = 3,
        dropout: float = 0.5,
        batch_norm: bool = True,
        output: OutputActivation = "tanh",
    ) -> None:
        super().__init__()
        if output not in ("tanh", "linear"):
            raise InputError(f"output must be 'tanh' or 'linear', got {output!r}")
        self.num_joints_in = num_joints_in
        self.num_joints_out = num_joints_out
        self.in_features = in_features
        self.output = output
        self.trunk = residual_trunk(num_joints_in * in_features, width, blocks, dropout, batch_norm)
        self.head = nn.Linear(width, num_joints_out)

    def forward(self, keypoints: Tensor) -> Tensor:
        """``(B, J_in, F)`` normalised 2D -> ``(B, J_out)`` depths in the same units."""
        _check_keypoints(keypoints, self.num_joints_in, self.in_features)
        depths = self.head(self.trunk(keypoints.flatten(1)))
        return depths.tanh() if self.output == "tanh" else depths


class TransformerDepthGenerator(nn.Module):
    """Generator with self-attention among the joints: normalised 2D ``(B, J, F)`` -> one depth per joint ``(B, J)``.

    A one-frame :class:`components.networks.dstformer.DSTformer` (``maxlen`` 1: its temporal attention has one
    frame to look at, so what remains is attention over the joints) whose per-joint output keeps the depth
    coordinate. Args as :class:`ResidualDepthMLP` (``width`` is the token width, ``blocks`` the layers), plus
    ``num_heads``; a part's generator sees and lifts the same joints.
    """

    def __init__(
        self,
        num_joints: int,
        in_features: int = 2,
        width: int = 64,
        blocks: int = 2,
        num_heads: int = 4,
        dropout: float = 0.0,
        output: OutputActivation = "tanh",
    ) -> None:
        super().__init__()
        if output not in ("tanh", "linear"):
            raise InputError(f"output must be 'tanh' or 'linear', got {output!r}")
        self.num_joints_in = self.num_joints_out = num_joints
        self.in_features, self.output = in_features, output
        self.body = DSTformer(
            num_joints, num_joints, in_features, width, width, blocks, num_heads, maxlen=1, dropout=dropout
        )

    def forward(self, keypoints: Tensor) -> Tensor:
        """``(B, J, F)`` normalised 2D -> ``(B, J)`` depths in the same units."""
        _check_keypoints(keypoints, self.num_joints_in, self.in_features)
        depths = self.body(keypoints[:, None])[:, 0, :, 2]
        return depths.tanh() if self.output == "tanh" else depths


class ResidualDiscriminator(nn.Module):
    """Judges 2D poses ``(B, J, F)``: ``(B,)`` logits, high for real poses (no sigmoid: losses take logits).

    Args:
        num_joints: ``J``, joints of the judged poses (the non-root joints: the root is always at 0).
        in_features, width, blocks, dropout: as :class:`ResidualDepthMLP`; there is no BatchNorm.
    """

    def __init__(
        self, num_joints: int, in_features: int = 2, width: int = 1024, blocks: int = 3, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.in_features = in_features
        self.trunk = residual_trunk(num_joints * in_features, width, blocks, dropout, batch_norm=False)
        self.head = nn.Linear(width, 1)

    def forward(self, keypoints: Tensor) -> Tensor:
        """``(B, J, F)`` normalised 2D poses -> ``(B,)`` logits."""
        _check_keypoints(keypoints, self.num_joints, self.in_features)
        return self.head(self.trunk(keypoints.flatten(1))).squeeze(-1)


def non_root_joints(skeleton: Skeleton) -> tuple[int, ...]:
    """Indices of every joint but the root, in layout order: the joints whose depth is unknown."""
    return tuple(i for i in range(skeleton.num_joints) if i != skeleton.root)


def part_split(skeleton: Skeleton, legs_include_root: bool = False) -> dict[str, tuple[int, ...]]:
    """Joint indices of the torso and legs parts of ``skeleton``, each in layout order.

    Legs are both hips, knees and ankles (:data:`LEG_JOINTS`), plus the root when ``legs_include_root`` (the
    7-joint variant); the torso is every other non-root joint. On Human3.6M's 17 joints: legs 6 (or 7), torso 10.

    Raises:
        ValueError: the skeleton lacks a leg joint.
    """
    missing = [name for name in LEG_JOINTS if name not in skeleton.joint_names]
    if missing:
        raise InputError(
            f"skeleton {skeleton.name!r} cannot be split into torso and legs: it lacks {missing} "
            f"(joints: {', '.join(skeleton.joint_names)})"
        )
    legs = set(skeleton.indices(LEG_JOINTS))
    if legs_include_root:
        legs.add(skeleton.root)
    torso = [i for i in non_root_joints(skeleton) if i not in legs]
    return {"torso": tuple(torso), "legs": tuple(sorted(legs))}


def _assembly_index(skeleton: Skeleton, part_indices: dict[str, tuple[int, ...]]) -> Tensor:
    """``(J,)`` column of each joint in ``[part outputs concatenated in order..., a zero column]``.

    Non-root joints read their part's output; the root reads the trailing zero column (root-relative depth 0),
    even when a part also predicts it.
    """
    columns: dict[int, int] = {}
    offset = 0
    for indices in part_indices.values():
        for column, joint in enumerate(indices, start=offset):
            columns.setdefault(joint, column)
        offset += len(indices)
    columns[skeleton.root] = offset
    return torch.tensor([columns[joint] for joint in range(skeleton.num_joints)])


class PartLifter(nn.Module):
    """Frame-wise depth lifter made of independent part generators (or one solo generator).

    Follows the lifter contract of ``lightning_modules/base.py`` (``receptive_field = 1``, ``causal = False``,
    ``forward(keypoints_2d, strided)``) so the shared evaluation code runs it; the adversarial regime trains it
    through :meth:`depths`.

    Args:
        layout: skeleton layout name of both input and output (``components.skeleton.layout``).
        parts: ``torso_legs``, two generators that each see only their part's 2D joints and predict only their
            depths (:func:`part_split`); ``solo``, one generator over all non-root joints (the baseline).
        legs_include_root: the legs generator also sees the root (always (0, 0) after centring) and predicts a
            depth for it, which is discarded: the output is root-relative, root depth 0.
        width, blocks, dropout, batch_norm, output: of every generator, as :class:`ResidualDepthMLP`.
        generator: ``mlp``, residual MLPs (:class:`ResidualDepthMLP`, as published), or ``transformer``,
            attention among the part's joints (:class:`TransformerDepthGenerator`; ``batch_norm`` unused).
        num_heads: attention heads of ``transformer`` generators.
        normalization: how 2D is scaled before lifting (``components.adversarial.normalize_2d``): ``max_abs``
            (default), or ``head_root`` (head-root distance 0.1, for perspective projection with depth offset 10).

    Attributes:
        skeleton: the layout.
        part_indices: per generator name, the indices into the skeleton's joints it sees and lifts, in order.
        generators: ``nn.ModuleDict`` of :class:`ResidualDepthMLP` with the same keys.
    """

    receptive_field = 1
    causal = False
    solo_name = "solo"

    def __init__(
        self,
        layout: str = "h36m",
        parts: Literal["torso_legs", "solo"] = "torso_legs",
        legs_include_root: bool = False,
        width: int = 1024,
        blocks: int = 3,
        dropout: float = 0.5,
        batch_norm: bool = True,
        output: OutputActivation = "tanh",
        normalization: Literal["max_abs", "head_root"] = "max_abs",
        generator: Literal["mlp", "transformer"] = "mlp",
        num_heads: int = 4,
    ) -> None:
        super().__init__()
        if generator not in ("mlp", "transformer"):
            raise InputError(f"generator must be 'mlp' or 'transformer', got {generator!r}")
        self.skeleton = skeleton_layout(layout)
        self.generator, self.num_heads = generator, num_heads
        self.normalization = normalization
        self.parts = parts
        self.legs_include_root = legs_include_root
        self.part_indices = self._part_groups(parts, legs_include_root)

        def build(joints: int) -> nn.Module:
            if generator == "transformer":
                return TransformerDepthGenerator(joints, 2, width, blocks, num_heads, dropout, output)
            return ResidualDepthMLP(joints, joints, 2, width, blocks, dropout, batch_norm, output)

        self.generators = nn.ModuleDict({name: build(len(indices)) for name, indices in self.part_indices.items()})
        self.register_buffer("assembly", _assembly_index(self.skeleton, self.part_indices), persistent=False)
        # +1 or -1 per generator: the depth sign each part's output is used with (set by a label-free calibration,
        # see lightning_modules.adversarial; kept in checkpoints)
        self.register_buffer("part_signs", torch.ones(len(self.part_indices)))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected, errors):
        # checkpoints written before the calibration existed hold no signs: their parts keep their own (+1)
        state_dict.setdefault(prefix + "part_signs", torch.ones(len(self.part_indices)))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected, errors)

    def _part_groups(self, parts: str, legs_include_root: bool) -> dict[str, tuple[int, ...]]:
        if parts == "torso_legs":
            return part_split(self.skeleton, legs_include_root)
        if parts == "solo":
            return {self.solo_name: non_root_joints(self.skeleton)}
        raise InputError(f"parts must be 'torso_legs' or 'solo', got {parts!r}")

    @property
    def num_joints_in(self) -> int:
        return self.skeleton.num_joints

    @property
    def num_joints_out(self) -> int:
        return self.skeleton.num_joints

    def normalize(self, keypoints: Tensor) -> Tensor:
        """``(N, J, 2)`` 2D poses root-centred and scaled as ``normalization`` says (the generators' input)."""
        head = self.skeleton.index("head") if self.normalization == "head_root" else None
        return normalize_2d(keypoints, self.skeleton.root, scale=self.normalization, head=head)[0]

    def part_depths(self, keypoints: Tensor) -> dict[str, Tensor]:
        """Each generator's depths ``(B, n_part)`` for normalised 2D ``(B, J, 2)``, joints as in ``part_indices``,
        times the part's sign (``part_signs``)."""
        _check_keypoints(keypoints, self.skeleton.num_joints, 2)
        return {
            name: sign * generator(keypoints[:, list(self.part_indices[name])])
            for (name, generator), sign in zip(self.generators.items(), self.part_signs, strict=True)
        }

    def depths(self, keypoints: Tensor) -> Tensor:
        """Root-relative depths ``(B, J)`` of normalised 2D ``(B, J, 2)``: the parts assembled, root depth 0.

        This is the ``lift_depths`` callable of the losses in ``components.adversarial``. A part's depths depend
        only on that part's 2D here; :meth:`forward` normalises the whole pose first, which couples them through
        the common scale.
        """
        parts = list(self.part_depths(keypoints).values())
        zero = parts[0].new_zeros(keypoints.shape[0], 1)
        return torch.cat([*parts, zero], dim=-1)[:, self.assembly]

    def forward(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor:
        """Lift every frame on its own.

        Args:
            keypoints_2d: ``(B, T, J, F)`` 2D keypoints, ``F >= 2``; channels after (x, y), such as a detection
                score, are ignored.
            strided: accepted for the lifter contract and ignored (a receptive field of one frame).

        Returns:
            ``(B, T, J, 3)`` root-relative poses in the normalised units of
            :func:`components.adversarial.normalize_2d` (each frame's max abs 2D coordinate is 1): ``(x, y)`` the
            normalised input, z the predicted depth. The metric scale is unknown without 3D labels; compare with
            scale-aligned metrics (P-MPJPE, N-MPJPE).
        """
        joints = self.skeleton.num_joints
        if keypoints_2d.dim() != 4 or keypoints_2d.shape[2] != joints or keypoints_2d.shape[3] < 2:
            raise InputError(f"keypoints_2d must have shape (B, T, {joints}, F >= 2), got {tuple(keypoints_2d.shape)}")
        batch, frames = keypoints_2d.shape[:2]
        normalised = self.normalize(keypoints_2d[..., :2].reshape(batch * frames, joints, 2))
        return lift_pose(normalised, self.depths(normalised)).reshape(batch, frames, joints, 3)

    def extra_repr(self) -> str:
        return (
            f"layout={self.skeleton.name}, parts={self.parts}, legs_include_root={self.legs_include_root}, "
            f"generator={self.generator}"
        )


class StudentLifter(PartLifter):
    """The distilled student: one generator, ``"student"``, over all non-root joints.

    It is :class:`PartLifter` in solo mode under another generator name, so its checkpoints never mix with a solo
    baseline's; it is trained to reproduce the frozen part generators' :meth:`depths` (MSE), not adversarially.
    """

    solo_name = "student"

    def __init__(
        self,
        layout: str = "h36m",
        width: int = 1024,
        blocks: int = 3,
        dropout: float = 0.5,
        batch_norm: bool = True,
        output: OutputActivation = "tanh",
        normalization: Literal["max_abs", "head_root"] = "max_abs",
        generator: Literal["mlp", "transformer"] = "mlp",
        num_heads: int = 4,
    ) -> None:
        super().__init__(
            layout, "solo", False, width, blocks, dropout, batch_norm, output, normalization, generator, num_heads
        )
