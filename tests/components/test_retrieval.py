"""Known-value tests for components.retrieval: unit-scale poses, NP-MPJPE, exact k-NN, Hit@k, mAP@k, tables."""

from __future__ import annotations

import math

import pytest
import torch

from components.geometry import random_rotation_matrices
from components.retrieval import (
    RETRIEVAL_COLUMNS,
    average_precision,
    cross_view_retrieval,
    nearest_neighbours,
    normalized_pose,
    np_mpjpe,
    retrieval_scores,
    retrieval_table,
)
from components.skeleton import H36M_17

ROOT = H36M_17.root
JOINTS = H36M_17.num_joints


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _poses(*shape: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Random root-relative poses ``(*shape, JOINTS, channels)`` of about 0.2 m spread."""
    points = 0.2 * torch.randn(*shape, JOINTS, channels, generator=_generator(seed), dtype=torch.float64)
    return points - points[..., ROOT : ROOT + 1, :]


def _synchronized_views(num_instants: int, num_cameras: int, seed: int = 0, world: torch.Tensor | None = None):
    """Camera-space views of world poses: ``(world (N, J, 3), poses_3d (N, J, 3), camera (N,), instant (N,))``.

    Item ``n`` is instant ``n // num_cameras`` seen from camera ``n % num_cameras``; each camera has its own
    rotation, so the camera-space poses of one instant differ while their shapes agree.
    """
    if world is None:
        world = _poses(num_instants, seed=seed)
    rotations = random_rotation_matrices(num_cameras, generator=_generator(seed + 1))
    per_view = world[:, None] @ rotations[None]  # (instants, cameras, J, 3)
    instant = torch.arange(num_instants).repeat_interleave(num_cameras)
    camera = torch.arange(num_cameras).repeat(num_instants)
    return world.repeat_interleave(num_cameras, dim=0), per_view.reshape(-1, JOINTS, 3), camera, instant


# ------------------------------------------------------------------------------------------ normalized_pose


@pytest.mark.parametrize("channels", [2, 3])
def test_normalized_pose_is_invariant_to_translation_and_scale(channels):
    pose = _poses(5, channels=channels, seed=1) + 0.5
    shift = torch.randn(5, 1, channels, generator=_generator(2), dtype=torch.float64)
    scale = torch.tensor([0.5, 1.0, 2.0, 3.0, 10.0], dtype=torch.float64)[:, None, None]
    expected = normalized_pose(pose, root=ROOT)
    torch.testing.assert_close(normalized_pose(scale * pose + shift, root=ROOT), expected)
    assert torch.all(expected[:, ROOT] == 0)
    torch.testing.assert_close(expected.square().sum(dim=-1).mean(dim=-1), torch.ones(5, dtype=torch.float64))


def test_normalized_pose_known_value_and_degenerate_pose():
    # root (1, 1), joint (1, 3): centred (0, 0), (0, 2); RMS distance sqrt((0 + 4) / 2) = sqrt(2).
    two_joints = torch.tensor([[1.0, 3.0], [1.0, 1.0]])
    torch.testing.assert_close(normalized_pose(two_joints, root=1), torch.tensor([[0.0, math.sqrt(2)], [0.0, 0.0]]))
    assert torch.equal(normalized_pose(torch.ones(4, 3), root=0), torch.zeros(4, 3))  # all joints on the root


def test_normalized_pose_rejects_a_root_outside_the_joints():
    with pytest.raises(ValueError, match="root"):
        normalized_pose(torch.zeros(4, 3), root=4)
    with pytest.raises(ValueError, match="joints"):
        normalized_pose(torch.zeros(3), root=0)


# ------------------------------------------------------------------------------------------------ np_mpjpe


def test_np_mpjpe_is_zero_for_a_rotated_scaled_and_moved_copy():
    pose = _poses(6, seed=3)
    rotation = random_rotation_matrices(6, generator=_generator(4))
    moved = 2.5 * pose @ rotation + torch.tensor([0.3, -1.0, 4.0], dtype=torch.float64)
    error = np_mpjpe(pose, moved, root=ROOT)
    assert error.shape == (6,)
    torch.testing.assert_close(error, torch.zeros(6, dtype=torch.float64), atol=1e-9, rtol=0)


def test_np_mpjpe_separates_different_poses_and_mirror_images():
    a, b = _poses(2, seed=5).unbind(0)
    assert np_mpjpe(a, b, root=ROOT) > 0.3 and np_mpjpe(b, a, root=ROOT) > 0.3
    mirrored = a * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert np_mpjpe(a, mirrored, root=ROOT) > 0.1  # no reflection in the alignment


def test_np_mpjpe_of_nearby_poses_is_small_and_nearly_symmetric():
    a = _poses(8, seed=6)
    b = a + 0.01 * torch.randn(a.shape, generator=_generator(7), dtype=torch.float64)
    forward, backward = np_mpjpe(a, b, root=ROOT), np_mpjpe(b, a, root=ROOT)
    assert torch.all((forward > 0) & (forward < 0.1))
    torch.testing.assert_close(forward, backward, rtol=0.1, atol=0)


def test_np_mpjpe_keeps_batch_dimensions_and_checks_shapes():
    assert np_mpjpe(_poses(2, 4), _poses(2, 4, seed=1), root=ROOT).shape == (2, 4)
    with pytest.raises(ValueError, match="must match"):
        np_mpjpe(_poses(2), _poses(3), root=ROOT)
    with pytest.raises(ValueError, match="must match"):
        np_mpjpe(_poses(2, channels=2), _poses(2, channels=2), root=ROOT)


# -------------------------------------------------------------------------------------- nearest_neighbours


def test_nearest_neighbours_on_a_line():
    query = torch.tensor([[0.0], [4.0]])
    gallery = torch.tensor([[5.0], [-1.0], [3.0], [0.5], [-4.0]])
    distances, indices = nearest_neighbours(query, gallery, k=3)
    # from 0: 0.5 (row 3), -1 (row 1), 3 (row 2); from 4: 5 and 3 tie at 1, then 0.5 (row 3) at 3.5.
    assert indices[0].tolist() == [3, 1, 2] and sorted(indices[1, :2].tolist()) == [0, 2] and indices[1, 2] == 3
    torch.testing.assert_close(distances, torch.tensor([[0.5, 1.0, 3.0], [1.0, 1.0, 3.5]]))


@pytest.mark.parametrize("chunk", [1, 10, 37, 4096])
def test_nearest_neighbours_equals_brute_force_argsort(chunk):
    query = torch.randn(37, 8, generator=_generator(8), dtype=torch.float64)
    gallery = torch.randn(53, 8, generator=_generator(9), dtype=torch.float64)
    distances, indices = nearest_neighbours(query, gallery, k=7, chunk=chunk)
    all_distances = ((query[:, None] - gallery[None]) ** 2).sum(dim=-1).sqrt()
    order = all_distances.argsort(dim=1)[:, :7]
    assert indices.dtype == torch.int64 and torch.equal(indices, order)
    torch.testing.assert_close(distances, all_distances.gather(1, order))


def test_nearest_neighbours_of_no_queries_is_empty():
    distances, indices = nearest_neighbours(torch.zeros(0, 4), torch.zeros(6, 4), k=2)
    assert distances.shape == indices.shape == (0, 2)


@pytest.mark.parametrize(
    ("query", "gallery", "k", "chunk", "message"),
    [
        (torch.zeros(3, 4), torch.zeros(5, 3), 1, 8, "features must be"),
        (torch.zeros(3), torch.zeros(5, 3), 1, 8, "features must be"),
        (torch.zeros(3, 4), torch.zeros(5, 4), 6, 8, "exceeds the gallery size"),
        (torch.zeros(3, 4), torch.zeros(5, 4), 0, 8, "positive ints"),
        (torch.zeros(3, 4), torch.zeros(5, 4), 2, 0, "chunk"),
    ],
)
def test_nearest_neighbours_rejects_bad_input(query, gallery, k, chunk, message):
    with pytest.raises(ValueError, match=message):
        nearest_neighbours(query, gallery, k=k, chunk=chunk)


# --------------------------------------------------------------------------------------- retrieval_scores


def _relevance(ranks_per_query: list[list[int]], k: int = 10) -> torch.Tensor:
    """``(Q, k)`` bool with True at the given 1-based ranks."""
    relevant = torch.zeros(len(ranks_per_query), k, dtype=torch.bool)
    for q, ranks in enumerate(ranks_per_query):
        relevant[q, [r - 1 for r in ranks]] = True
    return relevant


def test_retrieval_scores_known_values():
    relevant = _relevance([[1], [2, 3], [6], []])
    scores = retrieval_scores(relevant)
    # AP: [1] -> 1/1; [2, 3] -> (1/2 + 2/3) / 2 = 7/12; [6] -> (1/6) / 1; none -> 0.
    expected_map = (1 + 7 / 12 + 1 / 6 + 0) / 4  # = 7/16
    assert scores == pytest.approx({"Hit@1": 1 / 4, "Hit@5": 2 / 4, "Hit@10": 3 / 4, "mAP@10": expected_map})
    torch.testing.assert_close(average_precision(relevant), torch.tensor([1, 7 / 12, 1 / 6, 0], dtype=torch.float64))


def test_retrieval_scores_take_map_at_the_largest_k():
    # ranks [2, 4] among 5: Hit@1 = 0, Hit@2 = 1; AP@3 counts rank 2 only: (1/2) / 1.
    assert retrieval_scores(_relevance([[2, 4]], k=5), ks=(1, 3)) == pytest.approx(
        {"Hit@1": 0.0, "Hit@3": 1.0, "mAP@3": 0.5}
    )


@pytest.mark.parametrize(
    ("relevant", "ks", "message"),
    [
        (torch.zeros(2, 10), (1, 5, 10), "bool"),
        (torch.zeros(0, 10, dtype=torch.bool), (1, 5, 10), "non-empty"),
        (torch.zeros(2, 5, dtype=torch.bool), (1, 5, 10), "exceeds"),
        (torch.zeros(2, 5, dtype=torch.bool), (), "positive ints"),
    ],
)
def test_retrieval_scores_reject_bad_input(relevant, ks, message):
    with pytest.raises(ValueError, match=message):
        retrieval_scores(relevant, ks)


# ----------------------------------------------------------------------------------- cross_view_retrieval


def test_cross_view_retrieval_on_a_hand_built_gallery():
    a, b = _poses(2, seed=10).unbind(0)
    rotation = random_rotation_matrices(1, generator=_generator(11))[0]
    # Instants 0, 1, 2 hold poses A, B, A (scaled); camera 1 sees them rotated. Features are 1-D.
    poses_3d = torch.stack([a, b, 1.3 * a, 0.9 * a @ rotation, b @ rotation, 1.3 * a @ rotation])
    features = torch.tensor([[0.0], [10.0], [20.0], [0.3], [10.2], [0.1]])
    camera = torch.tensor([0, 0, 0, 1, 1, 1])
    instant = torch.tensor([0, 1, 2, 0, 1, 2])
    scores = cross_view_retrieval(features, poses_3d, camera, instant, query_camera=0, root=ROOT, ks=(1, 2, 3))
    # Gallery order and relevance: q0 -> [i2 A, i0 A, i1 B] = [1, 1, 0]; q1 -> [i1 B, i0 A, i2 A] = [1, 0, 0];
    # q2 (A) -> [i1 B, i0 A, i2 A] = [0, 1, 1]. AP: 1, 1, (1/2 + 2/3) / 2. Top-1 same instant: q1 only.
    expected = {"Hit@1": 2 / 3, "Hit@2": 1.0, "Hit@3": 1.0, "mAP@3": (1 + 1 + 7 / 12) / 3, "exact@1": 1 / 3}
    assert scores == pytest.approx(expected)


@pytest.mark.parametrize("query_camera", [0, 3])
def test_a_view_invariant_feature_retrieves_every_instant(query_camera):
    world, poses_3d, camera, instant = _synchronized_views(num_instants=30, num_cameras=4, seed=12)
    features = world.flatten(1)  # the world pose: identical in every view
    scores = cross_view_retrieval(features, poses_3d, camera, instant, query_camera=query_camera, root=ROOT)
    # The 3 other views of the query's instant are at distance 0; the other random poses are no match.
    assert scores == pytest.approx({"Hit@1": 1.0, "Hit@5": 1.0, "Hit@10": 1.0, "mAP@10": 1.0, "exact@1": 1.0})


def test_a_random_feature_finds_the_same_instant_at_chance():
    _, poses_3d, camera, instant = _synchronized_views(num_instants=200, num_cameras=4, seed=13)
    features = torch.randn(len(camera), 16, generator=_generator(14))
    scores = cross_view_retrieval(features, poses_3d, camera, instant, query_camera=1, root=ROOT)
    # Chance of exact@1: 3 same-instant items in a gallery of 600 = 0.5%, about 1 query of 200.
    assert scores["exact@1"] < 0.05 and scores["Hit@1"] < 0.05


def test_hits_follow_the_3d_pose_not_the_instant():
    shape = _poses(1, seed=15)
    sizes = torch.linspace(0.8, 1.2, 50, dtype=torch.float64)[:, None, None]
    _, poses_3d, camera, instant = _synchronized_views(50, 3, seed=16, world=sizes * shape)  # one pose, many sizes
    features = torch.randn(len(camera), 8, generator=_generator(17))
    scores = cross_view_retrieval(features, poses_3d, camera, instant, query_camera=2, root=ROOT)
    assert scores["Hit@1"] == scores["mAP@10"] == 1.0 and scores["exact@1"] < 0.2


def test_cross_view_retrieval_chunks_give_the_same_scores():
    world, poses_3d, camera, instant = _synchronized_views(num_instants=20, num_cameras=4, seed=18)
    features = world.flatten(1) + 0.05 * torch.randn(
        world.flatten(1).shape, generator=_generator(19), dtype=torch.float64
    )
    whole = cross_view_retrieval(features, poses_3d, camera, instant, query_camera=0, root=ROOT)
    chunked = cross_view_retrieval(features, poses_3d, camera, instant, query_camera=0, root=ROOT, chunk=3)
    assert whole == chunked


def _views():
    _, poses_3d, camera, instant = _synchronized_views(num_instants=4, num_cameras=2)
    return {"features": poses_3d.flatten(1), "poses_3d": poses_3d, "camera": camera, "instant": instant}


@pytest.mark.parametrize(
    ("change", "options", "message"),
    [
        ({"features": torch.zeros(7, 5)}, {}, "must be"),
        ({"features": torch.zeros(8)}, {}, "must be"),
        ({"poses_3d": torch.zeros(8, JOINTS, 2)}, {}, "must be"),
        ({"camera": torch.zeros(8)}, {}, "camera must be an integer"),
        ({"instant": torch.zeros(7, dtype=torch.long)}, {}, "instant must be an integer"),
        ({}, {"query_camera": 5}, "0 queries"),
        ({"camera": torch.zeros(8, dtype=torch.long)}, {}, "0 gallery"),
        ({}, {"ks": (1, 5)}, "exceeds the gallery size"),
        ({}, {"ks": (1,), "threshold": -0.1}, "threshold"),
    ],
)
def test_cross_view_retrieval_rejects_bad_input(change, options, message):
    inputs = _views() | change
    arguments = {"query_camera": 0, "root": ROOT, "ks": (1, 2)} | options
    with pytest.raises(ValueError, match=message):
        cross_view_retrieval(**inputs, **arguments)


# ----------------------------------------------------------------------------------------- retrieval_table


def test_retrieval_table_reports_percentages_per_method():
    scores = {"Hit@1": 0.5, "Hit@5": 0.75, "Hit@10": 0.875, "mAP@10": 0.4375, "exact@1": 0.25}
    table = retrieval_table({"embedding": scores, "2D keypoints": dict.fromkeys(scores, 0.0)}, "retrieval", "H36M (%)")
    assert table.columns == RETRIEVAL_COLUMNS == ("Hit@1", "Hit@5", "Hit@10", "mAP@10", "exact@1")
    assert table.rows == (("embedding", (50.0, 75.0, 87.5, 43.75, 25.0)), ("2D keypoints", (0.0,) * 5))
    assert table.format().splitlines()[1].split() == ["method", *RETRIEVAL_COLUMNS]


def test_retrieval_table_rejects_missing_scores():
    with pytest.raises(ValueError, match="exact@1"):
        retrieval_table({"embedding": {"Hit@1": 1.0, "Hit@5": 1.0, "Hit@10": 1.0, "mAP@10": 1.0}}, "t", "t")
    with pytest.raises(ValueError, match="at least one"):
        retrieval_table({}, "t", "t")
