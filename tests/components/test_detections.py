"""Detection processing on hand-computed keypoints: layout conversion, following one person, gap filling."""

import numpy as np
import pytest
import torch

from components.detections import (
    bounding_boxes,
    box_iou,
    conversion_matrix,
    convert_keypoints,
    fill_missing,
    follow_person,
    person_scores,
    track_people,
)
from components.skeleton import (
    COCO_17,
    H36M_17,
    LAYOUTS,
    OPENPOSE_BODY_25,
    OPENPOSE_BODY_25B,
    OPENPOSE_COCO_18,
    Skeleton,
)

NAN = float("nan")

# Joints that the derivation rules read, with values chosen so that the derived joints are easy sums.
BODY = {
    "nose": (20.0, 2.0, 0.95),
    "left_ear": (16.0, 0.0, 0.9),
    "right_ear": (24.0, 0.0, 0.85),
    "left_shoulder": (12.0, 4.0, 0.7),
    "right_shoulder": (28.0, 8.0, 0.6),
    "left_hip": (10.0, 20.0, 0.9),
    "right_hip": (30.0, 40.0, 0.8),
}
PELVIS = (20.0, 30.0, 0.8)  # mean of the hips, lower hip score
THORAX = (20.0, 6.0, 0.6)  # mean of the shoulders
SPINE = (20.0, 18.0, 0.6)  # mean of pelvis and thorax, lowest of the four scores
HEAD_TOP = (20.0, -3.0, 0.6)  # ear midpoint (20, 0) + 0.5 * ((20, 0) - thorax (20, 6))


def _pose(skeleton: Skeleton, given: dict[str, tuple[float, float, float]]) -> np.ndarray:
    """``(joints, 3)`` float32: ``given`` joints by name, every other joint j at (100 + j, 200 + j, 0.5)."""
    joints = np.arange(skeleton.num_joints, dtype=np.float32)
    pose = np.stack([100 + joints, 200 + joints, np.full_like(joints, 0.5)], axis=-1)
    for name, value in given.items():
        pose[skeleton.index(name)] = value
    return pose


def _expected_h36m(source_pose: np.ndarray, source: Skeleton, derived: dict) -> np.ndarray:
    """H36M pose: joints the source names are copied by name, the others come from ``derived``."""
    copied = {n: tuple(source_pose[source.index(n)]) for n in H36M_17.joint_names if n in source.joint_names}
    return np.array([derived.get(n, copied.get(n)) for n in H36M_17.joint_names], dtype=np.float32)


def test_coco_to_h36m_derives_pelvis_thorax_spine_head_and_head_top():
    pose = _pose(COCO_17, BODY)
    derived = {"pelvis": PELVIS, "thorax": THORAX, "spine": SPINE, "head": BODY["nose"], "head_top": HEAD_TOP}
    converted = convert_keypoints(pose, COCO_17, H36M_17)
    np.testing.assert_array_equal(converted, _expected_h36m(pose, COCO_17, derived))
    assert converted.dtype == np.float32


def test_body25_uses_its_own_neck_and_midhip():
    neck, mid_hip = (21.0, 5.0, 0.4), (19.0, 33.0, 0.3)  # deliberately not the shoulder/hip midpoints
    pose = _pose(OPENPOSE_BODY_25, {**BODY, "thorax": neck, "pelvis": mid_hip})
    derived = {
        "spine": (20.0, 19.0, 0.3),
        "head": BODY["nose"],
        "head_top": (19.5, -2.5, 0.4),  # 1.5 * ear midpoint (20, 0) - 0.5 * neck (21, 5)
    }
    converted = convert_keypoints(pose, OPENPOSE_BODY_25, H36M_17)
    np.testing.assert_array_equal(converted, _expected_h36m(pose, OPENPOSE_BODY_25, derived))
    row = conversion_matrix(OPENPOSE_BODY_25, H36M_17)[H36M_17.index("spine")]
    assert {OPENPOSE_BODY_25.joint_names[j]: w for j, w in enumerate(row) if w} == {"thorax": 0.5, "pelvis": 0.5}


def test_body25b_keeps_its_head_top_and_derives_the_torso():
    pose = _pose(OPENPOSE_BODY_25B, {**BODY, "head_top": (18.0, -9.0, 0.2)})
    derived = {"pelvis": PELVIS, "thorax": THORAX, "spine": SPINE, "head": BODY["nose"]}
    converted = convert_keypoints(pose, OPENPOSE_BODY_25B, H36M_17)
    np.testing.assert_array_equal(converted, _expected_h36m(pose, OPENPOSE_BODY_25B, derived))
    assert tuple(converted[H36M_17.index("head_top")]) == (18.0, -9.0, np.float32(0.2))


def test_coco18_uses_its_neck_and_derives_the_pelvis():
    neck = (20.0, 6.0, 0.5)
    pose = _pose(OPENPOSE_COCO_18, {**BODY, "thorax": neck})
    derived = {"pelvis": PELVIS, "spine": (20.0, 18.0, 0.5), "head": BODY["nose"], "head_top": (20.0, -3.0, 0.5)}
    converted = convert_keypoints(pose, OPENPOSE_COCO_18, H36M_17)
    np.testing.assert_array_equal(converted, _expected_h36m(pose, OPENPOSE_COCO_18, derived))


@pytest.mark.parametrize("source", [COCO_17, OPENPOSE_BODY_25, OPENPOSE_BODY_25B, OPENPOSE_COCO_18, H36M_17])
def test_conversion_rows_sum_to_one_so_translation_commutes(source):
    matrix = conversion_matrix(source, H36M_17)
    assert matrix.shape == (17, source.num_joints)
    np.testing.assert_allclose(matrix.sum(1), 1.0)


@pytest.mark.parametrize("skeleton", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_same_layout_is_the_identity(skeleton):
    np.testing.assert_array_equal(conversion_matrix(skeleton, skeleton), np.eye(skeleton.num_joints))
    pose = _pose(skeleton, {})
    pose[0, :2] = NAN
    np.testing.assert_array_equal(convert_keypoints(pose, skeleton, skeleton), pose)


def test_missing_contributor_makes_the_derived_joint_missing_only():
    poses = np.stack([_pose(COCO_17, BODY)] * 2)  # (frames=2, 17, 3)
    poses[1, COCO_17.index("left_hip"), :2] = NAN
    converted = convert_keypoints(poses, COCO_17, H36M_17)
    missing = {H36M_17.joint_names[j] for j in np.flatnonzero(np.isnan(converted[1, :, 0]))}
    assert missing == {"pelvis", "spine", "left_hip"}
    np.testing.assert_array_equal(converted[0], convert_keypoints(poses[0], COCO_17, H36M_17))
    assert converted[1, H36M_17.index("thorax")].tolist() == list(THORAX[:2]) + [np.float32(THORAX[2])]


def test_torch_matches_numpy():
    poses = np.stack([_pose(COCO_17, BODY)] * 3)
    poses[2, COCO_17.index("right_ear")] = NAN
    expected = convert_keypoints(poses, COCO_17, H36M_17)
    converted = convert_keypoints(torch.from_numpy(poses), COCO_17, H36M_17)
    assert converted.dtype == torch.float32
    np.testing.assert_array_equal(converted.numpy(), expected)
    assert np.isnan(expected[2, H36M_17.index("head_top")]).all()  # the score is missing too


def test_conversion_errors_name_the_target_joint():
    with pytest.raises(ValueError, match="target joint 'nose' is not in 'h36m'"):
        conversion_matrix(H36M_17, COCO_17)
    no_head_top = Skeleton("no_head_top", tuple(j for j in H36M_17.joints if j[0] != "head_top"))
    with pytest.raises(ValueError, match="target joint 'head_top' needs 'left_ear'.*head_top = 0.75 \\* left_ear"):
        conversion_matrix(no_head_top, H36M_17)
    with pytest.raises(ValueError, match=r"shape \(4, 16, 3\), expected \(..., 17, 3\).*'coco'"):
        convert_keypoints(np.zeros((4, 16, 3)), COCO_17, H36M_17)


# --------------------------------------------------------------------------- following one person


def _person(x0: float, y0: float, x1: float, y1: float, score: float) -> list[list[float]]:
    """Three joints spanning the box ``[x0, y0, x1, y1]``."""
    return [[x0, y0, score], [x1, y1, score], [x0, y1, score]]


ABSENT = [[NAN] * 3] * 3


def test_boxes_scores_and_iou_by_hand():
    person = np.array(_person(0, 0, 2, 2, 0.5))
    person[2] = NAN  # a missing joint counts as score 0 and does not move the box
    assert bounding_boxes(person).tolist() == [0, 0, 2, 2]
    assert person_scores(person) == pytest.approx(4 * (0.5 + 0.5 + 0) / 3)
    assert np.isnan(bounding_boxes(np.array(ABSENT))).all() and person_scores(np.array(ABSENT)) == 0
    boxes = np.array([[1, 1, 3, 3], [5, 5, 6, 6], [NAN] * 4, [1, 1, 1, 1]], dtype=float)
    np.testing.assert_allclose(box_iou(np.array([0.0, 0, 2, 2]), boxes), [1 / 7, 0, 0, 0])


def test_follow_person_keeps_the_main_person_through_gaps_and_swapped_slots():
    big = [_person(0, 0, 10, 20, 0.9), _person(1, 0, 11, 20, 0.8), _person(2, 1, 12, 21, 0.7)]
    small = _person(50, 0, 55, 10, 1.0)
    frames = np.array(
        [
            [ABSENT, ABSENT],  # nobody yet
            [small, big[0]],  # start: the big confident person wins over the small one
            [big[1], small],  # slots swap; IoU follows the person
            [ABSENT, ABSENT],  # nobody
            [small, ABSENT],  # only the other person: outside the gate
            [ABSENT, big[2]],
        ],
        dtype=np.float32,
    )
    track, chosen = follow_person(frames)
    assert chosen.tolist() == [-1, 1, 0, -1, -1, 1]
    np.testing.assert_array_equal(track[[1, 2, 5]], np.array(big, dtype=np.float32))
    assert np.isnan(track[[0, 3, 4]]).all() and track.dtype == np.float32


def test_follow_person_reacquires_after_a_long_gap():
    here, there = _person(0, 0, 10, 10, 1.0), _person(100, 100, 110, 110, 1.0)
    frames = np.array([[here], [ABSENT], [there], [ABSENT], [there]], dtype=np.float32)
    assert follow_person(frames, reacquire_after=3)[1].tolist() == [0, -1, -1, -1, 0]
    assert follow_person(frames, reacquire_after=1)[1].tolist() == [0, -1, 0, -1, 0]


def test_follow_person_rejects_bad_shapes_and_handles_no_slots():
    with pytest.raises(ValueError, match=r"shape \(2, 3, 3\), expected \(frames, persons, joints, 3\)"):
        follow_person(np.zeros((2, 3, 3)))
    track, chosen = follow_person(np.zeros((2, 0, 3, 3)))
    assert chosen.tolist() == [-1, -1] and track.shape == (2, 3, 3) and np.isnan(track).all()


def test_track_people_follows_everyone_through_swaps_gaps_and_drops_brief_tracks():
    left = np.array([_person(0 + t, 0, 10 + t, 20, 0.9) for t in range(8)], np.float32)
    right = np.array([_person(100 - t, 0, 105 - t, 10, 0.9) for t in range(8)], np.float32)  # smaller
    frames = np.full((8, 3, 3, 3), np.nan, np.float32)
    for t in range(8):
        frames[t, t % 2], frames[t, 1 - t % 2] = left[t], right[t]  # slots swap every frame
    frames[3, 0] = np.nan  # the right person (slot 0 in odd frames) is missed once
    frames[5, 2] = np.array(_person(300, 300, 301, 301, 0.3))  # one false detection
    tracks = track_people(frames, min_fraction=0.2)  # the false detection: 1 frame of 8
    assert tracks.T.tolist() == [
        [0, 1, 0, 1, 0, 1, 0, 1],  # the left person, track 0: the most prominent
        [1, 0, 1, -1, 1, 0, 1, 0],
    ]
    left_track = tracks[:, 0]
    np.testing.assert_array_equal(frames[np.arange(8), np.maximum(left_track, 0)][left_track >= 0][:, 0, 0],
                                  [t for t in range(8) if left_track[t] >= 0])  # fmt: skip
    assert track_people(frames, min_fraction=0.0).shape[1] == 3  # the false detection kept as a track
    assert track_people(np.full((4, 2, 3, 3), np.nan, np.float32)).shape == (4, 0)


# --------------------------------------------------------------------------- filling gaps in time

TINY = Skeleton("tiny", (("pelvis", None), ("left_hip", "pelvis"), ("right_hip", "pelvis")))


def test_fill_missing_interpolates_holds_ends_and_reports_empty_frames():
    keypoints = np.array(
        [
            [[NAN, NAN, NAN], [0, 0, 0.9], [5, 5, 0.9]],
            [[10, 100, 0.9], [2, 2, 0.9], [5, 5, 0.9]],
            [[NAN, NAN, NAN], [99, 99, 0.1], [5, 5, 0.9]],  # left_hip below min_score: replaced
            [[NAN, NAN, NAN], [6, 6, 0.9], [5, 5, 0.9]],
            [[40, 400, 0.9], [8, 8, 0.9], [NAN, NAN, NAN]],
            [[NAN, NAN, NAN], [NAN, NAN, NAN], [NAN, NAN, NAN]],  # nobody
        ],
        dtype=np.float32,
    )
    result = fill_missing(keypoints, TINY, min_score=0.5)
    np.testing.assert_array_equal(result.keypoints[:, 0, 0], [10, 10, 20, 30, 40, 40])
    np.testing.assert_array_equal(result.keypoints[:, 0, 1], [100, 100, 200, 300, 400, 400])
    np.testing.assert_array_equal(result.keypoints[:, 1, :2], [[0, 0], [2, 2], [4, 4], [6, 6], [8, 8], [8, 8]])
    np.testing.assert_array_equal(result.keypoints[:, 2, :2], np.full((6, 2), 5))
    np.testing.assert_allclose(result.keypoints[:, 1, 2], [0.9, 0.9, 0.1, 0.9, 0.9, 0.0])
    assert result.filled.tolist() == [
        [True, False, False],
        [False, False, False],
        [True, True, False],
        [True, False, False],
        [False, False, True],
        [True, True, True],
    ]
    assert result.empty_frames.tolist() == [False] * 5 + [True]
    assert result.keypoints.dtype == np.float32


def test_fill_missing_names_joints_never_seen():
    keypoints = np.zeros((4, 3, 3), dtype=np.float32)
    keypoints[..., 2] = 0.9
    keypoints[:, 2, 2] = 0.2
    keypoints[:, 0] = NAN
    with pytest.raises(ValueError, match=r"joints \['pelvis', 'right_hip'\] of layout 'tiny' are never detected"):
        fill_missing(keypoints, TINY, min_score=0.3)
    with pytest.raises(ValueError, match=r"shape \(4, 2, 3\), expected \(frames, 3, 3\) for layout 'tiny'"):
        fill_missing(keypoints[:, :2], TINY)
