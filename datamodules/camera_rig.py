"""Camera rigs as JSON: the rig a user gives ``poselift synthesize --from-mocap``, and the ``cameras.json`` that
a converted dataset carries beside its npz files (which :class:`datamodules.human36m.Human36mDataModule` reads
in place of the built-in Human3.6M calibration).

A camera is a dictionary::

    {"id": "cam0", "width": 1920, "height": 1080,
     "focal_length": [1500.0, 1500.0], "center": [960.0, 540.0],          # pixels
     "rotation": [[1, 0, 0], [0, 0, -1], [0, 1, 0]],                      # world -> camera, proper rotation
     "translation": [0.0, -4.0, 1.6],                                     # camera centre in the world, metres
     "radial_distortion": [0, 0, 0], "tangential_distortion": [0, 0]}      # optional (Human3.6M model)

The world is z up with the floor at z = 0; camera space is x right, y down, z forward (docs/conventions.md).
A rig file is ``{"cameras": [camera, ...]}``; a dataset's ``cameras.json`` is ``{"subjects": {subject:
[camera, ...]}}`` with the cameras in the order of the npz files' per-camera lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from components.atomic import write_text_atomic
from components.camera import CameraParameters
from components.errors import InputError
from components.geometry import look_at, matrix_to_quaternion, quaternion_to_matrix
from datamodules.file_checks import read_json

RIG_FILE = "cameras.json"


class CameraRigError(InputError):
    """A rig or cameras file that cannot be used; the message names the file, camera and key."""


def camera_from_json(entry: Mapping, where: str) -> CameraParameters:
    """One camera dictionary (see the module docstring) -> :class:`CameraParameters`."""
    if not isinstance(entry, Mapping):
        raise CameraRigError(f"{where}: a camera is a dictionary, got {type(entry).__name__}")
    required = ("width", "height", "focal_length", "center", "rotation", "translation")
    missing = [key for key in required if key not in entry]
    if missing:
        raise CameraRigError(f"{where}: missing key(s) {missing} (a camera has {', '.join(required)})")
    rotation = _array(entry["rotation"], (3, 3), f"{where}: rotation")
    error, determinant = np.abs(rotation @ rotation.T - np.eye(3)).max(), np.linalg.det(rotation)
    if error > 1e-4 or determinant < 0:
        raise CameraRigError(
            f"{where}: rotation is not a rotation matrix (|R R^T - I| = {error:.2g}, det {determinant:.4g}; "
            "expected an orthonormal world -> camera matrix with det +1)"
        )
    width, height = int(entry["width"]), int(entry["height"])
    if width <= 0 or height <= 0:
        raise CameraRigError(f"{where}: width and height must be positive, got {width} x {height}")
    # camera -> world orientation: the inverse (transpose) of the world -> camera rotation
    orientation = matrix_to_quaternion(torch.from_numpy(rotation.T.copy())).numpy()
    return CameraParameters(
        id=str(entry.get("id", where)),
        width=width,
        height=height,
        focal_length=tuple(_array(entry["focal_length"], (2,), f"{where}: focal_length").tolist()),
        center=tuple(_array(entry["center"], (2,), f"{where}: center").tolist()),
        radial_distortion=tuple(_array(entry.get("radial_distortion", [0, 0, 0]), (3,), f"{where}").tolist()),
        tangential_distortion=tuple(_array(entry.get("tangential_distortion", [0, 0]), (2,), f"{where}").tolist()),
        orientation=tuple(float(v) for v in orientation),
        translation=tuple(_array(entry["translation"], (3,), f"{where}: translation").tolist()),
    )


def camera_to_json(camera: CameraParameters) -> dict:
    """The dictionary :func:`camera_from_json` reads back to the same camera."""
    to_world = quaternion_to_matrix(torch.tensor(camera.orientation, dtype=torch.float64)).numpy()
    return {
        "id": camera.id,
        "width": camera.width,
        "height": camera.height,
        "focal_length": list(camera.focal_length),
        "center": list(camera.center),
        "rotation": to_world.T.tolist(),
        "translation": list(camera.translation),
        "radial_distortion": list(camera.radial_distortion),
        "tangential_distortion": list(camera.tangential_distortion),
    }


@dataclass(frozen=True)
class RandomRig:
    """Ranges of :func:`random_rig`: everyday cameras (phones on tripods or in hands, webcams, room cameras)
    rather than the Human3.6M studio, so a lifter trained on them meets real videos' viewpoints and frames.

    Attributes:
        tilt_degrees: how far down the camera looks (0: level; phones filming people are often 20-35 down).
        roll_degrees: rotation about the viewing axis, either way.
        distance: metres from the capture centre along the floor.
        focal_35mm: 35 mm-equivalent focal length (phones: 24-28; the diagonal of 36 x 24 mm is the reference).
        portrait: probability of a portrait (1080 x 1920) rather than a landscape (1920 x 1080) frame.
        target_height: metres above the floor where the camera points (about a standing person's middle).
    """

    tilt_degrees: tuple[float, float] = (0.0, 35.0)
    roll_degrees: float = 6.0
    distance: tuple[float, float] = (3.0, 6.0)
    focal_35mm: tuple[float, float] = (22.0, 40.0)
    portrait: float = 0.5
    target_height: float = 0.9


def random_rig(
    rng: np.random.Generator, cameras: int = 4, ranges: RandomRig = RandomRig()
) -> tuple[CameraParameters, ...]:
    """``cameras`` cameras around the capture centre (the world origin, z up), each at a random azimuth,
    tilt, roll, distance, focal length and frame orientation within ``ranges``, looking at the centre at
    ``target_height``; the height follows from tilt and distance. No lens distortion."""
    azimuth = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(cameras) / cameras + rng.uniform(-0.3, 0.3, cameras)
    tilt = np.radians(rng.uniform(*ranges.tilt_degrees, cameras))
    roll = np.radians(rng.uniform(-ranges.roll_degrees, ranges.roll_degrees, cameras))
    distance = rng.uniform(*ranges.distance, cameras)
    focal = rng.uniform(*ranges.focal_35mm, cameras)
    portrait = rng.random(cameras) < ranges.portrait
    rig = []
    for i in range(cameras):  # a handful of cameras
        width, height = (1080, 1920) if portrait[i] else (1920, 1080)
        centre = np.array([np.cos(azimuth[i]), np.sin(azimuth[i]), 0.0]) * distance[i]
        centre[2] = ranges.target_height + distance[i] * np.tan(tilt[i])
        # world -> camera is the transpose of look_at; the drawn roll is a turn of the world -> camera rotation
        rotation = look_at(centre, np.array([0.0, 0.0, ranges.target_height]), -roll[i]).T
        pixels = focal[i] / np.hypot(36.0, 24.0) * np.hypot(width, height)  # from the 35 mm diagonal
        entry = {
            "id": f"random{i}",
            "width": width,
            "height": height,
            "focal_length": [pixels, pixels],
            "center": [width / 2, height / 2],
            "rotation": rotation.tolist(),
            "translation": centre.tolist(),
        }
        rig.append(camera_from_json(entry, f"random camera {i}"))
    return tuple(rig)


def _array(value, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CameraRigError(f"{where}: expected numbers of shape {shape}, got {value!r}") from None
    if array.shape != shape or not np.isfinite(array).all():
        raise CameraRigError(f"{where}: expected finite numbers of shape {shape}, got {value!r}")
    return array


def _read_json(path: Path) -> dict:
    content = read_json(path, CameraRigError)
    if not isinstance(content, dict):
        raise CameraRigError(f"{path}: expected a JSON object, got {type(content).__name__}")
    return content


def load_rig(path: str | Path) -> tuple[CameraParameters, ...]:
    """A rig file ``{"cameras": [...]}``."""
    path = Path(path)
    cameras = _read_json(path).get("cameras")
    if not isinstance(cameras, list) or not cameras:
        raise CameraRigError(f"{path}: expected a non-empty list under 'cameras'")
    return tuple(camera_from_json(entry, f"{path}: cameras[{i}]") for i, entry in enumerate(cameras))


def load_subject_cameras(path: str | Path) -> dict[str, tuple[CameraParameters, ...]]:
    """A dataset's ``cameras.json``: subject -> its cameras in the npz order."""
    path = Path(path)
    subjects = _read_json(path).get("subjects")
    if not isinstance(subjects, dict) or not subjects:
        raise CameraRigError(f"{path}: expected a non-empty object under 'subjects'")
    return {
        subject: tuple(camera_from_json(entry, f"{path}: subjects[{subject!r}][{i}]") for i, entry in enumerate(rig))
        for subject, rig in subjects.items()
    }


def save_subject_cameras(path: str | Path, cameras: Mapping[str, Sequence[CameraParameters]]) -> None:
    """Write a dataset's ``cameras.json`` atomically."""
    content = {"subjects": {subject: [camera_to_json(c) for c in rig] for subject, rig in cameras.items()}}
    write_text_atomic(path, json.dumps(content, indent=1) + "\n")
