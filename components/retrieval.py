"""Cross-view pose retrieval: nearest neighbours in a feature space, judged by the true 3D poses.

The benchmark follows the Pr-VIPE convention (Sun et al., ECCV 2020), our documented choice because the MCSS paper's
exact definition is not available:

- **Queries** are the poses seen from one camera; the **gallery** holds every pose of the same recordings seen from
  the other cameras. Each query is matched to gallery items by Euclidean distance between features (a learned
  embedding, normalised 2D keypoints, or a lifter's 3D output).
- A retrieved item is a **hit** when its true 3D pose matches the query's: NP-MPJPE <= ``threshold`` (0.1).
- **NP-MPJPE** is the MPJPE between the two poses after each is brought to unit scale (:func:`normalized_pose`) and
  the retrieved one is Procrustes-aligned (rotation, scale, translation, no reflection) to the query. It is unitless:
  a fraction of the query's root-mean-square joint distance from the root.
- ``Hit@k`` is the fraction of queries with at least one hit among their ``k`` nearest items; ``mAP@K`` and
  ``exact@1`` are defined in :func:`retrieval_scores` and :func:`cross_view_retrieval`.

Everything runs on whole tensors; loops go over chunks of queries only, to bound memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from components.errors import InputError
from components.geometry import procrustes_align
from components.lifter import Timing
from components.metrics import mpjpe_per_frame
from components.report import ResultTable
from components.skeleton import Skeleton

RETRIEVAL_COLUMNS = ("Hit@1", "Hit@5", "Hit@10", "mAP@10", "exact@1")
"""Columns of :func:`retrieval_table`, the keys that :func:`cross_view_retrieval` returns with default ``ks``."""


def normalized_pose(points: Tensor, *, root: int) -> Tensor:
    """Root-relative poses at unit scale: ``(..., joints, C)`` -> same shape, for 2D (C=2) or 3D (C=3) points.

    Unit scale means a root-mean-square joint distance from the root of 1 over all ``joints`` (the root counts,
    with distance 0): ``p_j' = (p_j - p_root) / sqrt(mean_j ||p_j - p_root||^2)``. This removes the subject's size
    and the camera distance, so poses of different people and views compare by shape alone. A pose with every
    joint on the root stays all zeros rather than NaN.

    Args:
        points: ``(..., joints, C)`` poses in any unit.
        root: index of the root joint, e.g. ``skeleton.root``.
    """
    if points.ndim < 2 or not -points.shape[-2] <= root < points.shape[-2]:
        raise InputError(f"points {tuple(points.shape)} must be (..., joints, C) with root {root} among the joints")
    centred = points - points[..., root : root + 1, :]
    rms = centred.square().sum(dim=-1).mean(dim=-1).sqrt()[..., None, None]
    return centred / rms.clamp_min(torch.finfo(rms.dtype).tiny)


def np_mpjpe(query: Tensor, retrieved: Tensor, *, root: int) -> Tensor:
    """NP-MPJPE of pose pairs: MPJPE after unit scale and Procrustes alignment of ``retrieved`` to ``query``.

    Both poses go through :func:`normalized_pose`; ``retrieved`` is then aligned to ``query`` by the best rotation
    (det +1), scale and translation (:func:`components.geometry.procrustes_align`). The result is unitless, in
    units of the query's RMS joint distance from the root, so one threshold serves every subject and dataset. It
    is not exactly symmetric: the alignment moves ``retrieved`` only.

    Args:
        query: ``(..., joints, 3)`` query poses.
        retrieved: ``(..., joints, 3)`` retrieved poses, same shape.
        root: index of the root joint, e.g. ``skeleton.root``.

    Returns:
        ``(...,)`` NP-MPJPE of each pair.
    """
    if query.shape != retrieved.shape or query.ndim < 2 or query.shape[-1] != 3:
        raise InputError(f"query {tuple(query.shape)} and retrieved {tuple(retrieved.shape)} must match (..., J, 3)")
    target = normalized_pose(query, root=root)
    aligned = procrustes_align(normalized_pose(retrieved, root=root), target)
    return mpjpe_per_frame(aligned, target)


def _chunks(n: int, chunk: int) -> Iterator[slice]:
    """Consecutive slices of at most ``chunk`` items covering ``range(n)``."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise InputError(f"chunk must be a positive int, got {chunk!r}")
    return (slice(start, min(start + chunk, n)) for start in range(0, n, chunk))


def nearest_neighbours(
    query_features: Tensor, gallery_features: Tensor, k: int, chunk: int = 4096
) -> tuple[Tensor, Tensor]:
    """Exact (exhaustive) ``k`` nearest gallery items of each query by Euclidean distance, nearest first.

    Distances are computed for ``chunk`` queries at a time, so memory grows as ``chunk * gallery`` rather than
    ``queries * gallery`` (4096 queries against 100k gallery items in float32: 1.6 GB per block). Ties are broken
    in an unspecified order.

    Args:
        query_features: ``(Q, D)`` query features.
        gallery_features: ``(G, D)`` gallery features, ``G >= k``.
        k: number of neighbours per query.
        chunk: queries per distance block.

    Returns:
        ``(distances, indices)``: ``(Q, k)`` ascending Euclidean distances in the feature unit, and the ``(Q, k)``
        int64 gallery rows they belong to.
    """
    if query_features.ndim != 2 or gallery_features.ndim != 2 or query_features.shape[1] != gallery_features.shape[1]:
        raise InputError(
            f"features must be (Q, D) and (G, D), got {tuple(query_features.shape)} and {tuple(gallery_features.shape)}"
        )
    _check_ks((k,), gallery_features.shape[0], "gallery size")
    blocks = [
        torch.cdist(query_features[rows], gallery_features).topk(k, dim=1, largest=False, sorted=True)
        for rows in _chunks(query_features.shape[0], chunk)
    ]
    if not blocks:
        empty = query_features.new_zeros(0, k)
        return empty, empty.long()
    return torch.cat([b.values for b in blocks]), torch.cat([b.indices for b in blocks])


def _check_ks(ks: Sequence[int], limit: int, what: str) -> None:
    """Raise a ValueError unless ``ks`` is a non-empty sequence of ints in ``[1, limit]``."""
    if len(ks) == 0 or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise InputError(f"ks must be positive ints, got {tuple(ks)!r}")
    if max(ks) > limit:
        raise InputError(f"k = {max(ks)} exceeds the {what} ({limit})")


def average_precision(relevant: Tensor) -> Tensor:
    """AP of each query's ranked list: the mean of Precision@i over the ranks ``i`` that hold a relevant item.

    ``AP = sum_{i <= k, rel_i} Precision@i / (number of relevant items in the top k)``, and 0 for a query with none.
    The denominator counts the relevant items retrieved in the top ``k``, not all relevant gallery items: counting
    those would need the NP-MPJPE of every query-gallery pair.

    Args:
        relevant: ``(Q, k)`` bool, rank order (nearest first).

    Returns:
        ``(Q,)`` float64 AP in ``[0, 1]``.
    """
    hits = relevant.double()
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=hits.dtype, device=hits.device)
    precision = hits.cumsum(dim=1) / ranks
    return (precision * hits).sum(dim=1) / hits.sum(dim=1).clamp_min(1)


def retrieval_scores(relevant: Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """``Hit@k`` for every ``k`` in ``ks`` and ``mAP@K`` for ``K = max(ks)``, from ranked relevance.

    ``Hit@k`` is the fraction of queries with at least one relevant item among their ``k`` nearest;
    ``mAP@K`` is the mean over queries of :func:`average_precision` of the top ``K``.

    Args:
        relevant: ``(Q, k_max)`` bool, ``relevant[q, i]`` for the ``i``-th nearest item of query ``q``.
        ks: cut-offs, each in ``[1, k_max]``.

    Returns:
        ``{"Hit@1": ..., "Hit@5": ..., "Hit@10": ..., "mAP@10": ...}`` (keys follow ``ks``), floats in ``[0, 1]``.
    """
    if relevant.ndim != 2 or relevant.dtype != torch.bool or relevant.shape[0] == 0:
        raise InputError(
            f"relevant must be a non-empty (Q, k) bool tensor, got {relevant.dtype} {tuple(relevant.shape)}"
        )
    _check_ks(ks, relevant.shape[1], "number of ranked items")
    scores = {f"Hit@{k}": relevant[:, :k].any(dim=1).double().mean().item() for k in ks}
    scores[f"mAP@{max(ks)}"] = average_precision(relevant[:, : max(ks)]).mean().item()
    return scores


def _check_views(features: Tensor, poses_3d: Tensor, camera: Tensor, instant: Tensor) -> None:
    """Raise a ValueError unless the per-pose inputs of :func:`cross_view_retrieval` agree in shape and type."""
    n = features.shape[0] if features.ndim == 2 else -1
    if n < 0 or poses_3d.shape[:1] != (n,) or poses_3d.ndim != 3 or poses_3d.shape[-1] != 3:
        raise InputError(
            f"features {tuple(features.shape)} must be (N, D) and poses_3d {tuple(poses_3d.shape)} (N, J, 3)"
        )
    for label, labels in (("camera", camera), ("instant", instant)):
        if labels.shape != (n,) or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise InputError(
                f"{label} must be an integer tensor of shape ({n},), got {labels.dtype} {tuple(labels.shape)}"
            )


def _hits(
    query_poses: Tensor, gallery_poses: Tensor, indices: Tensor, *, root: int, threshold: float, chunk: int
) -> Tensor:
    """``(Q, k)`` bool: NP-MPJPE(query ``q``, gallery item ``indices[q, i]``) <= ``threshold``, chunked over queries."""
    k = indices.shape[1]
    blocks = [
        np_mpjpe(query_poses[rows, None].expand(-1, k, -1, -1), gallery_poses[indices[rows]], root=root) <= threshold
        for rows in _chunks(query_poses.shape[0], chunk)
    ]
    return torch.cat(blocks)


def cross_view_retrieval(
    features: Tensor,
    poses_3d: Tensor,
    camera: Tensor,
    instant: Tensor,
    *,
    query_camera: int,
    root: int,
    ks: Sequence[int] = (1, 5, 10),
    threshold: float = 0.1,
    chunk: int = 4096,
) -> dict[str, float]:
    """Cross-view retrieval scores of one feature space over the poses of a set of synchronized views.

    Queries are the poses of ``query_camera``; the gallery is every pose of the other cameras. Each query's
    ``max(ks)`` nearest gallery items (:func:`nearest_neighbours`) are hits when their true 3D poses match the
    query's, :func:`np_mpjpe` <= ``threshold``. ``exact@1`` is the fraction of queries whose nearest item is the same
    instant (same recording and frame, another camera), the strictest test of view invariance.

    Args:
        features: ``(N, D)`` feature of every pose, e.g. an L2-normalised embedding.
        poses_3d: ``(N, J, 3)`` true root-relative 3D poses in metres (any unit works: NP-MPJPE is scale-free).
        camera: ``(N,)`` integer camera of each pose.
        instant: ``(N,)`` integer instant of each pose: equal for the views of one frame of one recording and
            distinct across frames and recordings.
        query_camera: camera whose poses are the queries.
        root: index of the root joint, e.g. ``skeleton.root``.
        ks: cut-offs for ``Hit@k``; ``mAP`` is taken at ``max(ks)``, which must not exceed the gallery size.
        threshold: largest NP-MPJPE of a hit (unitless, see :func:`np_mpjpe`).
        chunk: queries per block, bounding memory to about ``chunk * gallery`` distances.

    Returns:
        ``{"Hit@1", "Hit@5", "Hit@10", "mAP@10", "exact@1"}`` (``Hit``/``mAP`` keys follow ``ks``), floats in [0, 1].
    """
    _check_views(features, poses_3d, camera, instant)
    if not threshold >= 0:
        raise InputError(f"threshold must be a non-negative NP-MPJPE, got {threshold!r}")
    is_query = camera == query_camera
    num_queries, num_gallery = int(is_query.sum()), int((~is_query).sum())
    if num_queries == 0 or num_gallery == 0:
        raise InputError(
            f"camera {query_camera} gives {num_queries} queries and {num_gallery} gallery poses; both must be non-empty"
        )
    _check_ks(ks, num_gallery, "gallery size")
    _, indices = nearest_neighbours(features[is_query], features[~is_query], max(ks), chunk=chunk)
    relevant = _hits(poses_3d[is_query], poses_3d[~is_query], indices, root=root, threshold=threshold, chunk=chunk)
    scores = retrieval_scores(relevant, ks)
    scores["exact@1"] = (instant[~is_query][indices[:, 0]] == instant[is_query]).double().mean().item()
    return scores


def retrieval_table(rows: Mapping[str, Mapping[str, float]], name: str, title: str) -> ResultTable:
    """A table of retrieval scores in percent: one row per method, the columns of :data:`RETRIEVAL_COLUMNS`.

    Args:
        rows: method name -> scores as returned by :func:`cross_view_retrieval` (fractions in [0, 1]).
        name: file stem, e.g. ``"retrieval_h36m"``.
        title: e.g. ``"cross-view retrieval, Human3.6M S9/S11 (%)"``.
    """
    if not rows:
        raise InputError("retrieval_table needs at least one method")
    missing = {method: sorted(set(RETRIEVAL_COLUMNS) - set(s)) for method, s in rows.items()}
    missing = {method: keys for method, keys in missing.items() if keys}
    if missing:
        raise InputError(f"scores are missing columns {missing}; expected {RETRIEVAL_COLUMNS}")
    table_rows = tuple(
        (method, tuple(100.0 * float(scores[c]) for c in RETRIEVAL_COLUMNS)) for method, scores in rows.items()
    )
    return ResultTable(name, title, "method", RETRIEVAL_COLUMNS, table_rows)


# -- the report: a model's embedding against the 2D and 3D baselines -----------------------------------------------
Views = Sequence[Sequence[Any]]
"""Synchronized recordings, each a list of views with ``keypoints_2d`` ``(T, J_in, F)`` and ``poses_3d``
``(T, J_out, 3)`` arrays (the datamodule's ``PoseSequence``; only those two fields are read)."""
Featurizer = Callable[[Tensor], Tensor]  # (T, J_in, F) keypoints of a whole sequence -> (T, D) features


def _edge_padded(keypoints: np.ndarray, model: nn.Module) -> Tensor:
    """``(1, T + receptive_field - 1, J, F)``: a whole sequence padded like the window sampler pads it."""
    return torch.from_numpy(Timing.of(model).pad_sequence(keypoints)).float()[None]


def _every_frame(run: Callable[[Tensor], Tensor], keypoints: np.ndarray, lifter: nn.Module) -> Tensor:
    """``run`` (``(1, T_in, J, F)`` -> ``(1, T_out, ...)``, a lifter or its ``embed``) over a whole sequence
    ``(T, J, F)``: ``(T, ...)``, one output per frame, in windows of at most the lifter's ``max_frames`` when it
    has that bound (a sequence-to-sequence transformer's clips; ``components.lifter``)."""
    padded, longest = _edge_padded(keypoints, lifter), getattr(lifter, "max_frames", None)
    if longest is None:
        return run(padded)[0]
    extra = Timing.of(lifter).receptive_field - 1
    step, frames = longest - extra, padded.shape[1] - extra
    return torch.cat([run(padded[:, start : min(start + step, frames) + extra])[0] for start in range(0, frames, step)])


def embedding_features(lifter: nn.Module) -> Featurizer:
    """Features = the lifter's embedding of each frame."""
    return lambda keypoints: _every_frame(lifter.embed, keypoints, lifter)


def lifted_features(lifter: nn.Module, skeleton: Skeleton) -> Featurizer:
    """Features = the lifter's 3D pose of each frame, root-centred at unit scale."""
    return lambda keypoints: normalized_pose(_every_frame(lifter, keypoints, lifter), root=skeleton.root).flatten(1)


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
