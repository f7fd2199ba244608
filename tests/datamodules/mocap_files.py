"""Small motion-capture files in the real formats, for the mocap tests: a LAFAN-named BVH humanoid (cm, y up,
30 fps) doing a slow walk, and TRC files with Pose2Sim keypoint names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datamodules.mocap.bvh import format_bvh, skeleton_from_tree

ROTATE = ("Zrotation", "Xrotation", "Yrotation")
ROOT_CHANNELS = ("Xposition", "Yposition", "Zposition", *ROTATE)


def lafan_tree() -> list[tuple]:
    """A LAFAN1-named humanoid, y up, centimetres, bones along the axes of a standing T-less rest pose."""
    rows = [("Hips", None, (0, 95, 0), ROOT_CHANNELS)]
    for side, x in (("Left", 10.0), ("Right", -10.0)):
        rows += [
            (f"{side}UpLeg", "Hips", (x, -5, 0), ROTATE),
            (f"{side}Leg", f"{side}UpLeg", (0, -43, 0), ROTATE),
            (f"{side}Foot", f"{side}Leg", (0, -42, 0), ROTATE),
            (f"{side}Toe", f"{side}Foot", (0, -5, 14), ROTATE),
            (f"{side}Toe_end", f"{side}Toe", (0, 0, 0), ()),
        ]
    rows += [
        ("Spine", "Hips", (0, 7, 0), ROTATE),
        ("Spine1", "Spine", (0, 12, 0), ROTATE),
        ("Spine2", "Spine1", (0, 12, 0), ROTATE),
        ("Neck", "Spine2", (0, 25, 0), ROTATE),
        ("Head", "Neck", (0, 12, 0), ROTATE),
        ("Head_end", "Head", (0, 0, 0), ()),
    ]
    for side, x in (("Left", 1.0), ("Right", -1.0)):
        rows += [
            (f"{side}Shoulder", "Spine2", (x * 5, 20, 0), ROTATE),
            (f"{side}Arm", f"{side}Shoulder", (x * 13, 0, 0), ROTATE),
            (f"{side}ForeArm", f"{side}Arm", (0, -30, 0), ROTATE),
            (f"{side}Hand", f"{side}ForeArm", (0, -25, 0), ROTATE),
            (f"{side}Hand_end", f"{side}Hand", (0, 0, 0), ()),
        ]
    return rows


def walking_motion(frames: int, fps: float = 30.0, speed_cm: float = 60.0, seed: int = 0) -> np.ndarray:
    """``(frames, channels)`` of :func:`lafan_tree`: the root walks along +z at ``speed_cm`` per second while the
    legs and arms swing (degrees)."""
    skeleton = skeleton_from_tree(lafan_tree())
    rng = np.random.default_rng(seed)
    time = np.arange(frames) / fps
    motion = np.zeros((frames, skeleton.num_channels))
    motion[:, 0], motion[:, 1], motion[:, 2] = 2 * np.sin(time), 95 + np.cos(2 * time), speed_cm * time
    swing = 25 * np.sin(2 * np.pi * time + rng.uniform(0, 1))
    for name, sign in (("LeftUpLeg", 1), ("RightUpLeg", -1), ("LeftArm", -1), ("RightArm", 1)):
        motion[:, skeleton.first_channel[skeleton.index(name)] + 1] = sign * swing  # Xrotation
    for name in ("LeftLeg", "RightLeg"):
        motion[:, skeleton.first_channel[skeleton.index(name)] + 1] = 20 * (1 + np.sin(2 * np.pi * time))
    return motion


def write_walk_bvh(path: Path, frames: int = 90, fps: float = 30.0, **motion_options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    skeleton = skeleton_from_tree(lafan_tree())
    path.write_text(format_bvh(skeleton, 1 / fps, walking_motion(frames, fps, **motion_options)))
    return path


POSE2SIM_MARKERS = {
    "Hip": (0, 0, 0.95), "RHip": (-0.1, 0, 0.92), "RKnee": (-0.1, 0.02, 0.5), "RAnkle": (-0.1, 0, 0.08),
    "LHip": (0.1, 0, 0.92), "LKnee": (0.1, 0.02, 0.5), "LAnkle": (0.1, 0, 0.08), "Neck": (0, 0, 1.45),
    "Nose": (0, 0.1, 1.55), "Head": (0, 0, 1.72), "RShoulder": (-0.18, 0, 1.42), "RElbow": (-0.2, 0, 1.15),
    "RWrist": (-0.2, 0.05, 0.9), "LShoulder": (0.18, 0, 1.42), "LElbow": (0.2, 0, 1.15), "LWrist": (0.2, 0.05, 0.9),
}  # fmt: skip
"""A standing person's keypoints in metres, z up (Pose2Sim TRC names)."""


def write_trc(path: Path, frames: int = 120, rate: float = 60.0, gap: tuple[str, int] | None = None) -> np.ndarray:
    """A TRC of :data:`POSE2SIM_MARKERS` swaying, in millimetres; ``gap`` blanks one marker at one frame.
    Returns the ``(frames, markers, 3)`` millimetre positions written."""
    names = list(POSE2SIM_MARKERS)
    base = np.array(list(POSE2SIM_MARKERS.values())) * 1000
    sway = 50 * np.sin(np.arange(frames) / rate * 2 * np.pi)[:, None, None] * np.array([1.0, 0.5, 0.0])
    positions = base + sway
    header = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate:.2f}\t{rate:.2f}\t{frames}\t{len(names)}\tmm\t{rate:.2f}\t1\t{frames}",
        "Frame#\tTime\t" + "\t\t\t".join(names),
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, len(names) + 1)),
        "",
    ]
    rows = []
    for frame in range(frames):
        cells = [f"{v:.5f}" for v in positions[frame].reshape(-1)]
        if gap is not None and frame == gap[1]:
            marker = names.index(gap[0])
            cells[3 * marker : 3 * marker + 3] = ["", "", ""]
        rows.append("\t".join([str(frame + 1), f"{frame / rate:.5f}", *cells]))
    path.write_text("\n".join(header + rows) + "\n")
    return positions
