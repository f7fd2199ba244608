"""The cross-view retrieval report: a model's embedding against the 2D and 3D nearest-neighbour baselines.

Runs on the synchronized views of one split of a datamodule (``PoseDataModule.synchronized_views``): every
``stride``-th frame of every recording seen by all its cameras. Queries come from one camera, the gallery from the
others (``components.retrieval.cross_view_retrieval``). Rows:

- ``embedding``: the model's lifter's ``embed`` output (multiview models only);
- ``2D keypoints``: the input 2D, root-centred at unit scale (``components.retrieval.normalized_pose``);
- ``3D lifted (<name>)``: the 3D output of a lifter (the model's own, and optionally a supervised baseline), also
  root-centred at unit scale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from components.errors import InputError
from components.lifter import Timing
from components.report import ResultTable
from components.retrieval import cross_view_retrieval, normalized_pose, retrieval_table
from components.skeleton import Skeleton

Views = Sequence[Sequence[Any]]
"""Synchronized recordings, each a list of views with ``keypoints_2d`` ``(T, J_in, F)`` and ``poses_3d``
``(T, J_out, 3)`` arrays (the datamodule's ``PoseSequence``; only those two fields are read)."""
Featurizer = Callable[[Tensor], Tensor]  # (T, J_in, F) keypoints of a whole sequence -> (T, D) features


def _edge_padded(keypoints: np.ndarray, model: nn.Module) -> Tensor:
    """``(1, T + receptive_field - 1, J, F)``: a whole sequence padded like the window sampler pads it."""
    return torch.from_numpy(Timing.of(model).pad_sequence(keypoints)).float()[None]


def embedding_features(lifter: nn.Module) -> Featurizer:
    """Features = the lifter's embedding of each frame."""
    return lambda keypoints: lifter.embed(_edge_padded(keypoints, lifter))[0]


def lifted_features(lifter: nn.Module, skeleton: Skeleton) -> Featurizer:
    """Features = the lifter's 3D pose of each frame, root-centred at unit scale."""
    return lambda keypoints: normalized_pose(lifter(_edge_padded(keypoints, lifter))[0], root=skeleton.root).flatten(1)


def keypoint_features(skeleton: Skeleton) -> Featurizer:
    """Features = the 2D keypoints of each frame (x, y), root-centred at unit scale."""
    return lambda keypoints: normalized_pose(torch.from_numpy(keypoints[..., :2]).float(), root=skeleton.root).flatten(
        1
    )


def _views_arrays(groups: Views, stride: int) -> dict[str, Tensor]:
    """Ground truth, camera and instant of every kept frame of every view, in group-view-frame order."""
    poses, camera, instant, offset = [], [], [], 0
    for group in groups:
        frames = np.arange(0, len(group[0]), stride)
        for view, sequence in enumerate(group):
            poses.append(sequence.poses_3d[frames])
            camera.append(np.full(len(frames), view))
            instant.append(offset + np.arange(len(frames)))
        offset += len(frames)
    return {
        "poses_3d": torch.from_numpy(np.concatenate(poses)).double(),
        "camera": torch.from_numpy(np.concatenate(camera)),
        "instant": torch.from_numpy(np.concatenate(instant)),
    }


@torch.no_grad()
def _features(featurize: Featurizer, groups: Views, stride: int) -> Tensor:
    rows = [featurize(sequence.keypoints_2d)[::stride] for group in groups for sequence in group]
    return torch.cat(rows).double()


def retrieval_report(
    groups: Views,
    methods: Mapping[str, Featurizer],
    output_skeleton: Skeleton,
    name: str,
    query_camera: int = 0,
    stride: int = 10,
    threshold: float = 0.1,
) -> ResultTable:
    """Score every method on the same queries and gallery; a table in percent.

    Args:
        groups: synchronized recordings, each a list of labeled views with the same number of frames.
        methods: row name -> featurizer (see :func:`embedding_features`, :func:`keypoint_features`,
            :func:`lifted_features`); networks must be in eval mode.
        output_skeleton: layout of the ground-truth poses (its root anchors NP-MPJPE).
        query_camera: index of the query view within each group.
        stride: keep every ``stride``-th frame (neighbouring frames are near-duplicates; the gallery grows fast).
        threshold: NP-MPJPE at most this makes a hit.
    """
    views = {len(group) for group in groups}
    if not groups or len(views) != 1 or views.pop() < 2:
        raise InputError(f"retrieval needs recordings with the same number (>= 2) of views, got {sorted(views)}")
    if any(sequence.poses_3d is None for group in groups for sequence in group):
        raise InputError("retrieval needs the ground-truth 3D of every view to judge hits")
    truth = _views_arrays(groups, stride)
    rows = {
        method: cross_view_retrieval(
            _features(featurize, groups, stride),
            truth["poses_3d"],
            truth["camera"],
            truth["instant"],
            query_camera=query_camera,
            root=output_skeleton.root,
            threshold=threshold,
        )
        for method, featurize in methods.items()
    }
    title = f"{name}: cross-view retrieval, camera {query_camera} vs the others, NP-MPJPE <= {threshold:g} (%)"
    return retrieval_table(rows, name, title)


def model_methods(model: nn.Module, baselines: Mapping[str, nn.Module] | None = None) -> dict[str, Featurizer]:
    """The rows for a ``LiftingModule``: its embedding (if any), the 2D keypoints, its 3D output and baselines' 3D."""
    lifter = model.lifter.eval()
    methods = {"embedding": embedding_features(lifter)} if hasattr(lifter, "embed") else {}
    methods["2D keypoints"] = keypoint_features(model.input_skeleton)
    methods["3D lifted (this model)"] = lifted_features(lifter, model.output_skeleton)
    for label, baseline in (baselines or {}).items():
        methods[f"3D lifted ({label})"] = lifted_features(baseline.lifter.eval(), baseline.output_skeleton)
    return methods
