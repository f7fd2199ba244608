"""Readers of users' 2D detection files, each returning :class:`Detections` (frames, persons, joints, 3).

Formats:

- VideoPose3D custom-video ``.npz`` (``prepare_data_2d_custom.py``): key ``positions_2d`` holds a pickled dict
  ``{video: {"custom": [array (frames, joints, 2 or 3)]}}`` (one array per camera; the first is read) and key
  ``metadata`` a pickled dict with ``layout_name``, ``num_joints``, ``keypoints_symmetry`` and
  ``video_metadata: {video: {"w": int, "h": int}}``. Reading pickles can run code: read only trusted files.
- COCO keypoint results ``.json``: a list of ``{"image_id", "category_id", "keypoints": [x, y, v] * 17,
  "score"}``; several entries per image are several persons. The frame of an entry is its ``image_id`` minus
  ``first_image_id`` (0 by default), so frames without any entry stay in place, empty. AlphaPose writes the same
  list with the image's file name as ``image_id`` (``"0.jpg"``): the last number in the name is the frame.
- MMPose prediction ``.json`` (``--save-predictions``, ``MMPoseInferencer``): ``{"meta_info", "instance_info":
  [{"frame_id", "instances": [{"keypoints": [[x, y], ...], "keypoint_scores": [...], "bbox", "bbox_score"}]}]}``,
  or the ``instance_info`` list alone; frames are numbered from the first ``frame_id``.
- An OpenPose-style folder of one JSON file per frame (``--write_json``: ``<name>_<12-digit frame>_keypoints.json``;
  other tools name them otherwise, e.g. ``cam01.0000.json``): the last number in a file's name is its frame.
- Plain arrays: ``.npy`` ``(frames, joints, 2 or 3)`` or ``.csv`` with one row of ``joints * 2`` or
  ``joints * 3`` numbers per frame (an optional header row); one person, layout given by the caller.

Coordinates are pixels. A joint a detector did not find is NaN; COCO and OpenPose write it as the triple
``(0, 0, 0)``, which is turned into NaN. When a format has no confidence, every joint gets score 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.errors import InputError, MissingFileError, MissingKeyError, PoseliftError
from components.skeleton import COCO_17, LAYOUTS, Skeleton, layout
from datamodules.file_checks import ZIP_SIGNATURES, existing, read_json, read_text

LAST_NUMBER = re.compile(r"(\d+)(?=\D*$)")
FORMATS = ("videopose3d", "coco_json", "mmpose_json", "openpose", "npy", "csv")


@dataclass(frozen=True)
class Detections:
    """2D detections of one video.

    Attributes:
        name: video name (npz key, file stem or folder name).
        keypoints: ``(frames, persons, joints, 3)`` float32 ``[x, y, score]`` in pixels; NaN marks a missing
            joint, and a person slot NaN everywhere means fewer people in that frame.
        layout: name of the joint layout in :data:`components.skeleton.LAYOUTS`.
        width, height: frame size in pixels, ``None`` when the file does not say and none was given.
    """

    name: str
    keypoints: np.ndarray
    layout: str
    width: float | None = None
    height: float | None = None

    def __post_init__(self) -> None:
        joints = self.skeleton.num_joints
        if self.keypoints.ndim != 4 or self.keypoints.shape[2:] != (joints, 3):
            raise InputError(
                f"detections {self.name!r}: keypoints have shape {self.keypoints.shape}, expected "
                f"(frames, persons, {joints}, 3) for layout {self.layout!r}"
            )

    @property
    def skeleton(self) -> Skeleton:
        return layout(self.layout)


def read_detections(
    path: str | Path,
    format: str = "auto",
    layout: str | None = None,
    width: float | None = None,
    height: float | None = None,
    num_frames: int | None = None,
    first_image_id: int = 0,
) -> list[Detections]:
    """Read any supported detection file; ``format="auto"`` chooses by suffix (a folder is OpenPose-style; a
    ``.json`` file is MMPose predictions or COCO/AlphaPose results, told apart by its content).

    ``layout`` is required for ``.npy``/``.csv``, defaults to ``coco`` for COCO/MMPose JSON and to
    ``openpose_body25`` for OpenPose, and must match the file's own metadata for VideoPose3D ``.npz``.
    ``width``/``height`` fill in the frame size where the file does not give it. ``num_frames`` (the video's
    frame count) keeps trailing frames without any detection, and ``first_image_id`` is the COCO ``image_id``
    of the first frame.
    """
    path = Path(path)
    if format == "auto":
        format = _guess_format(path)
    if format == "json":
        format = "mmpose_json" if _is_mmpose(read_json(existing(path))) else "coco_json"
    if format == "videopose3d":
        found = read_videopose3d_npz(path, width=width, height=height)
        if layout is not None and any(d.layout != layout for d in found):
            raise InputError(f"{path}: metadata says layout {found[0].layout!r}, but layout {layout!r} was given")
        return found
    if format == "coco_json":
        return [read_coco_json(path, width, height, num_frames, first_image_id, layout or COCO_17.name)]
    if format == "mmpose_json":
        return [read_mmpose_json(path, width, height, num_frames, layout or COCO_17.name)]
    if format == "openpose":
        return [read_openpose_folder(path, layout=layout or "openpose_body25", width=width, height=height)]
    if format in ("npy", "csv"):
        if layout is None:
            raise InputError(f"{path}: a layout is required for plain {format} arrays (one of {sorted(LAYOUTS)})")
        reader = read_npy if format == "npy" else read_csv
        return [reader(path, layout=layout, width=width, height=height)]
    raise InputError(f"{path}: unknown detection format {format!r}; expected 'auto' or one of {FORMATS}")


def _guess_format(path: Path) -> str:
    if path.is_dir():
        return "openpose"
    by_suffix = {".npz": "videopose3d", ".json": "json", ".npy": "npy", ".csv": "csv"}
    if path.suffix.lower() not in by_suffix:
        raise InputError(
            f"{path}: cannot tell the detection format from suffix {path.suffix!r}; expected a folder of "
            f"OpenPose JSON or one of {sorted(by_suffix)}, or pass format= one of {FORMATS}"
        )
    return by_suffix[path.suffix.lower()]


# --------------------------------------------------------------------------- shared helpers


def _float32(values: object, where: str) -> np.ndarray:
    """``values`` as a float32 array; an error naming ``where`` for what is not a number or not finite."""
    try:
        with np.errstate(over="ignore"):  # out-of-range values become inf, refused below
            array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected numbers, got {str(values)[:80]}") from None
    if np.isinf(array).any():
        at = tuple(int(i) for i in np.argwhere(np.isinf(array))[0])
        value = np.asarray(values, dtype=np.float64)[at]
        raise InputError(f"{where}: value {value} at index {list(at)} is infinite or beyond float32 range")
    return array


def _with_scores(points: np.ndarray, where: str) -> np.ndarray:
    """``(..., 2 or 3)`` -> ``(..., 3)`` float32; x, y alone get score 1 (the detector claimed them)."""
    points = _float32(points, where)
    if points.shape[-1] == 3:
        return points
    return np.concatenate([points, np.ones_like(points[..., :1])], axis=-1)


def _zero_triples_to_nan(points: np.ndarray) -> np.ndarray:
    """COCO and OpenPose write an undetected joint as ``(0, 0, 0)``; make it NaN so no code trusts it."""
    return np.where((points == 0).all(-1, keepdims=True), np.nan, points)


def _scatter_persons(frame_of: np.ndarray, persons: np.ndarray, num_frames: int) -> np.ndarray:
    """Place ``(N, joints, 3)`` detections into ``(num_frames, persons, joints, 3)``, NaN padded.

    ``frame_of`` is the ``(N,)`` frame index of each detection; within a frame, slots keep the input order.
    """
    order = np.argsort(frame_of, kind="stable")
    frame_of, persons = frame_of[order], persons[order]
    first = np.searchsorted(frame_of, frame_of, side="left")  # first detection of the same frame
    slot = np.arange(len(frame_of)) - first
    width = int(slot.max()) + 1 if len(slot) else 0
    out = np.full((num_frames, width, *persons.shape[1:]), np.nan, dtype=np.float32)
    out[frame_of, slot] = persons
    return out


def _triples(values: object, joints: int, where: str) -> np.ndarray:
    """A flat ``[x, y, score] * joints`` list -> ``(joints, 3)`` float32, with an error naming ``where``."""
    array = _float32(values, where) if isinstance(values, list) else None
    if array is None or array.shape != (3 * joints,):
        count = len(values) if isinstance(values, list) else type(values).__name__
        raise InputError(f"{where}: expected a list of {3 * joints} numbers ({joints} joints x 3), got {count}")
    return array.reshape(joints, 3)


# --------------------------------------------------------------------------- VideoPose3D npz


def read_videopose3d_npz(path: str | Path, width: float | None = None, height: float | None = None) -> list[Detections]:
    """Read a VideoPose3D custom-video ``.npz``: one single-person :class:`Detections` per video.

    ``allow_pickle=True`` is required because both keys are pickled dicts; only read files you trust.
    The layout comes from ``metadata["layout_name"]`` (``coco`` for Detectron2 output) and the frame size
    from ``metadata["video_metadata"][video]``, else from ``width``/``height``.
    """
    path = existing(path)
    with open(path, "rb") as handle:  # before anything is unpickled: a git-LFS pointer or text is no archive
        if handle.read(4) not in ZIP_SIGNATURES:
            raise InputError(f"{path}: not a NumPy .npz archive (no zip signature; e.g. a git-LFS pointer file)")
    try:  # the handle is ours: np.load leaks its own when the archive is damaged
        with open(path, "rb") as handle, np.load(handle, allow_pickle=True) as archive:
            missing = [key for key in ("positions_2d", "metadata") if key not in archive.files]
            if missing:
                raise MissingKeyError(f"{path}: missing key(s) {missing} (found {archive.files})")
            positions, metadata = (_unpickled_dict(path, archive, key) for key in ("positions_2d", "metadata"))
    except PoseliftError:
        raise
    except Exception as error:  # zipfile, zlib and pickle report a damaged archive with many exception types
        raise InputError(f"{path}: damaged .npz archive ({type(error).__name__}: {str(error)[:120]})") from None
    skeleton = _metadata_layout(path, metadata)
    sizes = metadata.get("video_metadata", {})
    return [
        Detections(
            str(video),
            _custom_keypoints(path, video, entry, skeleton)[:, None],
            skeleton.name,
            *_frame_size(path, video, sizes.get(video), width, height),
        )
        for video, entry in positions.items()
    ]


def _frame_size(path: Path, video: str, size: object, width: float | None, height: float | None) -> tuple:
    """``(width, height)`` from ``video_metadata[video]`` (``{"w", "h"}``), else the given fallbacks."""
    if size is None:
        return width, height
    if not isinstance(size, dict) or not {"w", "h"} <= size.keys():
        raise InputError(f"{path}: metadata['video_metadata'][{video!r}] must be a dict with 'w' and 'h', got {size}")
    return float(size["w"]), float(size["h"])


def _unpickled_dict(path: Path, archive: np.lib.npyio.NpzFile, key: str) -> dict:
    value = archive[key]
    value = value.item() if value.dtype == object and value.shape == () else value
    if not isinstance(value, dict):
        raise InputError(f"{path}: {key!r} must be a pickled dict (a 0-d object array), got {type(value).__name__}")
    return value


def _metadata_layout(path: Path, metadata: dict) -> Skeleton:
    if "layout_name" not in metadata:
        raise MissingKeyError(f"{path}: metadata has no 'layout_name' (keys {sorted(metadata)})")
    name = metadata["layout_name"]
    if name not in LAYOUTS:
        raise InputError(f"{path}: metadata layout_name {name!r} is not a known layout ({sorted(LAYOUTS)})")
    skeleton = LAYOUTS[name]
    if metadata.get("num_joints", skeleton.num_joints) != skeleton.num_joints:
        raise InputError(
            f"{path}: metadata num_joints {metadata['num_joints']} disagrees with layout {name!r} "
            f"({skeleton.num_joints} joints)"
        )
    return skeleton


def _custom_keypoints(path: Path, video: str, entry: object, skeleton: Skeleton) -> np.ndarray:
    """``positions_2d[video]`` -> ``(frames, joints, 3)`` float32 from the first camera of ``"custom"``."""
    cameras = entry.get("custom") if isinstance(entry, dict) else None
    if not isinstance(cameras, list | tuple) or not cameras:
        raise InputError(f"{path}: positions_2d[{video!r}] must be a dict with a non-empty list under 'custom'")
    array = np.asarray(cameras[0])
    if array.ndim != 3 or array.shape[1] != skeleton.num_joints or array.shape[2] not in (2, 3):
        raise InputError(
            f"{path}: positions_2d[{video!r}]['custom'][0] has shape {array.shape}, expected "
            f"(frames, {skeleton.num_joints}, 2 or 3) for layout {skeleton.name!r}"
        )
    return _with_scores(array, f"{path}: positions_2d[{video!r}]['custom'][0]")


# --------------------------------------------------------------------------- COCO keypoint results


def read_coco_json(
    path: str | Path,
    width: float | None = None,
    height: float | None = None,
    frames: int | None = None,
    first_image_id: int = 0,
    layout: str = COCO_17.name,
) -> Detections:
    """Read COCO keypoint results (a JSON list of per-person entries) into one :class:`Detections`.

    The frame of an entry is its ``image_id`` minus ``first_image_id``; an ``image_id`` that is a file name
    (AlphaPose: ``"12.jpg"``) gives the last number in it. Frames without any entry stay present, empty, up to
    the last one with an entry, or to ``frames`` when given (the video's length, for trailing empty frames).
    Within a frame, persons are ordered by descending ``score``. Entries whose ``category_id`` is not 1
    (person) are skipped. The per-joint ``v`` is used as the joint's score.
    """
    path = Path(path)
    entries = read_json(existing(path))
    if not isinstance(entries, list):
        raise InputError(f"{path}: expected a JSON list of detections, got {type(entries).__name__}")
    joints = _known_layout(path, layout).num_joints
    image_ids, scores, persons = [], [], []
    for number, entry in enumerate(entries):  # JSON parsing is per entry
        where = f"{path}: entry {number}"
        if not isinstance(entry, dict) or "image_id" not in entry or "keypoints" not in entry:
            raise InputError(f"{where}: expected an object with 'image_id' and 'keypoints'")
        if entry.get("category_id", 1) != 1:
            continue
        image_ids.append(_frame_number(entry["image_id"], f"{where} 'image_id'"))
        scores.append(_number(entry.get("score", 1.0), f"{where} 'score'"))
        persons.append(_triples(entry["keypoints"], joints, f"{where} (image_id {entry['image_id']}) 'keypoints'"))
    image_ids, scores = np.asarray(image_ids, dtype=np.int64), np.asarray(scores)
    persons = np.asarray(persons, dtype=np.float32).reshape(-1, joints, 3)
    frame_of, num_frames = _frames_of(path, image_ids - first_image_id, frames, "image_id", first_image_id)
    by_score = np.argsort(-scores, kind="stable")  # the scatter keeps this order within each frame
    keypoints = _scatter_persons(frame_of[by_score], _zero_triples_to_nan(persons[by_score]), num_frames)
    return Detections(path.stem, keypoints, layout, width, height)


def _frame_number(value: object, where: str) -> int:
    """An integer id, or the last number in a file name such as ``"frame_000012.jpg"``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(f"{where}: expected an integer or a file name with a frame number, got {value!r}")
    if isinstance(value, int):
        return value
    match = LAST_NUMBER.search(Path(value).stem) or LAST_NUMBER.search(value)
    if match is None:
        raise InputError(f"{where}: {value!r} holds no frame number")
    return int(match.group(1))


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _frames_of(path: Path, frame_of: np.ndarray, frames: int | None, what: str, first: int) -> tuple[np.ndarray, int]:
    """Frame index per entry and the frame count: up to the last entry, or ``frames`` (see
    :func:`read_coco_json`)."""
    before = frame_of[frame_of < 0]
    if len(before):
        raise InputError(f"{path}: {what} {int(before[0]) + first} comes before the first frame's {what} {first}")
    if frames is None:
        return frame_of, int(frame_of.max()) + 1 if len(frame_of) else 0
    outside = frame_of[frame_of >= frames]
    if len(outside):
        raise InputError(f"{path}: {what} {int(outside[0]) + first} is outside the {frames} frames starting at {first}")
    return frame_of, frames


# --------------------------------------------------------------------------- MMPose predictions


def _is_mmpose(content: object) -> bool:
    """MMPose's predictions: ``{"instance_info": [...]}`` or a list of ``{"frame_id", "instances"}``."""
    if isinstance(content, dict):
        return "instance_info" in content
    return isinstance(content, list) and bool(content) and isinstance(content[0], dict) and "instances" in content[0]


def read_mmpose_json(
    path: str | Path,
    width: float | None = None,
    height: float | None = None,
    frames: int | None = None,
    layout: str = COCO_17.name,
) -> Detections:
    """Read MMPose predictions of a video (see the module docstring) into one :class:`Detections`.

    Frame ``i`` is ``frame_id`` ``first + i`` with ``first`` the smallest ``frame_id`` (MMPose writes an entry
    for every frame, empty or not; its demo counts from 1); ``frames`` keeps trailing empty frames. Within a
    frame, persons are ordered by descending ``bbox_score`` (else mean keypoint score).
    """
    path = Path(path)
    content = read_json(existing(path))
    frames_info = content.get("instance_info") if isinstance(content, dict) else content
    if not isinstance(frames_info, list) or not all(isinstance(f, dict) and "instances" in f for f in frames_info):
        raise InputError(f"{path}: expected MMPose predictions: 'instance_info', a list of {{frame_id, instances}}")
    joints = _known_layout(path, layout).num_joints
    frame_ids = [_frame_number(f.get("frame_id", index), f"{path}: frame {index} 'frame_id'")
                 for index, f in enumerate(frames_info)]  # fmt: skip
    first = min(frame_ids, default=0)
    frame_of, scores, persons = [], [], []
    for frame_id, info in zip(frame_ids, frames_info, strict=True):  # JSON parsing is per frame
        for index, instance in enumerate(info["instances"] or []):
            where = f"{path}: frame_id {frame_id} instance {index}"
            person = _mmpose_instance(instance, joints, where)
            frame_of.append(frame_id - first)
            score = instance.get("bbox_score", np.nanmean(person[:, 2]))
            scores.append(float(np.mean(score)) if isinstance(score, list) else _number(score, f"{where} 'bbox_score'"))
            persons.append(person)
    last = max(frame_ids, default=first - 1) - first  # frames without instances count too
    frame_of, num_frames = _frames_of(path, np.asarray(frame_of, dtype=np.int64), frames or last + 1, "frame_id", first)
    persons = np.asarray(persons, dtype=np.float32).reshape(-1, joints, 3)
    by_score = np.argsort(-np.asarray(scores), kind="stable")
    keypoints = _scatter_persons(frame_of[by_score], persons[by_score], num_frames)
    return Detections(path.stem, keypoints, layout, width, height)


def _mmpose_instance(instance: object, joints: int, where: str) -> np.ndarray:
    """``{"keypoints": [[x, y], ...], "keypoint_scores": [...]}`` -> ``(joints, 3)`` float32."""
    if not isinstance(instance, dict) or "keypoints" not in instance:
        raise InputError(f"{where}: expected an object with 'keypoints'")
    points = _float32(instance["keypoints"], f"{where} 'keypoints'")
    scores = _float32(instance.get("keypoint_scores", np.ones(len(points))), f"{where} 'keypoint_scores'")
    if points.shape != (joints, 2) or scores.shape != (joints,):
        raise InputError(
            f"{where}: expected {joints} keypoints [x, y] and {joints} scores, got shapes {points.shape} and "
            f"{scores.shape}"
        )
    return np.concatenate([points, scores[:, None]], axis=-1)


# --------------------------------------------------------------------------- OpenPose JSON folder


def read_openpose_folder(
    folder: str | Path, layout: str = "openpose_body25", width: float | None = None, height: float | None = None
) -> Detections:
    """Read an OpenPose-style folder of one JSON file per frame into one :class:`Detections`.

    A file's frame is the last number in its name (``clip_000000000012_keypoints.json``, ``cam01.0012.json``);
    frame ``i`` is number ``first + i``, so a number with no file becomes an empty frame, like a file whose
    ``people`` is empty.
    Each person's ``pose_keypoints_2d`` must hold ``3 * joints`` numbers of ``layout``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: not a folder of OpenPose JSON files")
    joints = _known_layout(folder, layout).num_joints
    files = _numbered_files(folder)
    numbers = np.asarray(sorted(files), dtype=np.int64)
    frame_of, persons = [], []
    for number in numbers:  # JSON parsing is per file
        path = files[int(number)]
        for index, person in enumerate(_people(path)):
            frame_of.append(number - numbers[0])
            where = f"{path}: person {index} 'pose_keypoints_2d' for layout {layout!r}"
            persons.append(_triples(person.get("pose_keypoints_2d"), joints, where))
    persons = np.asarray(persons, dtype=np.float32).reshape(-1, joints, 3)
    num_frames = int(numbers[-1] - numbers[0]) + 1
    keypoints = _scatter_persons(np.asarray(frame_of, dtype=np.int64), _zero_triples_to_nan(persons), num_frames)
    return Detections(folder.name, keypoints, layout, width, height)


def _numbered_files(folder: Path) -> dict[int, Path]:
    """Frame number (the last number in a JSON file's name) -> file, refusing two files with one number (two
    videos in one folder)."""
    files: dict[int, Path] = {}
    for path in sorted(folder.glob("*.json")):
        match = LAST_NUMBER.search(path.stem)
        if match is None:
            continue
        number = int(match.group(1))
        if number in files:
            raise InputError(f"{folder}: files {files[number].name} and {path.name} both hold frame {number}")
        files[number] = path
    if not files:
        raise MissingFileError(
            f"{folder}: no JSON files whose name ends in a frame number (e.g. clip_000000000000_keypoints.json)"
        )
    return files


def _people(path: Path) -> list[dict]:
    content = read_json(existing(path))
    people = content.get("people") if isinstance(content, dict) else None
    if not isinstance(people, list) or not all(isinstance(person, dict) for person in people):
        raise InputError(f"{path}: expected an object whose key 'people' is a list of person objects")
    return people


# --------------------------------------------------------------------------- plain arrays


def read_npy(path: str | Path, layout: str, width: float | None = None, height: float | None = None) -> Detections:
    """Read ``(frames, joints, 2 or 3)`` pixels from ``.npy`` as one person (score 1 if absent)."""
    path = existing(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:  # numpy reports a damaged header or short data so
        raise InputError(f"{path}: damaged .npy file ({str(error)[:120]})") from None
    skeleton = _known_layout(path, layout)
    if array.ndim != 3 or array.shape[1] != skeleton.num_joints or array.shape[2] not in (2, 3):
        raise InputError(
            f"{path}: array has shape {array.shape}, expected (frames, {skeleton.num_joints}, 2 or 3) "
            f"for layout {layout!r}"
        )
    return Detections(path.stem, _with_scores(array, str(path))[:, None], layout, width, height)


def read_csv(path: str | Path, layout: str, width: float | None = None, height: float | None = None) -> Detections:
    """Read a ``.csv`` with one row per frame of ``joints * 2`` (x, y) or ``joints * 3`` (x, y, score) numbers.

    A first row that is not all numbers is a header and skipped. Write a missing value as ``nan``.
    """
    path = Path(path)
    skeleton = _known_layout(path, layout)
    lines = read_text(existing(path)).splitlines()
    header = int(bool(lines) and not _all_numbers(lines[0]))
    try:
        rows = np.loadtxt(lines[header:], delimiter=",", ndmin=2, dtype=np.float32)
    except ValueError as error:
        raise InputError(f"{path}: not a table of numbers ({error})") from None
    channels = {2 * skeleton.num_joints: 2, 3 * skeleton.num_joints: 3}.get(rows.shape[1])
    if channels is None:
        raise InputError(
            f"{path}: rows have {rows.shape[1]} values, expected {2 * skeleton.num_joints} (x, y) or "
            f"{3 * skeleton.num_joints} (x, y, score) for the {skeleton.num_joints} joints of layout {layout!r}"
        )
    points = rows.reshape(len(rows), skeleton.num_joints, channels)
    return Detections(path.stem, _with_scores(points, str(path))[:, None], layout, width, height)


def _all_numbers(line: str) -> bool:
    try:
        [float(field) for field in line.split(",")]
    except ValueError:
        return False
    return True


def _known_layout(path: Path, name: str) -> Skeleton:
    if name not in LAYOUTS:
        raise InputError(f"{path}: unknown layout {name!r} (known: {sorted(LAYOUTS)})")
    return LAYOUTS[name]
