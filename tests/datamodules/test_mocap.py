"""Real motion capture in: BVH/TRC readers, forward kinematics, mappings, placement, and the converted files
read back by Human36mDataModule; bad input stops with one line that names the file, line or joint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import cli
from components.camera import project_to_2d
from components.skeleton import H36M_17, H36M_32
from datamodules.camera_rig import CameraRigError, camera_from_json, camera_to_json, load_rig
from datamodules.human36m import Human36mDataModule
from datamodules.mocap.bvh import euler_matrices, forward_kinematics, read_bvh
from datamodules.mocap.clips import load_clip, resample, to_z_up
from datamodules.mocap.convert import MocapOptions, convert_mocap, find_entries
from datamodules.mocap.errors import MocapFormatError
from datamodules.mocap.mapping import BUILTIN, load_mapping
from datamodules.mocap.placement import VISIBLE, place_clip
from datamodules.mocap.trc import read_trc
from datamodules.synthetic.volume import capture_volume
from tests.datamodules.mocap_files import POSE2SIM_MARKERS, write_trc, write_walk_bvh

CHAIN = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
1 2 3 90 0 0 0 90 0
1 2 3 0 0 0 0 0 0
"""


def test_forward_kinematics_of_a_known_chain(tmp_path: Path):
    path = tmp_path / "chain.bvh"
    path.write_text(CHAIN)
    motion = read_bvh(path)
    assert motion.skeleton.names == ("Hips", "Chest", "Chest_end") and motion.fps == 2.0
    positions = forward_kinematics(motion, ["Hips", "Chest", "Chest_end"])
    # frame 0: the root turns 90 degrees about z, so the chest bone (0, 10, 0) points along -x; the chest's 90
    # degrees about x turns its own bone (0, 5, 0) into (0, 0, 5), which the root's turn leaves along z
    assert np.allclose(positions[0], [[1, 2, 3], [-9, 2, 3], [-9, 2, 8]])
    assert np.allclose(positions[1], [[1, 2, 3], [1, 12, 3], [1, 17, 3]])
    extended = forward_kinematics(motion, ["Chest"], np.array([[0.0, 5.0, 0.0]]))  # an offset in Chest's frame
    assert np.allclose(extended[:, 0], positions[:, 2])


def test_euler_matrices_compose_in_the_listed_order():
    angles = np.random.default_rng(0).uniform(-180, 180, (50, 3))
    for axes in ("ZXY", "XYZ", "YZX"):
        expected = Rotation.from_euler(axes, angles, degrees=True).as_matrix()  # upper case: intrinsic
        assert np.allclose(euler_matrices(angles, axes), expected, atol=1e-12)


def test_bvh_clip_is_mapped_scaled_turned_up_and_resampled(tmp_path: Path):
    clip = load_clip(write_walk_bvh(tmp_path / "walk.bvh", frames=91, fps=30.0))
    assert (clip.mapping, clip.units, clip.up, clip.source_fps) == ("lafan", "cm", "+y", pytest.approx(30.0))
    assert clip.world.shape == (151, 32, 3)  # 3 s at 50 fps, both ends included
    pelvis, head_top = H36M_32.index("pelvis"), H36M_32.index("head_top")
    # the root's first position (x 0, y 96, z 0 cm) in metres, y up turned to z up: (z, x, y)
    assert np.allclose(clip.world[0, pelvis], [0.0, 0.0, 0.96])
    assert np.allclose(clip.world[-1, pelvis, 0], 0.6 * 3.0)  # walking 60 cm/s along the file's z, now x
    # the head top is the head joint moved 0.18 m along the neck -> head bone (straight up at rest)
    assert np.all(clip.world[:, head_top, 2] > clip.world[:, H36M_32.index("head"), 2] + 0.11)


def test_resampling_and_axis_turns_are_exact():
    samples = np.arange(7.0)[:, None] * [1.0, 2.0, 3.0]  # 7 samples at 30 fps: 0.2 s
    assert np.allclose(resample(samples, 30.0, 50.0)[:, 0], np.arange(11) * 30 / 50)
    point = np.array([1.0, 2.0, 3.0])
    assert np.allclose(to_z_up(point, "+y"), [3.0, 1.0, 2.0]) and np.allclose(to_z_up(point, "+z"), point)
    for up in ("+x", "-x", "+y", "-y", "+z", "-z"):
        turn = np.stack([to_z_up(axis, up) for axis in np.eye(3)], axis=1)
        assert np.isclose(np.linalg.det(turn), 1.0)  # a rotation: no mirror image of the performer
        assert np.allclose(turn @ (np.eye(3)["xyz".index(up[1])] * (1 if up[0] == "+" else -1)), [0, 0, 1])


def test_trc_markers_make_the_mapped_joints(tmp_path: Path):
    written = write_trc(tmp_path / "stand.trc", frames=120, rate=60.0)
    markers = read_trc(tmp_path / "stand.trc")
    assert markers.names == tuple(POSE2SIM_MARKERS) and markers.rate == 60.0 and markers.units == "mm"
    assert np.allclose(markers.positions, written, atol=1e-5)
    clip = load_clip(tmp_path / "stand.trc")
    assert (clip.mapping, clip.units, clip.up) == ("pose2sim", "mm", "+z") and len(clip) == 100
    spine = H36M_32.index("spine")
    expected = (written[0, list(POSE2SIM_MARKERS).index("Hip")] + written[0, list(POSE2SIM_MARKERS).index("Neck")]) / 2
    assert np.allclose(clip.world[0, spine], expected / 1000)  # the mapping's mean of two markers


def test_user_mapping_yaml_and_detection(tmp_path: Path):
    mapping = tmp_path / "mine.yaml"
    entries = {joint: "Hip" for joint in H36M_17.joint_names} | {"head_top": {"weights": {"Head": 1.5, "Neck": -0.5}}}
    mapping.write_text(json.dumps(entries))  # JSON is YAML
    loaded = load_mapping(mapping)
    assert loaded.sources["head_top"].weights == (("Head", 1.5), ("Neck", -0.5))
    write_trc(tmp_path / "stand.trc")
    clip = load_clip(tmp_path / "stand.trc", loaded, up="+z")
    head, neck = (np.array(POSE2SIM_MARKERS[name]) for name in ("Head", "Neck"))
    sway = clip.world[0, H36M_32.index("pelvis")] - np.array(POSE2SIM_MARKERS["Hip"])
    assert np.allclose(clip.world[0, H36M_32.index("head_top")] - sway, 1.5 * head - 0.5 * neck)
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps(entries | {"pelvis": {"weights": {"Hip": 0.5}}}))
    with pytest.raises(MocapFormatError, match=r"bad.yaml: pelvis: weights must sum to 1"):
        load_mapping(bad)
    assert [name for name, m in BUILTIN.items() if not m.missing(["mixamorig:" + n for n in m.source_names])]


def test_placement_keeps_every_joint_in_view_and_every_frame_once(tmp_path: Path):
    from components.camera import h36m_cameras

    clip = load_clip(write_walk_bvh(tmp_path / "walk.bvh", frames=600, speed_cm=150.0))  # 20 s, 30 m of walking
    volume = capture_volume(h36m_cameras("S1"))
    pieces, left = place_clip(clip.world, volume, lambda s: np.random.default_rng(s), 50, True, "walk")
    assert len(pieces) > 1 and pieces[0].start == 0 and left == len(clip) - pieces[-1].stop < 50
    assert all(a.stop == b.start for a, b in zip(pieces, pieces[1:], strict=False))
    assert all(volume.sees(piece.world[:, VISIBLE]).all() for piece in pieces)
    for piece in pieces:  # a rigid motion of the clip: distances between joints are unchanged
        original = clip.world[piece.start : piece.stop]
        assert np.allclose(np.linalg.norm(piece.world - piece.world[:, :1], axis=-1),
                           np.linalg.norm(original - original[:, :1], axis=-1))  # fmt: skip


def test_converted_files_are_read_by_the_human36m_datamodule(tmp_path: Path):
    for subject in ("S1", "S9"):
        write_walk_bvh(tmp_path / "takes" / subject / "Walking.bvh", frames=150, seed=int(subject[1:]))
    write_trc(tmp_path / "takes" / "S1" / "Standing.trc")
    summary = convert_mocap(find_entries(tmp_path / "takes"), tmp_path / "set", MocapOptions(seed=3))
    assert summary.frames == {"S1": 249 + 100, "S9": 249} and summary.dropped_frames == 0
    data = Human36mDataModule(data_dir=str(tmp_path / "set"), train_subjects=["S1"], test_subjects=["S9"])
    data.setup("fit")
    assert {s.action for s in data.sequences["test"]} == {"Walking"}
    for sequence in data.sequences["train"] + data.sequences["test"]:  # the 2D is the projection of the 3D
        points = torch.from_numpy(sequence.poses_3d + sequence.trajectory).double()
        projected = project_to_2d(points, torch.from_numpy(sequence.intrinsics).double())
        assert np.allclose(projected.numpy(), sequence.keypoints_2d, atol=1e-5)
    noisy = Human36mDataModule(data_dir=str(tmp_path / "set"), source_2d="noisy", train_subjects=["S1"],
                               test_subjects=["S9"])  # fmt: skip
    noisy.setup("fit")
    error = np.abs(noisy.sequences["test"][0].keypoints_2d - data.sequences["test"][0].keypoints_2d).mean()
    assert 1e-3 < error < 0.05  # detector noise: a few pixels, not a different pose
    rig = json.loads((tmp_path / "set/cameras.json").read_text())["subjects"]
    assert [c["id"] for c in rig["S9"]] == ["54138969", "55011271", "58860488", "60457274"]


def test_random_rigs_point_everyday_cameras_at_the_centre():
    from components.camera import world_to_camera
    from datamodules.camera_rig import RandomRig, random_rig

    rigs = [random_rig(np.random.default_rng(seed)) for seed in range(25)]
    cameras = [camera for rig in rigs for camera in rig]
    assert random_rig(np.random.default_rng(3)) == rigs[3]  # seeded
    sizes = {(c.width, c.height) for c in cameras}
    assert sizes == {(1920, 1080), (1080, 1920)}  # portrait and landscape frames
    target = torch.tensor([[0.0, 0.0, RandomRig().target_height]])
    for camera in cameras:
        seen = world_to_camera(target, torch.tensor(camera.orientation), torch.tensor(camera.translation))[0]
        assert abs(seen[0]) < 1e-5 and abs(seen[1]) < 1e-5 and 3.0 <= seen[2] <= 6.0 / np.cos(np.radians(35))
        centre = np.asarray(camera.translation)
        tilt = np.degrees(np.arctan2(centre[2] - RandomRig().target_height, np.hypot(*centre[:2])))
        assert 0.0 <= tilt <= 35.0 + 1e-9
        roll = np.degrees(np.arcsin(_world_up_in_camera(camera)[0]))  # up leans sideways by the roll
        assert abs(roll) <= RandomRig().roll_degrees + 1e-6
    rolls = [abs(np.degrees(np.arcsin(_world_up_in_camera(c)[0]))) for c in cameras]
    assert max(rolls) > 3.0  # the cameras are really rolled


def _world_up_in_camera(camera) -> np.ndarray:
    from components.camera import world_to_camera

    ends = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) + torch.tensor(camera.translation)
    points = world_to_camera(ends.float(), torch.tensor(camera.orientation), torch.tensor(camera.translation))
    up = (points[1] - points[0]).numpy()
    return up / np.linalg.norm(up)


def test_random_cameras_give_each_subject_its_own_rig_read_back_by_the_datamodule(tmp_path: Path):
    for subject in ("S1", "S9"):
        write_walk_bvh(tmp_path / "takes" / subject / "Walking.bvh", frames=150, seed=int(subject[1:]))
    convert_mocap(find_entries(tmp_path / "takes"), tmp_path / "set", MocapOptions(seed=3, random_cameras=True))
    rig = json.loads((tmp_path / "set/cameras.json").read_text())["subjects"]
    assert [c["id"] for c in rig["S1"]] == ["random0", "random1", "random2", "random3"]
    assert rig["S1"] != rig["S9"]
    data = Human36mDataModule(data_dir=str(tmp_path / "set"), train_subjects=["S1"], test_subjects=["S9"])
    data.setup("fit")
    for sequence in data.sequences["train"] + data.sequences["test"]:  # the 2D is the projection of the 3D
        points = torch.from_numpy(sequence.poses_3d + sequence.trajectory).double()
        projected = project_to_2d(points, torch.from_numpy(sequence.intrinsics).double())
        assert np.allclose(projected.numpy(), sequence.keypoints_2d, atol=1e-5)
    with pytest.raises(ValueError, match="give either a camera rig or random cameras, not both"):
        convert_mocap(find_entries(tmp_path / "takes"), tmp_path / "other",
                      MocapOptions(random_cameras=True, rig=tuple(data_rig(rig["S1"]))))  # fmt: skip
    assert not (tmp_path / "other").exists()


def test_random_rigs_without_room_to_walk_are_drawn_again():
    from datamodules.camera_rig import random_rig
    from datamodules.mocap.convert import _roomy_random_rig
    from datamodules.synthetic.volume import capture_volume

    stream = [0, 2, 0xCA]  # its first rig's four views share no floor area
    with pytest.raises(ValueError, match="share no floor area"):
        capture_volume(random_rig(np.random.default_rng(stream)))
    rig = _roomy_random_rig(np.random.default_rng(stream), "S7")
    assert np.linalg.norm(capture_volume(rig).axes, axis=0).min() >= 0.3
    assert rig == _roomy_random_rig(np.random.default_rng(stream), "S7")  # still seeded
    with pytest.raises(ValueError, match="subject S7: no random camera rig out of 2 left 9.0 m to walk in"):
        _roomy_random_rig(np.random.default_rng(stream), "S7", min_axis=9.0, tries=2)


def data_rig(entries):
    return [camera_from_json(entry, "rig") for entry in entries]


def test_a_user_rig_is_used_and_checked(tmp_path: Path):
    from components.camera import h36m_cameras

    cameras = [camera_to_json(c) for c in h36m_cameras("S5")[:3]]
    (tmp_path / "rig.json").write_text(json.dumps({"cameras": cameras}))
    rig = load_rig(tmp_path / "rig.json")
    same = np.sum(np.array([c.orientation for c in rig]) * [c.orientation for c in h36m_cameras("S5")[:3]], axis=1)
    assert np.allclose(np.abs(same), 1.0)  # the same rotations (q and -q are one rotation)
    write_walk_bvh(tmp_path / "walk.bvh", frames=90)
    convert_mocap(find_entries(tmp_path / "walk.bvh", "alice"), tmp_path / "set", MocapOptions(rig=rig))
    data = Human36mDataModule(data_dir=str(tmp_path / "set"), train_subjects=["alice"], test_subjects=["alice"],
                              val_fraction=0)  # fmt: skip
    data.setup("test")
    assert len(data.sequences["test"]) == 3
    cameras[1]["rotation"][0][0] = 2.0
    with pytest.raises(CameraRigError, match=r"cameras\[1\]: rotation is not a rotation matrix"):
        camera_from_json(cameras[1], "cameras[1]")


BAD_INPUT = {
    "unknown joint set": ("odd.bvh", CHAIN, r"odd.bvh: unknown joint set \(Hips, Chest, Chest_end\); .*--mapping"),
    # the walk's hierarchy has 131 lines, so its first frame is on line 135
    "truncated BVH": ("cut.bvh", None, r"cut.bvh, line 185: truncated MOTION data: 90 frames of 69 channels"),
    "NaN channel": ("nan.bvh", None, r"nan.bvh, line 138: NaN/inf in channel Xrotation of joint 'LeftUpLeg'"),
    "TRC missing marker": ("gap.trc", None, r"gap.trc, line 17: marker 'RKnee' is missing in 1 of 120 frames"),
    "cannot be placed": ("huge.bvh", None, r"huge.bvh: frames 0-50 cannot be placed in view of cameras"),
}


def _bad_file(tmp_path: Path, case: str) -> Path:
    name, text, _ = BAD_INPUT[case]
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    elif case == "TRC missing marker":
        write_trc(path, gap=("RKnee", 10))
    else:
        write_walk_bvh(path, frames=90)
        lines = path.read_text().splitlines()
        if case == "truncated BVH":
            path.write_text("\n".join(lines[:-40]) + "\n" + lines[-40][:50])
        elif case == "NaN channel":
            assert lines[131] == "MOTION"
            values = lines[137].split()
            values[7] = "nan"  # LeftUpLeg's Xrotation in the 4th frame
            path.write_text("\n".join(lines[:137] + [" ".join(values)] + lines[138:]) + "\n")
    return path


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_motion_capture_stops_with_one_line_and_writes_nothing(case, tmp_path: Path, capsys):
    path = _bad_file(tmp_path, case)
    out = tmp_path / "out"
    units = ["--units", "m"] if case == "cannot be placed" else []  # centimetres read as metres: a 170 m performer
    status = cli.main(["synthesize", "--from-mocap", str(path), "--out", str(out), *units])
    message = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in message and message.startswith("poselift synthesize: error: ")
    assert __import__("re").search(BAD_INPUT[case][2], message), message
    assert not out.exists()


def test_a_rig_with_a_non_rotation_matrix_stops_before_anything_is_written(tmp_path: Path, capsys):
    from components.camera import h36m_cameras

    cameras = [camera_to_json(c) for c in h36m_cameras("S1")]
    cameras[2]["rotation"] = [[1, 0, 0], [0, 1, 0], [0, 0, -1]]  # a mirror, det -1
    (tmp_path / "rig.json").write_text(json.dumps({"cameras": cameras}))
    args = ["synthesize", "--from-mocap", str(write_walk_bvh(tmp_path / "walk.bvh")), "--out", str(tmp_path / "o")]
    assert cli.main([*args, "--rig", str(tmp_path / "rig.json")]) == 2
    message = capsys.readouterr().err
    assert "rig.json: cameras[2]: rotation is not a rotation matrix" in message and "det -1" in message
    assert not (tmp_path / "o").exists()


def test_real_lafan_takes_from_the_registry(cache_dir):
    """The real takes of the study set (fetched into the test cache), read and converted."""
    from benchmarks.real_motion import fetch_takes

    try:
        takes = fetch_takes(Path(cache_dir) / "downloads" / "bvhtools")
    except RuntimeError as error:
        pytest.skip(f"the package registry is out of reach: {error}")
    motion = read_bvh(takes["LafanB"])
    assert (len(motion), motion.skeleton.num_channels) == (3945, 69) and motion.fps == pytest.approx(30.0, rel=1e-4)
    clip = load_clip(takes["LafanB"], end=10.0)
    # 301 frames of 0.033333 s span 9.9999 s: 500 frames at 50 fps
    assert (clip.mapping, clip.units, clip.up, len(clip)) == ("lafan", "cm", "+y", 500)
    legs = np.linalg.norm(
        clip.world[:, H36M_32.index("left_knee")] - clip.world[:, H36M_32.index("left_ankle")], axis=-1
    )
    assert np.allclose(legs, 0.4237, atol=1e-3)  # a rigid shin: 42.37 cm in the file
