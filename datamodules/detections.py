"""Users' own 2D detections as a predict-only DataModule: one unlabeled sequence per video.

The pipeline per video (``components/detections.py`` explains each step):

1. read the file(s) with :func:`datamodules.detection_files.read_detections` (pixels + score, NaN = missing);
2. :func:`~components.detections.follow_person` picks one person per frame, in the detector's layout (its extra
   joints give better boxes), or with ``people="all"`` :func:`~components.detections.track_people` follows
   everyone, each track a video of its own;
3. :func:`~components.detections.convert_keypoints` converts the detector's layout to the model's
   ``input_layout`` by joint name (joints the detector lacks are derived, e.g. the pelvis from the hips);
4. :func:`~components.detections.fill_missing` interpolates missing or low-confidence joints over time;
5. the pixels are screen-normalised with the video's own width and height.

The videos form the ``test`` split, which ``predict_dataloader`` serves as whole sequences (every frame gets an
output, edge-padded for the receptive field). There are no 3D labels, so ``fit``, ``validate`` and ``test``
are refused. :attr:`DetectionsDataModule.videos` keeps what the prediction writer needs to write each video in
pixels again: the filled pixel keypoints, the masks of filled joints and empty frames, the followed person.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from components.camera import normalize_screen_coordinates
from components.detections import convert_keypoints, fill_missing, follow_person, track_people
from components.errors import InputError
from components.skeleton import Skeleton, layout
from datamodules.base import PoseDataModule
from datamodules.detection_files import Detections, read_detections
from datamodules.sequence import PoseSequence
from datamodules.video import FrameSource, is_frame_source, open_frames
from datamodules.video_detections import detect

PREDICT_SPLIT = "test"  # the split PoseDataModule.predict_dataloader serves
ACTION = "video"  # the one "action" of every video (evaluation protocols group sequences by action)
FEATURES = (2, 3)
DEFAULT_FPS = 50.0  # detection files rarely state a rate; Human3.6M's


@dataclass(frozen=True)
class VideoTrack:
    """One video's followed person, ready to lift and to write back in pixels.

    Attributes:
        name: the video's name (from the file; also the sequence's ``subject``).
        keypoints: ``(F, J_in, 3)`` float32 ``[x, y, score]`` in pixels, input layout, every x, y filled;
            score 0 where the detector gave none.
        filled: ``(F, J_in)`` bool, True where x, y were interpolated or held (missing or below ``min_score``).
        empty_frames: ``(F,)`` bool, True where the followed person had no usable joint (nobody detected).
        person: ``(F,)`` int64 index of the followed person among the frame's detections in the reader's order
            (COCO JSON: by descending score; OpenPose: the file's order), -1 where nobody.
        width, height: frame size in pixels.
        fps: frames per second.
        track: the person's track id (``people="all"``: 0 is the most prominent; ``"one"``: always 0).
        frames: the video or image folder the 2D was detected in (:class:`datamodules.video.FrameSource`), so
            the writer can draw over the original frames; None for detection files.
    """

    name: str
    keypoints: np.ndarray
    filled: np.ndarray
    empty_frames: np.ndarray
    person: np.ndarray
    width: float
    height: float
    fps: float
    track: int = 0
    frames: FrameSource | None = None

    def __len__(self) -> int:
        return len(self.keypoints)


class DetectionsDataModule(PoseDataModule):
    """Lift users' 2D detection files with any trained lifter (``poselift predict``).

    Args:
        path: a detection file or OpenPose folder (formats: ``datamodules/detection_files.py``), or a video
            (mp4, avi, mov, mkv, webm) or folder of images, which ``detector`` turns into COCO-17 keypoints
            (``datamodules/video_detections.py``; cached in ``detections_dir``).
        format: ``auto`` (by suffix; a folder is OpenPose-style; ``.json`` is told apart by content) or one of
            ``videopose3d``, ``coco_json`` (COCO / AlphaPose results), ``mmpose_json``, ``openpose``, ``npy``,
            ``csv``.
        source_layout: the file's joint layout; required for ``npy``/``csv``, defaults to ``coco`` (COCO JSON)
            and ``openpose_body25`` (OpenPose), read from the metadata of VideoPose3D ``.npz``.
        width, height: frame size in pixels where the file does not give it (all formats but VideoPose3D).
        input_layout: the model's 2D layout (linked to the model by the CLI); the file is converted to it.
        output_layout: the model's 3D layout (linked to the model by the CLI).
        min_score: joints scored below this are treated as missing and interpolated.
        fps: frames per second (written with the outputs, used for animations); default: a video's own rate,
            else 50. Required for an image folder.
        features: 2D features per joint the lifter takes: 2 (x, y) or 3 (x, y, score).
        min_iou, reacquire_after: person following (:func:`components.detections.follow_person`).
        people: ``one`` lifts the most prominent person of each video; ``all`` lifts every tracked person
            (:func:`components.detections.track_people`), each written as ``<video>_person<track id>``.
        num_frames: the video's frame count, so that trailing frames where nobody was detected are kept
            (frame-indexed formats otherwise end at the last detection).
        first_image_id: the COCO ``image_id`` of the video's first frame (COCO / AlphaPose results).
        detector: the 2D pose detector for a video or image folder: a YOLO pose weights file (``.pt``, run by
            poselift's own network; ``components/detectors``) or, with the Ultralytics package installed, a model
            name it can fetch (``yolo11n-pose``).
        detector_batch_size: frames per detector batch.
        detections_dir: where the detections of a video are cached (linked to ``trainer.default_root_dir`` by
            the CLI); default: next to the video.
        **window_options: batching options of :class:`datamodules.base.PoseDataModule` (``receptive_field`` and
            ``causal`` are linked from the model; ``eval_chunk_length`` bounds memory on very long videos).
    """

    def __init__(
        self,
        path: str,
        format: str = "auto",
        source_layout: str | None = None,
        width: float | None = None,
        height: float | None = None,
        input_layout: str = "h36m",
        output_layout: str = "h36m",
        min_score: float = 0.0,
        fps: float | None = None,
        features: int = 2,
        min_iou: float = 0.1,
        reacquire_after: int = 10,
        people: Literal["one", "all"] = "one",
        num_frames: int | None = None,
        first_image_id: int = 0,
        detector: str = "yolo11n-pose.pt",
        detector_batch_size: int = 8,
        detections_dir: str | None = None,
        **window_options,
    ) -> None:
        super().__init__(input_skeleton=layout(input_layout), output_skeleton=layout(output_layout), **window_options)
        if features not in FEATURES:
            raise InputError(f"features must be 2 (x, y) or 3 (x, y, score), got {features}")
        if fps is not None and not fps > 0:
            raise InputError(f"fps must be positive, got {fps}")
        for name, value in (("width", width), ("height", height)):
            if value is not None and not value > 0:
                raise InputError(f"{name} must be a positive number of pixels, got {value}")
        self.path, self.format, self.source_layout = str(path), format, source_layout
        self.width, self.height = width, height
        self.min_score, self.fps, self.features = min_score, fps, features
        self.min_iou, self.reacquire_after = min_iou, reacquire_after
        if people not in ("one", "all"):
            raise InputError(f"people must be 'one' or 'all', got {people!r}")
        self.people = people
        if num_frames is not None and not num_frames > 0:
            raise InputError(f"num_frames must be a positive frame count, got {num_frames}")
        self.num_frames, self.first_image_id = num_frames, first_image_id
        if detector_batch_size < 1:
            raise InputError(f"detector_batch_size must be >= 1, got {detector_batch_size}")
        self.detector, self.detector_batch_size, self.detections_dir = detector, detector_batch_size, detections_dir
        self.videos: list[VideoTrack] = []

    # -- loading -------------------------------------------------------------------------------------------------
    def load_sequences(self) -> dict[str, list[PoseSequence]]:
        if is_frame_source(self.path):
            found, source = self._detect_frames()
            fps = source.fps
        else:
            found, fps, source = self._read_files(), self.fps or DEFAULT_FPS, None
        if not found:
            raise InputError(f"{self.path}: no video in the detection file")
        self.videos = [video for detections in found for video in self._tracks(detections, fps, source)]
        return {PREDICT_SPLIT: [self._sequence(video) for video in self.videos]}

    def _read_files(self) -> list[Detections]:
        return read_detections(
            self.path, self.format, self.source_layout, self.width, self.height, self.num_frames, self.first_image_id
        )

    def _detect_frames(self) -> tuple[list[Detections], FrameSource]:
        """Detect the people of every frame of the video or image folder (or reuse its cached detections)."""
        from components.detectors.loading import load_detector

        source = open_frames(self.path, self.fps)
        device = self.trainer.strategy.root_device if self.trainer is not None else "cpu"
        cache = Path(self.detections_dir) if self.detections_dir else source.path.parent
        found = detect(
            source,
            lambda: load_detector(self.detector, device),
            self.detector,
            cache,
            self.detector_batch_size,
            sys.stderr.isatty(),
        )
        return [found], source

    def _tracks(self, detections: Detections, fps: float, source: FrameSource | None) -> list[VideoTrack]:
        """Follow, convert and fill one video's person, or every tracked person (see the module docstring)."""
        where = f"{self.path}: video {detections.name!r}"
        if detections.width is None or detections.height is None:
            raise InputError(
                f"{where}: the file gives no frame size (only VideoPose3D .npz metadata does); pass the video's "
                "width and height in pixels (--data.init_args.width 1920 --data.init_args.height 1080)"
            )
        if len(detections.keypoints) == 0:
            raise InputError(f"{where}: no frames")
        if self.people == "one":
            people = follow_person(detections.keypoints, self.min_iou, self.reacquire_after)[1][:, None]
        else:
            people = track_people(detections.keypoints, self.min_iou, self.reacquire_after)
        if (people < 0).all():
            raise InputError(f"{where}: nobody is detected in any of its {len(people)} frames")
        return [self._track(detections, fps, person, track, source) for track, person in enumerate(people.T)]

    def _track(
        self, detections: Detections, fps: float, person: np.ndarray, track: int, source: FrameSource | None
    ) -> VideoTrack:
        """Convert and fill the keypoints of one followed ``person`` ``(F,)`` (index per frame, -1: absent)."""
        where = f"{self.path}: video {detections.name!r}"
        present = (person >= 0)[:, None, None]
        picked = detections.keypoints[np.arange(len(person)), np.maximum(person, 0)]
        converted = _convert(np.where(present, picked, np.nan), detections.skeleton, self.input_skeleton, where)
        try:
            filled = fill_missing(converted, self.input_skeleton, self.min_score)
        except ValueError as error:
            raise InputError(f"{where}: {error}") from None
        return VideoTrack(
            name=detections.name if self.people == "one" else f"{detections.name}_person{track}",
            keypoints=filled.keypoints.astype(np.float32),
            filled=filled.filled,
            empty_frames=filled.empty_frames,
            person=person,
            width=float(detections.width),
            height=float(detections.height),
            fps=float(fps),
            track=track,
            frames=source,
        )

    def _sequence(self, video: VideoTrack) -> PoseSequence:
        """``(F, J_in, features)`` screen-normalised 2D (and the score as third feature when asked)."""
        screen = normalize_screen_coordinates(video.keypoints[..., :2], video.width, video.height)
        keypoints = np.concatenate([screen, video.keypoints[..., 2:]], -1)[..., : self.features]
        return PoseSequence(
            subject=video.name, action=ACTION, camera="0", keypoints_2d=keypoints.astype(np.float32), fps=video.fps
        )

    # -- there are no labels: only predict ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", "test"):
            raise InputError(self._unlabeled_reason(stage))
        super().setup(stage)

    def require_split(self, split: str) -> None:
        if split != PREDICT_SPLIT:
            raise InputError(self._unlabeled_reason(split))
        super().require_split(split)

    def _unlabeled_reason(self, what: str) -> str:
        return (
            f"DetectionsDataModule ({self.path}) holds unlabeled 2D detections for `poselift predict` only; "
            f"{what!r} needs 3D labels: use the training data's config (e.g. the run's config.yaml) instead"
        )

    def train_dataloader(self):
        raise InputError(self._unlabeled_reason("fit"))

    def val_dataloader(self):
        raise InputError(self._unlabeled_reason("validate"))

    def test_dataloader(self):
        raise InputError(self._unlabeled_reason("test"))

    def empty_split_reason(self, split: str) -> str:
        return f"{self.path}: no video to lift (split {split!r} is empty)"


def _convert(track: np.ndarray, source: Skeleton, target: Skeleton, where: str) -> np.ndarray:
    """``(F, J_source, 3)`` -> ``(F, J_target, 3)`` by joint name, with an error naming the video."""
    try:
        return convert_keypoints(track, source, target)
    except ValueError as error:
        raise InputError(f"{where}: {error}") from None
