import numpy as np
import pytest
import torch

from components.skeleton import (
    COCO_17,
    H36M_17,
    H36M_32,
    LAYOUTS,
    MPI_INF_3DHP_17,
    MPI_INF_3DHP_28,
    OPENPOSE_BODY_25,
    OPENPOSE_BODY_25B,
    OPENPOSE_COCO_18,
    layout,
)


def test_h36m_17_matches_published_tree():
    # The published 17-joint parents and symmetry lists (reference/datasets.md A4).
    assert H36M_17.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    assert H36M_17.left == (4, 5, 6, 11, 12, 13)
    assert H36M_17.right == (1, 2, 3, 14, 15, 16)
    assert H36M_17.root == 0 and H36M_17.index("pelvis") == 0


def test_h36m_32_parents_and_selection():
    assert H36M_32.parents == (
        -1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22, 12, 24, 25, 26, 27,
        28, 27, 30,
    )  # fmt: skip
    assert H36M_17.selection_from(H36M_32) == (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)


def test_3dhp_mappings_by_name():
    assert MPI_INF_3DHP_17.selection_from(MPI_INF_3DHP_28) == (
        7,
        5,
        14,
        15,
        16,
        9,
        10,
        11,
        23,
        24,
        25,
        18,
        19,
        20,
        4,
        3,
        6,
    )
    assert H36M_17.selection_from(MPI_INF_3DHP_17) == (
        14,
        8,
        9,
        10,
        11,
        12,
        13,
        15,
        1,
        16,
        0,
        5,
        6,
        7,
        2,
        3,
        4,
    )
    assert H36M_17.selection_from(MPI_INF_3DHP_28) == (
        4,
        23,
        24,
        25,
        18,
        19,
        20,
        3,
        5,
        6,
        7,
        9,
        10,
        11,
        14,
        15,
        16,
    )
    assert MPI_INF_3DHP_17.parents == (1, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1)


@pytest.mark.parametrize("skeleton", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_flip_permutation_is_an_involution_swapping_sides(skeleton):
    perm = np.array(skeleton.flip_permutation)
    assert (perm[perm] == np.arange(len(skeleton))).all()
    for i, j in enumerate(perm):
        a, b = skeleton.joint_names[i], skeleton.joint_names[j]
        assert a.replace("left_", "").replace("right_", "") == b.replace("left_", "").replace("right_", "")
        assert (a == b) == (not a.startswith(("left_", "right_")))


@pytest.mark.parametrize("skeleton", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_bones_form_a_tree(skeleton):
    assert len(skeleton.bones) == len(skeleton) - 1
    for child, parent in skeleton.bones:
        depth, joint = 0, child
        while joint != skeleton.root:  # every joint reaches the root without cycles
            joint, depth = skeleton.parents[joint], depth + 1
            assert depth <= len(skeleton)
        assert parent != child


def test_convert_by_name_on_arrays_and_tensors():
    points = np.arange(32 * 3, dtype=np.float32).reshape(1, 32, 3)
    converted = H36M_17.convert_from(H36M_32, points)
    assert converted.shape == (1, 17, 3)
    assert (converted[0, H36M_17.index("left_wrist")] == points[0, H36M_32.index("left_wrist")]).all()
    tensor = H36M_17.convert_from(H36M_32, torch.from_numpy(points))
    assert torch.equal(tensor, torch.from_numpy(converted))


def test_errors_name_what_is_missing():
    with pytest.raises(ValueError, match="lacks.*pelvis"):
        H36M_17.selection_from(COCO_17)
    with pytest.raises(KeyError, match="'nose' is not in skeleton 'h36m'"):
        H36M_17.index("nose")
    with pytest.raises(ValueError, match="16 joints on axis -2.*expected 32"):
        H36M_17.convert_from(H36M_32, np.zeros((2, 16, 3)))
    with pytest.raises(KeyError, match="unknown skeleton layout 'mpii'"):
        layout("mpii")
    assert layout("coco") is COCO_17


# OpenPose's own labels, in its output order, and the names they get here.
OPENPOSE_NAMES = {
    "Nose": "nose",
    "Neck": "thorax",
    "MidHip": "pelvis",
    "UpperNeck": "upper_neck",
    "HeadTop": "head_top",
    **{f"{s[0].upper()}{part}": f"{s}_{name}" for s in ("left", "right") for part, name in [
        ("Shoulder", "shoulder"), ("Elbow", "elbow"), ("Wrist", "wrist"), ("Hip", "hip"), ("Knee", "knee"),
        ("Ankle", "ankle"), ("Eye", "eye"), ("Ear", "ear"), ("BigToe", "big_toe"), ("SmallToe", "small_toe"),
        ("Heel", "heel"),
    ]},
}  # fmt: skip
BODY_25 = (
    "Nose Neck RShoulder RElbow RWrist LShoulder LElbow LWrist MidHip RHip RKnee RAnkle LHip LKnee LAnkle "
    "REye LEye REar LEar LBigToe LSmallToe LHeel RBigToe RSmallToe RHeel"
)
BODY_25B = (
    "Nose LEye REye LEar REar LShoulder RShoulder LElbow RElbow LWrist RWrist LHip RHip LKnee RKnee LAnkle "
    "RAnkle UpperNeck HeadTop LBigToe LSmallToe LHeel RBigToe RSmallToe RHeel"
)
COCO_18 = (
    "Nose Neck RShoulder RElbow RWrist LShoulder LElbow LWrist RHip RKnee RAnkle LHip LKnee LAnkle REye LEye REar LEar"
)


@pytest.mark.parametrize(
    ("skeleton", "labels"),
    [(OPENPOSE_BODY_25, BODY_25), (OPENPOSE_BODY_25B, BODY_25B), (OPENPOSE_COCO_18, COCO_18)],
    ids=["body25", "body25b", "coco18"],
)
def test_openpose_layouts_follow_openpose_order(skeleton, labels):
    assert skeleton.joint_names == tuple(OPENPOSE_NAMES[label] for label in labels.split())
    assert layout(skeleton.name) is skeleton


def test_openpose_trees_and_sides():
    assert OPENPOSE_BODY_25.root == OPENPOSE_BODY_25.index("pelvis")
    assert OPENPOSE_BODY_25.parents == (
        1, 8, 1, 2, 3, 1, 5, 6, -1, 8, 9, 10, 8, 12, 13, 0, 0, 15, 16, 14, 19, 14, 11, 22, 11,
    )  # fmt: skip
    assert OPENPOSE_BODY_25.left == (5, 6, 7, 12, 13, 14, 16, 18, 19, 20, 21)
    assert OPENPOSE_BODY_25.right == (2, 3, 4, 9, 10, 11, 15, 17, 22, 23, 24)
    assert OPENPOSE_BODY_25B.parents[:17] == COCO_17.parents  # COCO's 17 joints first, same tree
    assert OPENPOSE_BODY_25B.parents[17:] == (0, 17, 15, 19, 15, 16, 22, 16)
    assert OPENPOSE_COCO_18.root == OPENPOSE_COCO_18.index("thorax")
    assert OPENPOSE_COCO_18.flip_permutation == (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)
    assert COCO_17.selection_from(OPENPOSE_COCO_18) == (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)
