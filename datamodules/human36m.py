"""Human3.6M in the VideoPose3D npz formats (the interchange format of lifting work).

Files (reference/datasets.md A1):

- ``data_3d_h36m.npz``: key ``positions_3d``, a pickled dict subject -> action -> ``(T, 32, 3)`` float32,
  world frame (z up), metres.
- ``data_2d_h36m_<source>.npz``: key ``positions_2d``, subject -> action -> list of 4 ``(T, J, 2)`` pixel
  arrays (one per camera, in the calibration's order), and ``metadata`` with ``num_joints``,
  ``keypoints_symmetry`` and, for detections, ``layout_name``. Detection files also hold 2D-only subjects.

This module only loads and converts; windows and batches come from ``datamodules.windows``.
"""

from __future__ import annotations

import os
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from components.camera import CameraParameters, h36m_cameras, normalize_screen_coordinates, world_to_camera
from components.errors import InputError, MissingKeyError
from components.skeleton import H36M_17, H36M_32, Skeleton, layout
from datamodules.base import PoseDataModule
from datamodules.camera_rig import RIG_FILE, load_subject_cameras
from datamodules.file_checks import load_pickled_dict
from datamodules.memory import release_freed_memory
from datamodules.sequence import PoseSequence
from datamodules.synthetic import ensure_synthetic_h36m

FPS = 50.0
TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
NUM_CAMERAS = 4


def load_positions_3d(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Read ``data_3d_h36m.npz``: subject -> action -> ``(T, 32, 3)`` float32 world positions in metres."""
    path = Path(path)
    positions = load_pickled_dict(path, "positions_3d", "subject -> action -> array")
    for subject, actions in positions.items():
        for action, array in actions.items():
            array = np.asarray(array)
            if array.ndim != 3 or array.shape[1:] != (H36M_32.num_joints, 3):
                raise InputError(
                    f"{path}: positions_3d[{subject!r}][{action!r}] has shape {array.shape}, "
                    f"expected (frames, {H36M_32.num_joints}, 3)"
                )
            actions[action] = array.astype(np.float32, copy=False)
    return positions


@dataclass(frozen=True)
class Keypoints2D:
    """Contents of one ``data_2d_h36m_<source>.npz``.

    Attributes:
        positions: subject -> action -> per-camera ``(T, J, F)`` float32 pixel keypoints.
        skeleton: the layout named by the metadata (``h36m`` when it names none, as in the ``gt`` file).
    """

    positions: dict[str, dict[str, list[np.ndarray]]]
    skeleton: Skeleton


def load_keypoints_2d(path: str | Path, num_cameras: int | None = NUM_CAMERAS) -> Keypoints2D:
    """Read ``data_2d_h36m_<source>.npz`` and check it against its own metadata (and, unless None, that every
    recording has ``num_cameras`` views)."""
    path = Path(path)
    positions = load_pickled_dict(path, "positions_2d", "subject -> action -> [array per camera]")
    metadata = load_pickled_dict(path, "metadata", "of settings")
    skeleton = _skeleton_from_metadata(path, metadata)
    for subject, actions in positions.items():
        for action, views in actions.items():
            where = f"{path}: positions_2d[{subject!r}][{action!r}]"
            if num_cameras is not None and len(views) != num_cameras:
                raise InputError(f"{where} has {len(views)} cameras, expected {num_cameras}")
            views = [np.asarray(v, dtype=np.float32) for v in views]
            for camera, view in enumerate(views):
                if view.ndim != 3 or view.shape[1] != skeleton.num_joints or view.shape[2] not in (2, 3):
                    raise InputError(
                        f"{where}[{camera}] has shape {view.shape}, expected (frames, {skeleton.num_joints}, 2 or 3)"
                    )
                _check_finite(f"{where}[{camera}] (camera {camera})", view, skeleton)
            actions[action] = views
    return Keypoints2D(positions, skeleton)


def _check_finite(where: str, view: np.ndarray, skeleton: Skeleton) -> None:
    """Missing detections stored as NaN would poison every window that touches them: name the first one."""
    missing = ~np.isfinite(view).all(axis=-1)  # (T, J)
    if missing.any():
        frame, joint = (int(i) for i in np.argwhere(missing)[0])
        raise InputError(
            f"{where} holds NaN/inf 2D keypoints, first at frame {frame}, joint {joint} "
            f"({skeleton.joint_names[joint]}); {int(missing.any(axis=1).sum())} of {len(view)} frames are affected. "
            "Fill missing detections (e.g. interpolate or repeat the last position) before training"
        )


def _skeleton_from_metadata(path: Path, metadata: dict) -> Skeleton:
    if "num_joints" not in metadata:
        raise MissingKeyError(f"{path}: metadata lacks 'num_joints' (found {sorted(metadata)})")
    skeleton = layout(str(metadata.get("layout_name", "h36m")))
    if int(metadata["num_joints"]) != skeleton.num_joints:
        raise InputError(
            f"{path}: metadata num_joints={metadata['num_joints']} but layout {skeleton.name!r} "
            f"has {skeleton.num_joints} joints"
        )
    symmetry = metadata.get("keypoints_symmetry")
    if symmetry is not None and [list(symmetry[0]), list(symmetry[1])] != [
        list(skeleton.left),
        list(skeleton.right),
    ]:
        raise InputError(
            f"{path}: metadata keypoints_symmetry {symmetry} does not match layout {skeleton.name!r} "
            f"(left {list(skeleton.left)}, right {list(skeleton.right)})"
        )
    return skeleton


def subset_window(subject: str, action: str, frames: int, fraction: float, seed: int = 0) -> slice:
    """One contiguous block of ``round(frames * fraction)`` frames at a start fixed by the name and ``seed``.

    All cameras of a recording get the same block, and the choice is the same on every run and process.
    """
    keep = max(1, int(round(frames * fraction)))
    seed = zlib.crc32(f"{subject}/{action}/{seed}".encode())
    start = int(np.random.default_rng(seed).integers(0, frames - keep + 1))
    return slice(start, start + keep)


@dataclass(frozen=True)
class RecordingFilter:
    """Which recordings and frames to keep: action prefixes, cameras, subset fraction, downsampling.

    ``complement=True`` keeps the frames *outside* the subset block instead: the unlabeled rest of a subject
    whose labeled part is the block.
    """

    actions: Sequence[str] | None = None
    cameras: Sequence[int] | None = None
    subset: float = 1.0
    downsample: int = 1
    complement: bool = False
    seed: int = 0

    def keeps(self, action: str) -> bool:
        # Prefix matching, as in the published protocol: "Sitting" also selects "SittingDown".
        return self.actions is None or any(action.startswith(a) for a in self.actions)

    def blocks(self, subject: str, action: str, frames: int) -> list[slice]:
        """Frame slices to keep (each a separate sequence), downsampled."""
        if self.subset >= 1:
            kept = [] if self.complement else [slice(0, frames)]
        else:
            block = subset_window(subject, action, frames, self.subset, self.seed)
            kept = [slice(0, block.start), slice(block.stop, frames)] if self.complement else [block]
        return [slice(k.start, k.stop, self.downsample) for k in kept if k.stop > k.start]


def _camera_space_targets(world: np.ndarray, camera: CameraParameters, skeleton: Skeleton):
    """World ``(T, J, 3)`` -> (root-relative poses ``(T, J, 3)``, root trajectory ``(T, 1, 3)``), camera space."""
    points = world_to_camera(
        torch.from_numpy(world).double(),
        torch.tensor(camera.orientation, dtype=torch.float64),
        torch.tensor(camera.translation, dtype=torch.float64),
    ).numpy()
    root = points[:, skeleton.root : skeleton.root + 1]
    return (points - root).astype(np.float32), root.astype(np.float32)


def check_subjects(keypoints: Keypoints2D, positions_3d: dict | None, subjects: Sequence[str], source: str) -> None:
    """KeyError naming the first of ``subjects`` missing from the 2D (or, when given, the 3D) positions."""
    for subject in subjects:
        if subject not in keypoints.positions:
            raise MissingKeyError(
                f"2D source {source!r} has no subject {subject!r} (has {sorted(keypoints.positions)})"
            )
        if positions_3d is not None and subject not in positions_3d:
            raise MissingKeyError(f"3D positions have no subject {subject!r} (has {sorted(positions_3d)})")


def build_sequences(
    keypoints: Keypoints2D,
    positions_3d: dict[str, dict[str, np.ndarray]] | None,
    subjects: Sequence[str],
    recordings: RecordingFilter,
    output_skeleton: Skeleton = H36M_17,
    source: str = "",
    drop_3d: bool = False,
    cameras_of: Callable[[str], Sequence[CameraParameters]] = h36m_cameras,
) -> list[PoseSequence]:
    """Turn file contents into per-camera sequences in the framework's conventions.

    With ``positions_3d`` the sequences are labeled: the 32 mocap joints are reduced to ``output_skeleton`` by
    name, moved into each camera's frame and split into a root-relative pose and a root trajectory; 2D
    longer than the mocap is cut to its length. Without it (2D-only subjects), or with ``drop_3d`` (the
    unlabeled rest of labeled subjects: same frames as the labeled part, no targets), they are unlabeled.
    ``cameras_of`` gives a subject's cameras in the files' camera order (the Human3.6M calibration by default).
    """
    sequences = []
    for subject in subjects:
        check_subjects(keypoints, positions_3d, [subject], source)
        cameras = cameras_of(subject)
        for action in sorted(keypoints.positions[subject]):
            if not recordings.keeps(action):
                continue
            world = None
            if positions_3d is not None:
                if action not in positions_3d[subject]:
                    raise MissingKeyError(
                        f"3D positions of {subject} lack action {action!r} found in 2D source {source!r}"
                    )
                world = output_skeleton.convert_from(H36M_32, positions_3d[subject][action])
            sequences += _recording_sequences(
                subject,
                action,
                keypoints.positions[subject][action],
                world,
                cameras,
                recordings,
                output_skeleton,
            )
    if drop_3d:
        sequences = [replace(s, poses_3d=None, trajectory=None) for s in sequences]
    return sequences


def _recording_sequences(subject, action, views, world, cameras, recordings, output_skeleton):
    if len(views) != len(cameras):
        raise InputError(f"{subject}/{action}: the 2D has {len(views)} cameras, the calibration {len(cameras)}")
    selected = range(len(views)) if recordings.cameras is None else recordings.cameras
    length = min(len(v) for v in views) if world is None else len(world)
    sequences = []
    for index in selected:
        view, camera = views[index], cameras[index]
        if world is not None and len(view) < len(world):
            raise InputError(
                f"{subject}/{action} camera {index}: 2D has {len(view)} frames, fewer than the 3D's {len(world)}"
            )
        for frames in recordings.blocks(subject, action, length):
            block = _sequence(
                subject, action, view[:length], world, camera, frames, output_skeleton, recordings.downsample
            )
            sequences.append(block)
    return sequences


def _sequence(subject, action, view, world, camera, frames: slice, skeleton: Skeleton, downsample: int):
    """One camera's block of frames as a PoseSequence in the framework's conventions."""
    keypoints = view[frames].copy()
    keypoints[..., :2] = normalize_screen_coordinates(keypoints[..., :2], camera.width, camera.height)
    poses = trajectory = None
    if world is not None:
        poses, trajectory = _camera_space_targets(world[frames], camera, skeleton)
    return PoseSequence(
        subject=subject,
        action=action,
        camera=camera.id,
        keypoints_2d=keypoints,
        poses_3d=poses,
        trajectory=trajectory,
        intrinsics=camera.intrinsics(),
        fps=FPS / downsample,
    )


def default_cache_dir() -> Path:
    """Where generated data goes: ``$POSELIFT_CACHE`` or ``~/.cache/poselift``."""
    return Path(os.environ.get("POSELIFT_CACHE", Path.home() / ".cache" / "poselift"))


class Human36mDataModule(PoseDataModule):
    """Human3.6M from VideoPose3D-format npz files, or the synthetic set written in the same format.

    Args:
        data_dir: folder holding ``data_3d_h36m.npz`` and ``data_2d_h36m_<source>.npz``. ``None`` generates
            the deterministic synthetic dataset once into ``cache_dir`` and reads it with the same code.
        source_2d: the 2D source, e.g. ``gt``, ``cpn_ft_h36m_dbb``, ``detectron_pt_coco`` (synthetic: ``gt``,
            ``noisy``).
        input_layout: layout of the 2D source (checked against the file's metadata).
        output_layout: layout of the 3D targets, taken from the 32 mocap joints by name.
        train_subjects, test_subjects: labeled subjects of each split.
        val_subjects: whole subjects for validation. ``None`` (default) holds out the last ``val_fraction`` of
            every training recording instead, so validation never shares frames with the test subjects; naming
            test subjects here needs ``allow_val_on_test`` (see :class:`datamodules.base.PoseDataModule`).
        unlabeled_subjects: subjects whose 2D is used without 3D (e.g. S2-S4 of detection files).
        actions: action-name prefixes to keep (``None`` keeps all).
        cameras: camera indices 0-3 to keep (``None`` keeps all).
        subset: fraction of each training recording to keep, as one contiguous block (the labeled part; the
            rest of a subject listed in ``unlabeled_subjects`` too becomes unlabeled data).
        subset_seed: picks where the block lies (the same for every camera, run and process).
        downsample: keep every k-th frame (all splits).
        synthetic_size, synthetic_seed, cache_dir: the synthetic dataset used when ``data_dir`` is None.
        **window_options: batching options of :class:`datamodules.base.PoseDataModule`.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        source_2d: str = "gt",
        input_layout: str = "h36m",
        output_layout: str = "h36m",
        train_subjects: Sequence[str] = TRAIN_SUBJECTS,
        val_subjects: Sequence[str] | None = None,
        test_subjects: Sequence[str] = TEST_SUBJECTS,
        unlabeled_subjects: Sequence[str] = (),
        actions: Sequence[str] | None = None,
        cameras: Sequence[int] | None = None,
        subset: float = 1.0,
        subset_seed: int = 0,
        downsample: int = 1,
        synthetic_size: str = "default",
        synthetic_seed: int = 0,
        cache_dir: str | None = None,
        **window_options,
    ) -> None:
        super().__init__(input_skeleton=layout(input_layout), output_skeleton=layout(output_layout), **window_options)
        self.output_skeleton.selection_from(H36M_32)  # fails early unless the mocap has every output joint
        if not 0 < subset <= 1:
            raise InputError(f"subset must be in (0, 1], got {subset}")
        if downsample < 1:
            raise InputError(f"downsample must be >= 1, got {downsample}")
        if cameras is not None and not set(cameras) <= set(range(NUM_CAMERAS)):
            raise InputError(f"cameras {list(cameras)}: Human3.6M camera indices are 0-{NUM_CAMERAS - 1}")
        self.data_dir, self.source_2d = data_dir, source_2d
        self.split_subjects = {
            "train": tuple(train_subjects),
            **({} if val_subjects is None else {"val": tuple(val_subjects)}),
            "test": tuple(test_subjects),
            "unlabeled": tuple(unlabeled_subjects),
        }
        self.recordings = RecordingFilter(actions, cameras, subset, downsample, seed=subset_seed)
        self.synthetic_size, self.synthetic_seed = synthetic_size, synthetic_seed
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.subject_cameras: dict[str, tuple[CameraParameters, ...]] | None = None

    @property
    def dataset_dir(self) -> Path:
        if self.data_dir is not None:
            return Path(self.data_dir)
        return self.cache_dir / f"synthetic_h36m_{self.synthetic_size}_seed{self.synthetic_seed}"

    def prepare_data(self) -> None:
        if self.data_dir is None:
            ensure_synthetic_h36m(self.cache_dir, self.synthetic_size, self.synthetic_seed)

    def _unlabeled_subjects(self) -> tuple[list[str], list[str]]:
        """Unlabeled subjects split into wholly unlabeled ones and labeled ones whose unlabeled rest is used."""
        labeled = set(self.split_subjects["train"])
        whole = [s for s in self.split_subjects["unlabeled"] if s not in labeled]
        rest = [s for s in self.split_subjects["unlabeled"] if s in labeled]
        if rest and self.recordings.subset >= 1:
            raise InputError(
                f"unlabeled_subjects {rest} are also fully labeled train_subjects; with subset < 1 their "
                "frames outside the labeled block are used as unlabeled data"
            )
        return whole, rest

    def load_sequences(self) -> dict[str, list[PoseSequence]]:
        self.prepare_data()  # a no-op when present; lets setup() work without a Trainer
        folder = self.dataset_dir
        self.subject_cameras = load_subject_cameras(folder / RIG_FILE) if (folder / RIG_FILE).is_file() else None
        # a converted set's rig may have any number of cameras: checked per recording against it instead
        expected = NUM_CAMERAS if self.subject_cameras is None else None
        keypoints = load_keypoints_2d(folder / f"data_2d_h36m_{self.source_2d}.npz", expected)
        if keypoints.skeleton != self.input_skeleton:
            raise InputError(
                f"{folder / f'data_2d_h36m_{self.source_2d}.npz'}: layout {keypoints.skeleton.name!r}, "
                f"but input_layout is {self.input_skeleton.name!r}"
            )
        self._check_action_filter(keypoints, folder / f"data_2d_h36m_{self.source_2d}.npz")
        positions_3d = load_positions_3d(folder / "data_3d_h36m.npz")
        plan = self._conversion_plan()
        # The default val and test splits name the same subjects: convert them once and share the sequences
        # (the DataModule then builds one store for both). Compared by equality: the filter's action list may
        # be an unhashable list.
        requests = []
        for _, request in plan:
            if request not in requests:
                requests.append(request)
        converted = self._convert(requests, keypoints, positions_3d)
        splits: dict[str, list[PoseSequence]] = {}
        for split, request in plan:
            splits[split] = splits.get(split, []) + converted[requests.index(request)]
        return splits

    def _conversion_plan(self) -> list[tuple[str, tuple]]:
        """``(split, (subjects, recordings, with_3d, drop_3d))`` for every conversion a split needs, in order.

        The unlabeled split takes the unlabeled rest of labeled subjects (3D read for the frame count, then
        dropped) followed by its wholly unlabeled subjects.
        """
        plan = []
        for split, subjects in self.split_subjects.items():
            recordings = self.recordings if split == "train" else replace(self.recordings, subset=1.0)
            if split != "unlabeled":
                plan.append((split, (tuple(subjects), recordings, True, False)))
                continue
            whole, rest = self._unlabeled_subjects()
            plan.append((split, (tuple(rest), replace(self.recordings, complement=True), True, True)))
            plan.append((split, (tuple(whole), recordings, False, False)))
        return plan

    def _convert(self, requests: list[tuple], keypoints: Keypoints2D, positions_3d: dict) -> list[list[PoseSequence]]:
        """The sequences of every request, converted subject by subject.

        A subject's file arrays are popped from ``keypoints`` and ``positions_3d`` once no later request needs
        them, so the raw data shrinks while the converted data grows instead of both being held whole.
        """
        for subjects, _, with_3d, _ in requests:  # before anything is popped: the errors list every subject
            check_subjects(keypoints, positions_3d if with_3d else None, subjects, self.source_2d)
        uses = Counter(subject for subjects, *_ in requests for subject in subjects)
        converted = []
        for subjects, recordings, with_3d, drop_3d in requests:
            sequences = []
            for subject in subjects:
                sequences += build_sequences(
                    keypoints,
                    positions_3d if with_3d else None,
                    [subject],
                    recordings,
                    self.output_skeleton,
                    self.source_2d,
                    drop_3d=drop_3d,
                    cameras_of=self.cameras_of,
                )
                uses[subject] -= 1
                if uses[subject] == 0:
                    keypoints.positions.pop(subject, None)
                    positions_3d.pop(subject, None)
                    release_freed_memory()
            converted.append(sequences)
        return converted

    def cameras_of(self, subject: str) -> tuple[CameraParameters, ...]:
        """The subject's cameras: from the dataset's ``cameras.json`` when it has one (a converted motion-capture
        set), else the Human3.6M calibration."""
        if self.subject_cameras is None:
            return h36m_cameras(subject)
        if subject not in self.subject_cameras:
            raise MissingKeyError(f"{self.dataset_dir / RIG_FILE} has no cameras for subject {subject!r}")
        return self.subject_cameras[subject]

    def _check_action_filter(self, keypoints: Keypoints2D, path: Path) -> None:
        """Every ``actions`` prefix must select something: a typo would otherwise just shrink the data."""
        if self.recordings.actions is None:
            return
        names = {action for actions in keypoints.positions.values() for action in actions}
        unknown = [prefix for prefix in self.recordings.actions if not any(n.startswith(prefix) for n in names)]
        if unknown:
            available = sorted({name.split(" ")[0] for name in names})
            raise MissingKeyError(f"{path}: actions {unknown} match no action (prefix match); available: {available}")

    def empty_split_reason(self, split: str) -> str:
        """Why ``split`` holds no sequence: its subjects and the filters that removed every recording."""
        if split not in self.split_subjects and split == "val":
            return super().empty_split_reason(split)
        subjects = list(self.split_subjects.get(split, ()))
        if not subjects:
            return f"split {split!r} is empty: no {split}_subjects are configured"
        recordings = self.recordings
        return (
            f"split {split!r} is empty after filters: subjects {subjects} have no recording left with "
            f"actions={recordings.actions}, cameras={recordings.cameras}, subset={recordings.subset}"
        )
