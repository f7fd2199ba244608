"""Writers of the MPI-INF-3DHP file formats, the inverses of :mod:`datamodules.mpi_inf_3dhp_files`.

They let tests and the synthetic dataset produce files that the real readers load unchanged
(reference/datasets.md B1, B2, B6):

- :func:`save_annot_mat`: a training ``annot.mat`` (MATLAB v5, cell arrays of per-camera matrices);
- :func:`save_calibration`: a Skeletool ``camera.calibration`` text file;
- :func:`save_test_annotations`: a test ``annot_data.mat`` (MATLAB v7.3, i.e. HDF5 behind a 512-byte header);
- :func:`save_preprocessed_npz`: ``data_train_3dhp.npz`` / ``data_test_3dhp.npz`` (P-STMO layout).

Inputs use the files' units (pixels, millimetres). Every writer fills a temporary file beside ``path`` and
renames it into place, so ``path`` is either absent, the previous file, or the complete new one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from components.atomic import atomic_destination
from components.camera import CameraParameters
from components.errors import InputError
from components.skeleton import MPI_INF_3DHP_17, MPI_INF_3DHP_28

MATLAB_73_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 1970 HDF5 schema 1.00 ."
"""Text of a v7.3 MAT-file header (fixed date, so identical contents give identical files)."""
USERBLOCK_SIZE = 512
"""MATLAB v7.3 files start with a 512-byte user block; the HDF5 data follows it."""
CALIBRATION_HEADER = "Skeletool Camera Calibration File V1.0"


def _write_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    On any error (or interruption) the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    with atomic_destination(path) as temporary, open(temporary, "w+b") as file:
        write(file)
    return path


def _checked(name: str, array: np.ndarray, shape: tuple[int | None, ...]) -> np.ndarray:
    """``array`` as float64 after checking its shape (``None`` matches any length)."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape, strict=True)):
        expected = tuple("any" if s is None else s for s in shape)
        raise InputError(f"{name} has shape {array.shape}, expected {expected}")
    return array


# --------------------------------------------------------------------------- annot.mat (training, MATLAB v5)


def save_annot_mat(
    path: str | Path,
    annot2: np.ndarray,
    annot3: np.ndarray,
    univ_annot3: np.ndarray,
    frames: np.ndarray | None = None,
    extra_rows: int = 0,
) -> Path:
    """Write a training ``annot.mat`` (MATLAB v5), the file ``load_annot_mat`` reads.

    Each field becomes a ``cameras x 1`` cell array of ``(F + extra_rows, 56)`` (``annot2``) or
    ``(F + extra_rows, 84)`` matrices, one row per frame with the joints interleaved ``x1 y1 x2 y2 ...``.
    ``frames`` is stored as an ``(F, 1)`` column and ``cameras`` as the row ``0 .. cameras - 1``. The file is
    not compressed: zlib saves only ~10 % on full-precision coordinates and takes ~70 times longer.

    Args:
        path: the file to write.
        annot2: ``(cameras, F, 28, 2)`` pixels.
        annot3, univ_annot3: ``(cameras, F, 28, 3)`` mm, in each camera's frame.
        frames: ``(F,)`` frame numbers; default ``0 .. F - 1``.
        extra_rows: zero rows appended to every matrix, because the real arrays run past the frame count and
            readers must cut them.

    Raises:
        ValueError: on inconsistent shapes or a negative ``extra_rows``.
    """
    from scipy.io import savemat

    joints = MPI_INF_3DHP_28.num_joints
    annot2 = _checked("annot2", annot2, (None, None, joints, 2))
    cameras, count = annot2.shape[:2]
    fields = {
        "annot2": annot2,
        "annot3": _checked("annot3", annot3, (cameras, count, joints, 3)),
        "univ_annot3": _checked("univ_annot3", univ_annot3, (cameras, count, joints, 3)),
    }
    if extra_rows < 0:
        raise InputError(f"extra_rows must be >= 0, got {extra_rows}")
    frames = np.arange(count) if frames is None else np.asarray(frames).reshape(-1)
    if len(frames) != count:
        raise InputError(f"frames has {len(frames)} values, expected one per frame ({count})")
    contents: dict[str, np.ndarray] = {name: _cells(array, extra_rows) for name, array in fields.items()}
    contents["frames"] = frames.astype(np.float64)[:, None]
    contents["cameras"] = np.arange(cameras, dtype=np.float64)[None, :]
    return _write_atomically(path, lambda file: savemat(file, contents))


def _cells(views: np.ndarray, extra_rows: int) -> np.ndarray:
    """``(cameras, F, joints, dims)`` -> a ``cameras x 1`` cell array of ``(F + extra_rows, joints * dims)``."""
    cameras, count = views.shape[:2]
    rows = np.zeros((cameras, count + extra_rows, views.shape[2] * views.shape[3]))
    rows[:, :count] = views.reshape(cameras, count, -1)
    cells = np.empty((cameras, 1), dtype=object)
    for camera in range(cameras):  # an object array takes its matrices one by one
        cells[camera, 0] = rows[camera]
    return cells


# --------------------------------------------------------------------------- camera.calibration (Skeletool)


def _number(value: float) -> str:
    """The shortest text that reads back as exactly ``value`` (``1`` rather than ``1.0``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _numbers(values: np.ndarray) -> str:
    return " ".join(_number(v) for v in np.asarray(values).reshape(-1)) + " "


def skeletool_matrices(camera: CameraParameters) -> tuple[np.ndarray, np.ndarray]:
    """The ``intrinsic`` and ``extrinsic`` 4x4 matrices of one camera in a Skeletool file.

    Returns:
        ``(4, 4)`` intrinsics (fx, fy, cx, cy in pixels) and ``(4, 4)`` world -> camera transform
        ``x_cam = R x_world + t`` with ``t`` in mm.
    """
    from scipy.spatial.transform import Rotation

    (fx, fy), (cx, cy) = camera.focal_length, camera.center
    intrinsic = np.array([[fx, 0, cx, 0], [0, fy, cy, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64)
    # The orientation rotates camera -> world, so its transpose rotates world -> camera; t = -R * centre.
    rotation = Rotation.from_quat(camera.orientation, scalar_first=True).as_matrix().T
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = rotation
    extrinsic[:3, 3] = -rotation @ np.asarray(camera.translation, dtype=np.float64) * 1000.0  # m -> mm
    return intrinsic, extrinsic


def calibration_text(cameras: Sequence[CameraParameters], sensor_mm: tuple[float, float] = (10.0, 10.0)) -> str:
    """The Skeletool text of ``cameras`` (layout in :func:`save_calibration`); names are the cameras' ids.

    Raises:
        ValueError: a camera has lens distortion (the format stores ``radial 0``) or a name with spaces.
    """
    lines = [CALIBRATION_HEADER]
    for camera in cameras:
        if any(camera.radial_distortion) or any(camera.tangential_distortion):
            raise InputError(f"camera {camera.id!r} has lens distortion, which a Skeletool file cannot store")
        if not camera.id or len(camera.id.split()) != 1:
            raise InputError(f"camera name {camera.id!r} must be one word")
        intrinsic, extrinsic = skeletool_matrices(camera)
        lines += [
            f"name          {camera.id}",
            f"  sensor      {_number(sensor_mm[0])} {_number(sensor_mm[1])}",
            f"  size        {camera.width} {camera.height}",
            "  animated    0",
            f"  intrinsic   {_numbers(intrinsic)}",
            f"  extrinsic   {_numbers(extrinsic)}",
            "  radial      0",
        ]
    return "\n".join(lines) + "\n"


def save_calibration(
    path: str | Path, cameras: Sequence[CameraParameters], sensor_mm: tuple[float, float] = (10.0, 10.0)
) -> Path:
    """Write a Skeletool ``camera.calibration`` that reads back as ``cameras``.

    Layout: the header ``Skeletool Camera Calibration File V1.0``, then per camera ``name <id>``,
    ``sensor <w_mm> <h_mm>``, ``size <W> <H>``, ``animated 0``, ``intrinsic`` (16 numbers, 4x4 row-major,
    fx = K[0,0], cx = K[0,2], fy = K[1,1], cy = K[1,2]), ``extrinsic`` (16 numbers, 4x4 row-major world ->
    camera, translation in mm) and ``radial 0``. Numbers are written in full precision, so
    ``load_calibration(path)[i].camera_parameters()`` equals ``cameras[i]`` up to rounding (~1e-15).

    Raises:
        ValueError: see :func:`calibration_text`.
    """
    text = calibration_text(cameras, sensor_mm).encode()
    return _write_atomically(path, lambda file: file.write(text))


# --------------------------------------------------------------------------- TS*/annot_data.mat (MATLAB v7.3)


def _matlab_header() -> bytes:
    """The 128-byte MAT-file header: 116 bytes of text, 8 of subsystem offset, version 0x0200, ``IM`` (little
    endian)."""
    return MATLAB_73_HEADER.ljust(116, b" ") + bytes(8) + b"\x00\x02" + b"IM"


def save_test_annotations(
    path: str | Path,
    annot2: np.ndarray,
    annot3: np.ndarray,
    univ_annot3: np.ndarray,
    valid: np.ndarray,
    activity: np.ndarray,
    bb_crop: np.ndarray | None = None,
) -> Path:
    """Write a test ``annot_data.mat`` (MATLAB v7.3), the file ``load_test_annotations`` reads.

    The file is HDF5 behind a 512-byte user block that starts with the MATLAB text header. h5py shapes are
    MATLAB's transposed: ``annot2`` ``(F, 1, 17, 2)``, ``annot3`` / ``univ_annot3`` ``(F, 1, 17, 3)``,
    ``valid_frame`` / ``activity_annotation`` ``(F, 1)``, ``bb_crop`` ``(F, 1, 4)``; all are MATLAB doubles.

    Args:
        annot2: ``(F, 17, 2)`` pixels. annot3, univ_annot3: ``(F, 17, 3)`` mm, camera frame.
        valid: ``(F,)`` bool or 0/1, the frames the official evaluation uses.
        activity: ``(F,)`` activity numbers 1..7.
        bb_crop: ``(F, 4)`` pixels; default the box ``x_min, y_min, x_max, y_max`` of ``annot2`` (the readers
            ignore it).

    Raises:
        ValueError: on inconsistent shapes.
    """
    import h5py

    joints = MPI_INF_3DHP_17.num_joints
    annot2 = _checked("annot2", annot2, (None, joints, 2))
    count = len(annot2)
    if bb_crop is None:
        bb_crop = np.concatenate([annot2.min(axis=1), annot2.max(axis=1)], axis=-1)
    fields = {
        "activity_annotation": _checked("activity", activity, (count,))[:, None],
        "annot2": annot2[:, None],
        "annot3": _checked("annot3", annot3, (count, joints, 3))[:, None],
        "bb_crop": _checked("bb_crop", bb_crop, (count, 4))[:, None],
        "univ_annot3": _checked("univ_annot3", univ_annot3, (count, joints, 3))[:, None],
        "valid_frame": _checked("valid", valid, (count,))[:, None],
    }

    def write(file: BinaryIO) -> None:
        with h5py.File(file, "w", userblock_size=USERBLOCK_SIZE) as mat:
            mat.create_group("#refs#")
            for name, array in fields.items():
                mat.create_dataset(name, data=array).attrs["MATLAB_class"] = np.bytes_("double")
        file.seek(0)
        file.write(_matlab_header())

    return _write_atomically(path, write)


# --------------------------------------------------------------------------- P-STMO preprocessed npz


def save_preprocessed_npz(path: str | Path, data: Mapping[str, object]) -> Path:
    """Write ``data_train_3dhp.npz`` or ``data_test_3dhp.npz``: key ``data`` holding the pickled dict ``data``.

    - train: ``"S1 Seq1"`` -> ``[{camera string: {"data_2d": (F, 17, 2) px, "data_3d": (F, 17, 3) mm}}, fps]``;
    - test: ``"TS1"`` -> ``{"data_2d", "data_3d", "valid": (F,)}``.

    Raises:
        TypeError: ``data`` is not a mapping.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"data must map sequence names to entries, got {type(data).__name__}")
    payload = dict(data)
    return _write_atomically(path, lambda file: np.savez_compressed(file, data=payload))
