"""Known-value tests for the synthetic body (datamodules.synthetic.body): names, rigid bones, heights.

The anatomy is checked on the ``tiny`` Human3.6M files (conftest), where every frame went through forward
kinematics: rigid bones, equal left/right bones, adult heights, feet on the floor.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import torch

from components.geometry import bone_lengths
from components.skeleton import H36M_17, H36M_32, MPI_INF_3DHP_28
from datamodules.synthetic.body import BODY, subject_body

SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")


def test_body_holds_the_names_of_every_dataset_layout() -> None:
    assert set(H36M_32.joint_names) | set(MPI_INF_3DHP_28.joint_names) <= set(BODY.joint_names)
    assert all(p < j for j, p in enumerate(BODY.parents))  # parents first: one forward-kinematics pass


def _bones(world_32: np.ndarray) -> np.ndarray:
    poses = torch.from_numpy(H36M_17.convert_from(H36M_32, world_32)).double()
    return bone_lengths(poses, H36M_17).numpy()


def test_bone_lengths_are_rigid_within_a_subject_and_differ_between_subjects(poses_3d) -> None:
    means = {}
    for subject, actions in poses_3d.items():
        bones = np.concatenate([_bones(world) for world in actions.values()])
        assert np.abs(bones - bones.mean(0)).max() < 1e-5  # metres, over every frame of every take
        assert bones.min() > 0.05
        means[subject] = bones.mean(0)
    for a, b in combinations(SUBJECTS, 2):
        assert np.abs(means[a] - means[b]).max() > 0.002, (a, b)


def test_left_and_right_bones_are_equal(poses_3d) -> None:
    bones = _bones(poses_3d["S6"]["Walking"])[0]
    child = [c for c, _ in H36M_17.bones]
    for i, c in enumerate(child):
        partner = H36M_17.flip_permutation[c]
        assert bones[i] == pytest.approx(bones[child.index(partner)], abs=1e-6)


def test_standing_heights_are_adult_and_feet_touch_the_floor(poses_3d) -> None:
    feet = list(H36M_32.indices([f"{s}_{j}" for s in ("left", "right") for j in ("ankle", "toe", "toe_end")]))
    heights = {}
    for subject, actions in poses_3d.items():
        for action, world in actions.items():
            lowest = world[:, feet, 2].min(axis=1)
            # Some foot point is on the floor (z = 0) in every frame (the heels, not in the file, may be the
            # lowest point), and none is below it.
            assert lowest.min() > -1e-5 and lowest.max() < 0.02, (subject, action)
        walking = np.concatenate([w for a, w in actions.items() if a.startswith("Walking")])
        heights[subject] = walking[:, H36M_32.index("head_top"), 2].max()
        assert 1.5 <= heights[subject] <= 1.9
        # Upright walking reaches the body's standing height to within a few centimetres.
        assert heights[subject] == pytest.approx(subject_body(subject, seed=0).height, abs=0.05)
    assert len({round(float(h), 3) for h in heights.values()}) == len(SUBJECTS)
