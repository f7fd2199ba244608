"""Synthetic datasets written in the real file formats, and the motion engine behind them.

The engine is dataset-agnostic, so every synthetic dataset shares it:

- :mod:`~datamodules.synthetic.body`: the named joint tree :data:`BODY` (every joint name of ``H36M_32`` and
  ``MPI_INF_3DHP_28``), per-subject bodies, joint rotations and forward kinematics;
- :mod:`~datamodules.synthetic.signals`, :mod:`~datamodules.synthetic.plan`, :mod:`~datamodules.synthetic.kinds`:
  smooth random signals, the joint angles and path they drive, and the motion kinds built from them;
- :mod:`~datamodules.synthetic.motions`: one take of an :class:`ActionSpec`, kept inside a
  :class:`CaptureVolume` (:mod:`~datamodules.synthetic.volume`) so every joint stays in view of every camera;
- :mod:`~datamodules.synthetic.recording`: several takes blended into one continuous recording;
- :mod:`~datamodules.synthetic.detector`: 2D detector errors; :mod:`~datamodules.synthetic.projection`: the
  camera model in numpy; :mod:`~datamodules.synthetic.files`: atomic writing; seeding by name.

A dataset writer maps its action names to motion kinds and writes its own file format:
:mod:`~datamodules.synthetic.h36m` writes Human3.6M in the VideoPose3D npz formats,
:mod:`~datamodules.synthetic.mpi_inf_3dhp` writes MPI-INF-3DHP in its MATLAB and calibration formats.
Everything is vectorised over frames; the names below are the package's public interface.
"""

from datamodules.synthetic.body import (
    BODY,
    HEIGHT_RANGE,
    BodyShape,
    axis_rotation,
    body_shape,
    forward_kinematics,
    joint_rotation,
    subject_body,
    to_layout,
)
from datamodules.synthetic.detector import DetectorNoise, NoisyKeypoints, corrupt_keypoints
from datamodules.synthetic.h36m import (
    FILE_3D,
    H36M_ACTIONS,
    H36M_COINCIDENT_JOINTS,
    H36M_SUBJECTS,
    SIZES,
    SYNTHETIC_2D_SOURCES,
    SynthesisSummary,
    SyntheticSize,
    ensure_synthetic_h36m,
    file_2d,
    generate_subject_motions,
    h36m_keypoints_2d,
    synthesize_h36m,
    synthetic_size,
    take_names,
)
from datamodules.synthetic.kinds import MOTION_KINDS
from datamodules.synthetic.motions import ActionSpec, simulate_motion
from datamodules.synthetic.mpi_inf_3dhp import (
    ACTIVITY_MOTIONS,
    SIZES_3DHP,
    UNIVERSAL_HEIGHT,
    SynthesisSummary3DHP,
    SyntheticSize3DHP,
    ensure_synthetic_3dhp,
    synthesize_3dhp,
    synthetic_3dhp_files,
    synthetic_size_3dhp,
    train_rig,
)
from datamodules.synthetic.plan import JointAngles, MotionPlan, pose_motion
from datamodules.synthetic.projection import project_to_pixels
from datamodules.synthetic.recording import Recording, simulate_recording
from datamodules.synthetic.signals import FPS
from datamodules.synthetic.volume import CaptureVolume, capture_volume

__all__ = [
    "ACTIVITY_MOTIONS",
    "BODY",
    "FILE_3D",
    "FPS",
    "H36M_ACTIONS",
    "H36M_COINCIDENT_JOINTS",
    "H36M_SUBJECTS",
    "HEIGHT_RANGE",
    "MOTION_KINDS",
    "SIZES",
    "SIZES_3DHP",
    "SYNTHETIC_2D_SOURCES",
    "UNIVERSAL_HEIGHT",
    "ActionSpec",
    "BodyShape",
    "CaptureVolume",
    "DetectorNoise",
    "JointAngles",
    "MotionPlan",
    "NoisyKeypoints",
    "Recording",
    "SynthesisSummary",
    "SynthesisSummary3DHP",
    "SyntheticSize",
    "SyntheticSize3DHP",
    "axis_rotation",
    "body_shape",
    "capture_volume",
    "corrupt_keypoints",
    "ensure_synthetic_3dhp",
    "ensure_synthetic_h36m",
    "file_2d",
    "forward_kinematics",
    "generate_subject_motions",
    "h36m_keypoints_2d",
    "joint_rotation",
    "pose_motion",
    "project_to_pixels",
    "simulate_motion",
    "simulate_recording",
    "subject_body",
    "synthesize_3dhp",
    "synthesize_h36m",
    "synthetic_3dhp_files",
    "synthetic_size",
    "synthetic_size_3dhp",
    "take_names",
    "to_layout",
    "train_rig",
]
