"""Known-value tests for the motion engine (datamodules.synthetic.motions): every action in view, on the floor."""

from __future__ import annotations

import numpy as np
import pytest

from components.camera import h36m_cameras
from components.skeleton import H36M_32, MPI_INF_3DHP_28
from datamodules.synthetic.body import BODY, subject_body
from datamodules.synthetic.h36m import H36M_ACTIONS
from datamodules.synthetic.motions import simulate_motion
from datamodules.synthetic.signals import FPS
from datamodules.synthetic.volume import CaptureVolume, capture_volume


@pytest.fixture(scope="module")
def volume_s9() -> CaptureVolume:
    return capture_volume(h36m_cameras("S9"))


@pytest.mark.parametrize("action", sorted(H36M_ACTIONS))
def test_every_action_stays_in_view_on_the_floor(action, volume_s9) -> None:
    volume, body = volume_s9, subject_body("S9", seed=3)
    motion = simulate_motion(H36M_ACTIONS[action], 150, body, volume, np.random.default_rng(7))
    assert motion.shape == (150, BODY.num_joints, 3)
    assert volume.sees(motion).all()
    assert motion[..., 2].min() == pytest.approx(0.0, abs=1e-9)
    mpi = MPI_INF_3DHP_28.convert_from(BODY, motion)
    assert mpi.shape == (150, 28, 3)
    assert np.linalg.norm(np.diff(motion, axis=0), axis=-1).max() < 0.15  # no joint jumps > 7.5 m/s


def test_walking_moves_and_standing_stays_near_one_spot(poses_3d) -> None:
    pelvis = H36M_32.index("pelvis")
    walk = poses_3d["S1"]["Walking"][:, pelvis, :2]
    speed = np.linalg.norm(np.diff(walk, axis=0), axis=-1).mean() * FPS
    assert 0.7 < speed < 1.8  # metres per second
    stand = poses_3d["S1"]["Directions"][:, pelvis, :2]
    assert np.linalg.norm(stand - stand.mean(0), axis=-1).max() < 0.5
