"""Readers of the MPI-INF-3DHP file formats (reference/datasets.md B1, B2, B6). No sampling logic.

- ``S*/Seq*/annot.mat`` (MATLAB v5): :func:`load_annot_mat`, 28-joint annotations of the 14 training cameras.
- ``S*/Seq*/camera.calibration`` (Skeletool text): :func:`load_calibration`.
- ``TS*/annot_data.mat`` (MATLAB v7.3 = HDF5): :func:`load_test_annotations`, the 17 evaluation joints.
- ``data_train_3dhp.npz`` / ``data_test_3dhp.npz`` (P-STMO / PoseFormerV2 layout): :func:`load_preprocessed_npz`.

Readers return numpy arrays in the files' units (pixels, millimetres) and joint orders (``MPI_INF_3DHP_28`` for
``annot.mat``, ``MPI_INF_3DHP_17`` elsewhere); conversion to metres and other layouts happens in the caller.
Every error names the file, the key or field, and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.camera import CameraParameters
from components.errors import InputError, MissingKeyError
from components.skeleton import MPI_INF_3DHP_17, MPI_INF_3DHP_28
from datamodules.file_checks import brief, existing, load_pickled_dict

# --------------------------------------------------------------------------- dataset facts (datasets.md B1-B5)

TRAIN_RECORDINGS: dict[tuple[str, str], tuple[int, float]] = {
    ("S1", "Seq1"): (6416, 25.0),
    ("S1", "Seq2"): (12430, 50.0),
    ("S2", "Seq1"): (6502, 25.0),
    ("S2", "Seq2"): (6081, 25.0),
    ("S3", "Seq1"): (12488, 50.0),
    ("S3", "Seq2"): (12283, 50.0),
    ("S4", "Seq1"): (6171, 25.0),
    ("S4", "Seq2"): (6675, 25.0),
    ("S5", "Seq1"): (12820, 50.0),
    ("S5", "Seq2"): (12312, 50.0),
    ("S6", "Seq1"): (6188, 25.0),
    ("S6", "Seq2"): (6145, 25.0),
    ("S7", "Seq1"): (6239, 25.0),
    ("S7", "Seq2"): (6320, 25.0),
    ("S8", "Seq1"): (6468, 25.0),
    ("S8", "Seq2"): (6054, 25.0),
}
"""Frame count and frame rate of each training recording ``(subject, sequence)``."""

NUM_TRAIN_CAMERAS = 14
TRAIN_CAMERAS: tuple[int, ...] = (0, 1, 2, 4, 5, 6, 7, 8)
"""The eight non-ceiling training cameras used by the common lifting protocols (11-13 look down from the ceiling)."""

TEST_SEQUENCES: dict[str, int] = {"TS1": 6151, "TS2": 6080, "TS3": 5838, "TS4": 6007, "TS5": 320, "TS6": 492}
"""Frame count of each test sequence."""

TEST_FPS: dict[str, float] = {"TS1": 25.0, "TS2": 25.0, "TS3": 25.0, "TS4": 25.0, "TS5": 50.0, "TS6": 50.0}
"""Frame rate assumed per test sequence (not in the annotation files; only used when resampling frame rates)."""

ACTIVITIES: tuple[str, ...] = (
    "Standing/Walking",
    "Exercising",
    "Sitting",
    "Reaching/Crouching",
    "On The Floor",
    "Sports",
    "Miscellaneous",
)
"""Names of the test-set activities 1..7 (``activity_annotation``), in order."""


def _test_camera(
    name: str, sensor: tuple[float, float], image: tuple[int, int], focal_mm: float, **kw
) -> CameraParameters:
    """Pixel intrinsics from a ``tc camera calibration`` entry: millimetres on the sensor scaled to the image."""
    (sensor_w, sensor_h), (width, height) = sensor, image
    aspect, offset = kw.get("pixel_aspect", 1.0), kw.get("center_offset", (0.0, 0.0))
    return CameraParameters(
        id=name,
        width=width,
        height=height,
        focal_length=(focal_mm / sensor_w * width, focal_mm * aspect / sensor_h * height),
        center=((sensor_w / 2 + offset[0]) / sensor_w * width, (sensor_h / 2 + offset[1]) / sensor_h * height),
        radial_distortion=kw.get("radial", (0.0, 0.0, 0.0)),
        tangential_distortion=kw.get("tangential", (0.0, 0.0)),
    )


_STUDIO = _test_camera(
    "studio", (10.0, 10.0), (2048, 2048), 7.32506, pixel_aspect=1.00044, center_offset=(-0.0323, 0.0929)
)
# OpenCV's (k1, k2, p1, p2, k3); the tangential terms of the Human3.6M model used here differ slightly from
# OpenCV's, which matters only for reprojection losses on the outdoor sequences.
_OUTDOOR = _test_camera(
    "outdoor",
    (10.0, 5.625),
    (1920, 1080),
    8.770747,
    pixel_aspect=0.993236,
    center_offset=(-0.1049, 0.1049),
    radial=(-0.27686, 0.13113, -0.04932),
    tangential=(-0.00036, -0.00115),
)
TEST_CAMERAS: dict[str, CameraParameters] = {
    name: (_STUDIO if name in ("TS1", "TS2", "TS3", "TS4") else _OUTDOOR) for name in TEST_SEQUENCES
}
"""Camera of each test sequence from the official ``ts1-4cameras.calib`` / ``ts5-6cameras.calib`` (camera frame =
world frame: the test annotations are already in camera coordinates)."""

ANNOT_MAT, CALIBRATION = "annot.mat", "camera.calibration"
TEST_SET_FOLDER, TEST_ANNOTATIONS = "mpi_inf_3dhp_test_set", "annot_data.mat"
"""File and folder names of the released dataset (``S1/Seq1/annot.mat``, ``.../TS1/annot_data.mat``)."""

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ANNOT_MAT_FIELDS = ("annot2", "annot3", "univ_annot3")
TEST_ANNOT_FIELDS = ("annot2", "annot3", "univ_annot3", "valid_frame", "activity_annotation")


# --------------------------------------------------------------------------- annot.mat (training, MATLAB v5)


@dataclass(frozen=True)
class AnnotMat:
    """Contents of one training ``annot.mat``, cut to ``len(frames)`` frames.

    Attributes:
        annot2: ``(cameras, F, 28, 2)`` float64 pixels.
        annot3: ``(cameras, F, 28, 3)`` float64 mm, in each camera's frame.
        univ_annot3: ``(cameras, F, 28, 3)`` float64 mm, rescaled to the "universal" skeleton height.
        frames: ``(F,)`` int64 frame numbers as stored.
        cameras: ``(cameras,)`` int64 camera numbers as stored (0..13).
    """

    annot2: np.ndarray
    annot3: np.ndarray
    univ_annot3: np.ndarray
    frames: np.ndarray
    cameras: np.ndarray


def load_annot_mat(path: str | Path, num_frames: int | None = None) -> AnnotMat:
    """Read a training ``annot.mat`` (MATLAB v5) into per-camera arrays in the 28-joint layout.

    ``annot2``, ``annot3`` and ``univ_annot3`` are 14x1 cell arrays of ``(F', 56)`` / ``(F', 84)`` matrices
    (one row per frame, joints interleaved ``x1 y1 x2 y2 ...``); ``F'`` may exceed the frame count, so every
    array is cut to ``num_frames`` (default: the length of ``frames``).

    Args:
        path: the ``annot.mat`` file.
        num_frames: frame count to keep, e.g. from the published table; default ``len(frames)``.

    Raises:
        KeyError: a field is missing. ValueError: a field has the wrong type, shape or too few frames.
    """
    from scipy.io import loadmat

    path = existing(path)
    try:
        mat = loadmat(path)
    except Exception as error:  # v7.3 files raise NotImplementedError; damaged ones OSError, ValueError, ...
        raise InputError(f"{path}: cannot read as a MATLAB v5 annot.mat ({brief(error)})") from error
    for field in (*ANNOT_MAT_FIELDS, "frames", "cameras"):
        if field not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise MissingKeyError(f"{path}: missing field {field!r} (found {found})")
    frames = np.asarray(mat["frames"]).reshape(-1).astype(np.int64)
    cameras = np.asarray(mat["cameras"]).reshape(-1).astype(np.int64)
    count = len(frames) if num_frames is None else int(num_frames)
    arrays = {
        field: _annot_cells(path, field, mat[field], dims, len(cameras), count)
        for field, dims in (("annot2", 2), ("annot3", 3), ("univ_annot3", 3))
    }
    return AnnotMat(frames=frames[:count], cameras=cameras, **arrays)


def _annot_cells(path: Path, field: str, cells: np.ndarray, dims: int, num_cameras: int, count: int) -> np.ndarray:
    """``(cameras, count, 28, dims)`` from a cameras x 1 cell array of ``(F', 28 * dims)`` matrices."""
    joints = MPI_INF_3DHP_28.num_joints
    if not isinstance(cells, np.ndarray) or cells.dtype != object:
        raise InputError(f"{path}: field {field!r} must be a cell array (one matrix per camera), got {type(cells)}")
    cells = cells.reshape(-1)
    if len(cells) != num_cameras:
        raise InputError(f"{path}: field {field!r} has {len(cells)} cells, expected one per camera ({num_cameras})")
    views = []
    for camera, cell in enumerate(cells):
        matrix = np.asarray(cell, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != joints * dims:
            raise InputError(
                f"{path}: {field}{{{camera + 1}}} has shape {matrix.shape}, expected (frames, {joints * dims}) "
                f"= {joints} joints x {dims}"
            )
        if matrix.shape[0] < count:
            raise InputError(f"{path}: {field}{{{camera + 1}}} has {matrix.shape[0]} frames, expected >= {count}")
        views.append(matrix[:count].reshape(count, joints, dims))
    return np.stack(views)


# --------------------------------------------------------------------------- camera.calibration (Skeletool)


@dataclass(frozen=True)
class SkeletoolCamera:
    """One camera of a Skeletool ``camera.calibration`` file.

    Attributes:
        name: the camera's name (``"0"`` .. ``"13"``).
        sensor_size: ``(2,)`` sensor width, height in mm.
        width, height: image size in pixels.
        focal_length: ``(fx, fy)`` pixels. center: ``(cx, cy)`` pixels.
        rotation: ``(3, 3)`` world -> camera rotation ``R`` (``x_cam = R x_world + t``).
        translation: ``(3,)`` ``t`` of that transform, metres (the file stores mm).
    """

    name: str
    sensor_size: tuple[float, float]
    width: int
    height: int
    focal_length: tuple[float, float]
    center: tuple[float, float]
    rotation: np.ndarray
    translation: np.ndarray

    def camera_parameters(self) -> CameraParameters:
        """The framework's :class:`CameraParameters`: quaternion camera -> world and the camera centre, metres.

        Distortion is zero (the training calibration stores ``radial 0``).
        """
        from scipy.spatial.transform import Rotation

        # x_world = R^T (x_cam - t): orientation R^T, centre -R^T t.
        orientation = Rotation.from_matrix(self.rotation.T).as_quat(scalar_first=True)
        if orientation[0] < 0:
            orientation = -orientation
        centre = -self.rotation.T @ self.translation
        return CameraParameters(
            id=self.name,
            width=self.width,
            height=self.height,
            focal_length=self.focal_length,
            center=self.center,
            radial_distortion=(0.0, 0.0, 0.0),
            tangential_distortion=(0.0, 0.0),
            orientation=tuple(float(v) for v in orientation),
            translation=tuple(float(v) for v in centre),
        )


_CALIBRATION_FIELDS = {"sensor": 2, "size": 2, "animated": 1, "intrinsic": 16, "extrinsic": 16, "radial": 1}


def load_calibration(path: str | Path) -> list[SkeletoolCamera]:
    """Read a Skeletool ``camera.calibration`` text file.

    Layout: a header line (``Skeletool Camera Calibration File V1.0``), then per camera ``name <n>``,
    ``sensor <w_mm> <h_mm>``, ``size <W> <H>``, ``animated 0``, ``intrinsic`` (16 numbers, 4x4 row-major
    ``K`` with fx = K[0,0], cx = K[0,2], fy = K[1,1], cy = K[1,2]), ``extrinsic`` (16 numbers, 4x4 row-major
    world -> camera, translation in mm) and ``radial 0``.

    Returns:
        The cameras in file order.

    Raises:
        ValueError: naming the line and field that do not fit the layout.
    """
    path = existing(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a Skeletool camera.calibration text file ({brief(error)})") from None
    lines = [(number, line.split()) for number, line in enumerate(text.splitlines(), start=1)]
    lines = [(number, words) for number, words in lines if words]
    if not lines or lines[0][1][0].lower() != "skeletool":
        raise InputError(f"{path}: expected the header 'Skeletool Camera Calibration File V1.0' on the first line")
    records: list[dict] = []
    for number, (key, *values) in lines[1:]:
        if key == "name":
            if len(values) != 1:
                raise InputError(f"{path}:{number}: 'name' takes 1 value, got {len(values)}")
            records.append({"name": values[0]})
            continue
        if not records:
            raise InputError(f"{path}:{number}: field {key!r} before the first 'name' line")
        if key not in _CALIBRATION_FIELDS:
            raise InputError(
                f"{path}:{number}: unknown field {key!r}, expected one of {['name', *_CALIBRATION_FIELDS]}"
            )
        if len(values) != _CALIBRATION_FIELDS[key]:
            raise InputError(f"{path}:{number}: {key!r} takes {_CALIBRATION_FIELDS[key]} numbers, got {len(values)}")
        try:
            records[-1][key] = np.array(values, dtype=np.float64)
        except ValueError:
            raise InputError(f"{path}:{number}: {key!r} values are not numbers: {values}") from None
    if not records:
        raise InputError(f"{path}: no cameras ('name' lines) found")
    return [_skeletool_camera(path, record) for record in records]


def _skeletool_camera(path: Path, record: dict) -> SkeletoolCamera:
    missing = [f for f in ("sensor", "size", "intrinsic", "extrinsic") if f not in record]
    if missing:
        raise InputError(f"{path}: camera {record['name']!r} lacks field(s) {missing}")
    intrinsic = record["intrinsic"].reshape(4, 4)
    extrinsic = record["extrinsic"].reshape(4, 4)
    width, height = (int(v) for v in record["size"])
    return SkeletoolCamera(
        name=record["name"],
        sensor_size=(float(record["sensor"][0]), float(record["sensor"][1])),
        width=width,
        height=height,
        focal_length=(float(intrinsic[0, 0]), float(intrinsic[1, 1])),
        center=(float(intrinsic[0, 2]), float(intrinsic[1, 2])),
        rotation=extrinsic[:3, :3].copy(),
        translation=extrinsic[:3, 3] / 1000.0,  # mm -> m
    )


# --------------------------------------------------------------------------- TS*/annot_data.mat (MATLAB v7.3)


@dataclass(frozen=True)
class TestAnnotations:
    """Contents of one test sequence's ``annot_data.mat``, in the 17-joint ``MPI_INF_3DHP_17`` order.

    Attributes:
        annot2: ``(F, 17, 2)`` float64 pixels.
        annot3: ``(F, 17, 3)`` float64 mm, camera frame.
        univ_annot3: ``(F, 17, 3)`` float64 mm, universal skeleton (the official evaluation target).
        valid: ``(F,)`` bool, the frames the official evaluation uses.
        activity: ``(F,)`` int64 activity 1..7 (Standing/Walking .. Miscellaneous).
    """

    __test__ = False  # not a pytest test class despite its name

    annot2: np.ndarray
    annot3: np.ndarray
    univ_annot3: np.ndarray
    valid: np.ndarray
    activity: np.ndarray


def _hdf5_signature_offset(path: Path) -> int | None:
    """Where the HDF5 signature sits (0, 512, 1024, ...), or None: MATLAB v7.3 puts it after a 512-byte header."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        offset = 0
        while offset + len(HDF5_SIGNATURE) <= size:
            handle.seek(offset)
            if handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return offset
            offset = 512 if offset == 0 else offset * 2
    return None


def load_test_annotations(path: str | Path) -> TestAnnotations:
    """Read a test sequence's ``annot_data.mat`` (MATLAB v7.3, i.e. HDF5, read with h5py).

    h5py sees MATLAB's arrays transposed: ``annot2`` ``(F, 1, 17, 2)``, ``annot3`` / ``univ_annot3``
    ``(F, 1, 17, 3)`` mm, ``valid_frame`` ``(F, 1)``, ``activity_annotation`` ``(F, 1)``.

    Raises:
        ValueError: the file is not HDF5 (e.g. a MATLAB v5 file), or a field has the wrong shape.
        KeyError: a field is missing.
    """
    import h5py

    path = existing(path)
    if _hdf5_signature_offset(path) is None:
        with path.open("rb") as handle:
            header = handle.read(116).split(b"\x00")[0].decode("latin-1").strip()
        raise InputError(
            f"{path}: expected a MATLAB v7.3 (HDF5) file, but it has no HDF5 signature "
            f"(header: {header[:60]!r}); re-save it with save(..., '-v7.3') or pass the right file"
        )
    try:
        with h5py.File(path, "r") as mat:
            for field in TEST_ANNOT_FIELDS:
                if field not in mat:
                    raise MissingKeyError(f"{path}: missing field {field!r} (found {sorted(mat.keys())})")
            annot2 = _test_joints(path, "annot2", mat["annot2"][()], 2)
            annot3 = _test_joints(path, "annot3", mat["annot3"][()], 3)
            univ_annot3 = _test_joints(path, "univ_annot3", mat["univ_annot3"][()], 3)
            valid = _test_column(path, "valid_frame", mat["valid_frame"][()], len(annot2)) != 0
            activity = _test_column(path, "activity_annotation", mat["activity_annotation"][()], len(annot2))
    except OSError as error:  # h5py's report of a truncated or damaged HDF5 file
        raise InputError(f"{path}: damaged MATLAB v7.3 (HDF5) annot_data.mat ({brief(error)})") from error
    for field, array in (("annot3", annot3), ("univ_annot3", univ_annot3)):
        if len(array) != len(annot2):
            raise InputError(f"{path}: {field!r} has {len(array)} frames, 'annot2' has {len(annot2)}")
    return TestAnnotations(annot2, annot3, univ_annot3, valid, activity.astype(np.int64))


def _test_joints(path: Path, field: str, array: np.ndarray, dims: int) -> np.ndarray:
    """``(F, 17, dims)`` float64 from h5py's ``(F, 1, 17, dims)``."""
    joints = MPI_INF_3DHP_17.num_joints
    if array.ndim != 4 or array.shape[1] != 1 or array.shape[2:] != (joints, dims):
        raise InputError(f"{path}: field {field!r} has shape {array.shape}, expected (frames, 1, {joints}, {dims})")
    return array[:, 0].astype(np.float64)


def _test_column(path: Path, field: str, array: np.ndarray, frames: int) -> np.ndarray:
    """``(F,)`` from h5py's ``(F, 1)``."""
    if array.ndim != 2 or array.shape != (frames, 1):
        raise InputError(f"{path}: field {field!r} has shape {array.shape}, expected ({frames}, 1)")
    return array[:, 0]


# --------------------------------------------------------------------------- P-STMO preprocessed npz


@dataclass(frozen=True)
class PreprocessedView:
    """One camera of a training recording, or one test sequence, from a preprocessed npz.

    Attributes:
        data_2d: ``(F, 17, 2)`` float64 pixels. data_3d: ``(F, 17, 3)`` float64 mm (``univ_annot3``).
        valid: ``(F,)`` bool evaluation frames (test files); None for training views.
    """

    data_2d: np.ndarray
    data_3d: np.ndarray
    valid: np.ndarray | None = None


@dataclass(frozen=True)
class PreprocessedRecording:
    """A training recording (``"S1 Seq1"``): its camera views keyed by camera string, and its fps."""

    views: dict[str, PreprocessedView]
    fps: float


def load_preprocessed_npz(path: str | Path) -> dict[str, PreprocessedRecording | PreprocessedView]:
    """Read ``data_train_3dhp.npz`` or ``data_test_3dhp.npz`` (P-STMO / PoseFormerV2 layout), key ``data``.

    - train: ``"S1 Seq1"`` -> ``[{cam_str: {"data_2d", "data_3d"}}, fps]`` -> :class:`PreprocessedRecording`;
    - test: ``"TS1"`` .. -> ``{"data_2d", "data_3d", "valid"}`` -> :class:`PreprocessedView` with ``valid``.

    Joints are in the 17-joint ``MPI_INF_3DHP_17`` order.
    """
    path = existing(path)
    data = load_pickled_dict(path, "data", "sequence -> entry")
    return {str(name): _preprocessed_entry(path, str(name), entry) for name, entry in data.items()}


def _preprocessed_entry(path: Path, name: str, entry) -> PreprocessedRecording | PreprocessedView:
    if isinstance(entry, dict):
        return _preprocessed_view(path, f"data[{name!r}]", entry, test=True)
    if isinstance(entry, list | tuple | np.ndarray) and len(entry) == 2 and isinstance(entry[0], dict):
        views = {
            str(camera): _preprocessed_view(path, f"data[{name!r}][0][{camera!r}]", view, test=False)
            for camera, view in entry[0].items()
        }
        return PreprocessedRecording(views=views, fps=float(entry[1]))
    raise InputError(
        f"{path}: data[{name!r}] must be a test dict {{'data_2d', 'data_3d', 'valid'}} or a training pair "
        f"[{{camera: {{'data_2d', 'data_3d'}}}}, fps], got {type(entry).__name__}"
    )


def _preprocessed_view(path: Path, where: str, entry, test: bool) -> PreprocessedView:
    if not isinstance(entry, dict):
        raise InputError(f"{path}: {where} must be a dict with 'data_2d' and 'data_3d', got {type(entry).__name__}")
    fields = ("data_2d", "data_3d", "valid") if test else ("data_2d", "data_3d")
    missing = [f for f in fields if f not in entry]
    if missing:
        raise MissingKeyError(f"{path}: {where} lacks {missing} (found {sorted(entry)})")
    data_2d = _npz_joints(path, f"{where}['data_2d']", entry["data_2d"], 2)
    data_3d = _npz_joints(path, f"{where}['data_3d']", entry["data_3d"], 3)
    if len(data_2d) != len(data_3d):
        raise InputError(f"{path}: {where} has {len(data_2d)} 2D frames but {len(data_3d)} 3D frames")
    valid = None
    if test:
        valid = np.asarray(entry["valid"]).reshape(-1)
        if len(valid) != len(data_3d):
            raise InputError(
                f"{path}: {where}['valid'] has {len(valid)} values, expected one per frame ({len(data_3d)})"
            )
        valid = valid != 0
    return PreprocessedView(data_2d, data_3d, valid)


def _npz_joints(path: Path, where: str, array, dims: int) -> np.ndarray:
    """``(F, 17, dims)`` float64; ``(F, 1, 17, dims)`` (one person axis, as in annot_data.mat) is accepted."""
    joints = MPI_INF_3DHP_17.num_joints
    array = np.asarray(array)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3 or array.shape[1:] != (joints, dims):
        raise InputError(f"{path}: {where} has shape {array.shape}, expected (frames, {joints}, {dims})")
    return array.astype(np.float64)
