"""MPI-INF-3DHP: the raw training/test files or the preprocessed npz files, as PoseSequences.

Joints are converted by name (``MPI_INF_3DHP_28`` / ``MPI_INF_3DHP_17`` -> the configured layouts, Human3.6M-17
by default), so a Human3.6M model is evaluated here unchanged. Targets follow the official evaluation: the
``univ_annot3`` poses (rescaled to the universal skeleton), pelvis-relative, in metres; the trajectory is the
pelvis of ``annot3`` (the true camera-frame position). 2D is screen-normalised with each sequence's own image
size (2048x2048 studio, 1920x1080 outdoor) and each training camera's calibration gives the intrinsics.

Splits: ``train`` = the training recordings seen by ``train_cameras``; ``val`` = the held-out last
``val_fraction`` of every training recording (or test sequences named by ``val_sequences``); ``test`` = test
sequences (TS1..TS6), all frames as input, scored on valid frames only, per sequence, scene and activity
(:class:`components.evaluation.PckProtocol`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np

from components.camera import CameraParameters, normalize_screen_coordinates
from components.errors import InputError, MissingKeyError
from components.evaluation import EvaluationProtocol, PckProtocol
from components.skeleton import MPI_INF_3DHP_17, MPI_INF_3DHP_28, Skeleton, layout
from datamodules.base import PoseDataModule
from datamodules.human36m import default_cache_dir
from datamodules.mpi_inf_3dhp_files import (
    ACTIVITIES,
    ANNOT_MAT,
    CALIBRATION,
    TEST_ANNOTATIONS,
    TEST_CAMERAS,
    TEST_FPS,
    TEST_SEQUENCES,
    TEST_SET_FOLDER,
    TRAIN_CAMERAS,
    TRAIN_RECORDINGS,
    load_annot_mat,
    load_calibration,
    load_preprocessed_npz,
    load_test_annotations,
)
from datamodules.sequence import PoseSequence

TRAIN_SUBJECTS = ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8")
TRAIN_IMAGE_SIZE = (2048, 2048)
NPZ_TRAIN, NPZ_TEST = "data_train_3dhp.npz", "data_test_3dhp.npz"
TEST_ACTION = "test"


def resample_step(fps: float, target_fps: float | None, where: str) -> int:
    """Keep every ``step``-th frame to go from ``fps`` to ``target_fps`` (1 when no target or already there)."""
    if target_fps is None or fps <= target_fps:
        return 1
    step = fps / target_fps
    if abs(step - round(step)) > 1e-6:
        raise InputError(f"{where}: {fps:g} fps cannot be resampled to {target_fps:g} fps by keeping every k-th frame")
    return int(round(step))


def _targets(
    univ_mm: np.ndarray, camera_mm: np.ndarray, source: Skeleton, output: Skeleton, target_3d: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(T, J_out, 3)`` root-relative pose and ``(T, 1, 3)`` trajectory in metres from millimetre annotations."""
    pose = output.convert_from(source, univ_mm if target_3d == "univ" else camera_mm) / 1000.0
    root = output.root
    trajectory = camera_mm[:, [source.index(output.joint_names[root])]] / 1000.0
    return (pose - pose[:, [root]]).astype(np.float32), trajectory.astype(np.float32)


def _keypoints(pixels: np.ndarray, source: Skeleton, skeleton: Skeleton, width: int, height: int) -> np.ndarray:
    return normalize_screen_coordinates(skeleton.convert_from(source, pixels), width, height).astype(np.float32)


class Mpi3dhpDataModule(PoseDataModule):
    """MPI-INF-3DHP from its raw files (``form="raw"``), the P-STMO npz files (``form="npz"``), or the synthetic
    set written in the raw formats (``data_dir=None``).

    Args:
        data_dir: raw: the folder with ``S1..S8/Seq1..Seq2/{annot.mat,camera.calibration}``; npz: the folder with
            ``data_train_3dhp.npz`` and ``data_test_3dhp.npz``. None: the synthetic set in ``cache_dir``.
        test_dir: raw: the folder with ``TS1..TS6/annot_data.mat`` (default ``data_dir/mpi_inf_3dhp_test_set``).
        form: ``"raw"`` or ``"npz"``.
        input_layout, output_layout: layouts of the 2D input and the 3D targets (joints taken by name).
        train_subjects, train_sequences: the training recordings (``S1..S8`` x ``Seq1, Seq2``).
        train_cameras: training camera indices (default the eight non-ceiling cameras 0, 1, 2, 4-8).
        test_sequences: test sequences of the test split (default TS1..TS6).
        val_sequences: test sequences to validate on. ``None`` (default) holds out the last ``val_fraction`` of
            every training recording instead (see :class:`datamodules.base.PoseDataModule`); naming test
            sequences of the test split here needs ``allow_val_on_test``.
        target_3d: ``"univ"`` (universal skeleton, the official evaluation target) or ``"camera"`` (``annot3``).
        target_fps: subsample training recordings recorded faster than this (e.g. 25 keeps every other frame of
            the 50 fps recordings); None keeps every frame.
        synthetic_size, synthetic_seed, cache_dir: the synthetic set used when ``data_dir`` is None.
        **window_options: batching options of :class:`datamodules.base.PoseDataModule`.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        test_dir: str | None = None,
        form: Literal["raw", "npz"] = "raw",
        input_layout: str = "h36m",
        output_layout: str = "h36m",
        train_subjects: Sequence[str] = TRAIN_SUBJECTS,
        train_sequences: Sequence[str] = ("Seq1", "Seq2"),
        train_cameras: Sequence[int] = TRAIN_CAMERAS,
        val_sequences: Sequence[str] | None = None,
        test_sequences: Sequence[str] = tuple(TEST_SEQUENCES),
        target_3d: Literal["univ", "camera"] = "univ",
        target_fps: float | None = None,
        synthetic_size: str = "default",
        synthetic_seed: int = 0,
        cache_dir: str | None = None,
        **window_options,
    ) -> None:
        super().__init__(input_skeleton=layout(input_layout), output_skeleton=layout(output_layout), **window_options)
        if form not in ("raw", "npz"):
            raise InputError(f"form must be 'raw' or 'npz', got {form!r}")
        if target_3d not in ("univ", "camera"):
            raise InputError(f"target_3d must be 'univ' or 'camera', got {target_3d!r}")
        if form == "npz" and target_3d != "univ":
            raise InputError("the npz files hold univ_annot3 only: use target_3d='univ' with form='npz'")
        for skeleton in (self.input_skeleton, self.output_skeleton):
            skeleton.selection_from(MPI_INF_3DHP_17)  # fails early unless every joint is annotated
        unknown = [s for s in (*(val_sequences or ()), *test_sequences) if s not in TEST_SEQUENCES]
        if unknown:
            raise InputError(f"unknown test sequence(s) {unknown}; known: {list(TEST_SEQUENCES)}")
        self.data_dir, self.test_dir, self.form = data_dir, test_dir, form
        self.train_recordings = [(s, q) for s in train_subjects for q in train_sequences]
        self.train_cameras = tuple(int(c) for c in train_cameras)
        self.split_sequences = {
            **({} if val_sequences is None else {"val": tuple(val_sequences)}),
            "test": tuple(test_sequences),
        }
        self.target_3d, self.target_fps = target_3d, target_fps
        self.synthetic_size, self.synthetic_seed = synthetic_size, synthetic_seed
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()

    # -- where the files are ---------------------------------------------------------------------------------
    @property
    def dataset_dir(self) -> Path:
        if self.data_dir is not None:
            return Path(self.data_dir)
        return self.cache_dir / f"synthetic_3dhp_{self.synthetic_size}_seed{self.synthetic_seed}"

    @property
    def test_set_dir(self) -> Path:
        return Path(self.test_dir) if self.test_dir is not None else self.dataset_dir / TEST_SET_FOLDER

    def prepare_data(self) -> None:
        if self.data_dir is None:
            from datamodules.synthetic.mpi_inf_3dhp import ensure_synthetic_3dhp

            ensure_synthetic_3dhp(self.cache_dir, self.synthetic_size, self.synthetic_seed)

    # -- evaluation ------------------------------------------------------------------------------------------
    @property
    def activities(self) -> tuple[str, ...]:
        return ACTIVITIES

    def evaluation_protocol(
        self, trajectory: bool = False, by_subject: bool = False, scale_free: bool = False
    ) -> EvaluationProtocol:
        """PCK/AUC/MPJPE per test sequence, scene and activity (see :class:`PckProtocol`)."""
        return PckProtocol(self.subjects, self.activities, self.output_skeleton, scale_free)

    # -- loading ---------------------------------------------------------------------------------------------
    def load_sequences(self) -> dict[str, list[PoseSequence]]:
        self.prepare_data()
        load = self._load_npz if self.form == "npz" else self._load_raw
        return load()

    def _load_raw(self) -> dict[str, list[PoseSequence]]:
        train = [seq for subject, name in self.train_recordings for seq in self._raw_recording(subject, name)]
        tests = {name: self._raw_test(name) for names in self.split_sequences.values() for name in names}
        return {"train": train, **{split: [tests[n] for n in names] for split, names in self.split_sequences.items()}}

    def _raw_recording(self, subject: str, name: str) -> list[PoseSequence]:
        """The selected cameras of one training recording ``S*/Seq*``."""
        folder = self.dataset_dir / subject / name
        annot = load_annot_mat(folder / ANNOT_MAT)
        frames, fps = TRAIN_RECORDINGS.get((subject, name), (len(annot.frames), 25.0))
        cameras = load_calibration(folder / CALIBRATION)
        missing = [c for c in self.train_cameras if c >= min(len(cameras), len(annot.annot2))]
        if missing:
            raise InputError(
                f"{folder}: train_cameras {missing} not present ({len(annot.annot2)} cameras in annot.mat, "
                f"{len(cameras)} in camera.calibration)"
            )
        step = resample_step(fps, self.target_fps, str(folder))
        keep = slice(0, min(frames, len(annot.frames)), step)
        sequences = []
        for index in self.train_cameras:
            camera = cameras[index].camera_parameters()
            sequences.append(
                self._sequence(
                    subject,
                    name,
                    camera,
                    MPI_INF_3DHP_28,
                    annot.annot2[index][keep],
                    annot.univ_annot3[index][keep],
                    annot.annot3[index][keep],
                    fps / step,
                )
            )
        return sequences

    def _raw_test(self, name: str) -> PoseSequence:
        annot = load_test_annotations(self.test_set_dir / name / TEST_ANNOTATIONS)
        sequence = self._sequence(
            name, TEST_ACTION, TEST_CAMERAS[name], MPI_INF_3DHP_17, annot.annot2, annot.univ_annot3, annot.annot3
        )
        activity = np.where((annot.activity >= 1) & (annot.activity <= len(ACTIVITIES)), annot.activity - 1, -1)
        return replace(sequence, valid=annot.valid, activity=activity, fps=TEST_FPS[name])

    def _load_npz(self) -> dict[str, list[PoseSequence]]:
        folder = self.dataset_dir
        train_data, test_data = load_preprocessed_npz(folder / NPZ_TRAIN), load_preprocessed_npz(folder / NPZ_TEST)
        train = []
        for subject, name in self.train_recordings:
            key = f"{subject} {name}"
            if key not in train_data:
                raise MissingKeyError(f"{folder / NPZ_TRAIN}: no recording {key!r} (has {sorted(train_data)})")
            train += self._npz_recording(folder / NPZ_TRAIN, key, train_data[key])
        splits = {"train": train}
        for split, names in self.split_sequences.items():
            missing = [n for n in names if n not in test_data]
            if missing:
                raise MissingKeyError(f"{folder / NPZ_TEST}: no test sequence(s) {missing} (has {sorted(test_data)})")
            splits[split] = [self._npz_test(n, test_data[n]) for n in names]
        return splits

    def _npz_recording(self, path: Path, key: str, recording) -> list[PoseSequence]:
        subject, name = key.split()
        step = resample_step(recording.fps, self.target_fps, f"{path}: {key}")
        sequences = []
        for index in self.train_cameras:
            view = recording.views.get(str(index))
            if view is None:
                raise MissingKeyError(f"{path}: {key} has no camera {str(index)!r} (has {sorted(recording.views)})")
            # No calibration in these files: an uncalibrated camera of the training image size.
            camera = CameraParameters(str(index), *TRAIN_IMAGE_SIZE, (1.0, 1.0), (0.0, 0.0), (0.0,) * 3, (0.0,) * 2)
            data_2d, data_3d = view.data_2d[::step], view.data_3d[::step]
            sequence = self._sequence(
                subject, name, camera, MPI_INF_3DHP_17, data_2d, data_3d, data_3d, recording.fps / step
            )
            sequences.append(replace(sequence, intrinsics=None))
        return sequences

    def _npz_test(self, name: str, view) -> PoseSequence:
        # data_3d is univ_annot3: its pelvis stands in for the camera-frame trajectory.
        camera = TEST_CAMERAS[name]
        sequence = self._sequence(name, TEST_ACTION, camera, MPI_INF_3DHP_17, view.data_2d, view.data_3d, view.data_3d)
        return replace(sequence, valid=view.valid, fps=TEST_FPS[name])

    def _sequence(
        self,
        subject: str,
        action: str,
        camera: CameraParameters,
        source: Skeleton,
        pixels: np.ndarray,
        univ_mm: np.ndarray,
        camera_mm: np.ndarray,
        fps: float = 25.0,
    ) -> PoseSequence:
        pose, trajectory = _targets(univ_mm, camera_mm, source, self.output_skeleton, self.target_3d)
        return PoseSequence(
            subject=subject,
            action=action,
            camera=camera.id,
            keypoints_2d=_keypoints(pixels, source, self.input_skeleton, camera.width, camera.height),
            poses_3d=pose,
            trajectory=trajectory,
            intrinsics=camera.intrinsics(),
            fps=fps,
        )
