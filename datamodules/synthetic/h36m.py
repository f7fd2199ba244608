"""Synthetic Human3.6M, written in the real VideoPose3D file formats (the embedded default dataset).

The real dataset is licensed; this one lets every regime train and be tested on a fresh machine. It is read
back by the real readers (``datamodules.human36m``), so the files follow reference/datasets.md A1 exactly:

- ``data_3d_h36m.npz``: ``positions_3d`` subject -> action -> ``(T, 32, 3)`` float32, metres, world frame
  (z up), :data:`H36M_32` order.
- ``data_2d_h36m_gt.npz``: ``positions_2d`` subject -> action -> list of 4 ``(T, 17, 2)`` float32 pixel arrays
  (the 3D projected through each subject's four real cameras, with distortion), ``metadata`` without a
  layout name, like the real ``gt`` file.
- ``data_2d_h36m_noisy.npz``: the same structure, corrupted like a detector (jitter, outliers, brief
  left/right limb swaps, dropped joints that hold their last position), ``metadata`` naming ``h36m``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.camera import H36M_SUBJECTS_WITH_CAMERAS, CameraParameters, h36m_cameras
from components.errors import InputError
from components.skeleton import H36M_17, H36M_32
from datamodules.synthetic.body import subject_body, to_layout
from datamodules.synthetic.detector import corrupt_keypoints
from datamodules.synthetic.files import build_directory_atomically, save_npz_files
from datamodules.synthetic.motions import ActionSpec, simulate_motion
from datamodules.synthetic.projection import project_to_pixels
from datamodules.synthetic.seeding import seeded_rng
from datamodules.synthetic.signals import FPS
from datamodules.synthetic.volume import CaptureVolume, capture_volume

SYNTHETIC_2D_SOURCES = ("gt", "noisy")
H36M_SUBJECTS = H36M_SUBJECTS_WITH_CAMERAS
FILE_3D = "data_3d_h36m.npz"


def file_2d(source: str) -> str:
    """File name of one 2D source, ``data_2d_h36m_<source>.npz``."""
    return f"data_2d_h36m_{source}.npz"


H36M_ACTIONS: dict[str, ActionSpec] = {
    "Directions": ActionSpec("turning"),
    "Discussion": ActionSpec("gestures"),
    "Eating": ActionSpec("sitting"),
    "Greeting": ActionSpec("gestures", {"wave": True}),
    "Phoning": ActionSpec("gestures", {"phone": True}),
    "Photo": ActionSpec("reaching"),
    "Posing": ActionSpec("reaching"),
    "Purchases": ActionSpec("bending"),
    "Sitting": ActionSpec("sitting"),
    "SittingDown": ActionSpec("crouching"),
    "Smoking": ActionSpec("gestures", {"phone": True}),
    "Waiting": ActionSpec("gestures"),
    "WalkDog": ActionSpec("walking", {"stop_and_go": True}),
    "Walking": ActionSpec("walking"),
    "WalkTogether": ActionSpec("walking", {"speed": 0.8, "arm_swing": 0.5}),
}
"""The Human3.6M action names this generator knows, mapped to motion kinds."""

H36M_COINCIDENT_JOINTS = {"lower_spine": "pelvis", "left_clavicle": "thorax", "right_clavicle": "thorax"}
"""Static duplicates of the recorded Human3.6M skeleton, reproduced in the synthetic ``(T, 32, 3)`` data."""


def take_names(action: str, takes: int) -> list[str]:
    """Human3.6M action keys of ``takes`` sub-actions: ``"Walking"``, ``"Walking 1"``, ..."""
    return [action] + [f"{action} {k}" for k in range(1, takes)]


def generate_subject_motions(
    subject: str,
    actions: Sequence[str],
    frames: int,
    volume: CaptureVolume,
    seed: int = 0,
    takes: int = 2,
    frame_jitter: float = 0.2,
    specs: Mapping[str, ActionSpec] = H36M_ACTIONS,
) -> dict[str, np.ndarray]:
    """All takes of one subject: action key -> world positions ``(T, joints, 3)``, :data:`BODY` order, metres.

    Each take lasts ``frames`` frames give or take ``frame_jitter`` (relative) and draws its own phase, speed,
    amplitude and path from ``(seed, subject, action key)``.
    """
    body = subject_body(subject, seed)
    motions = {}
    for action in actions:
        if action not in specs:
            raise InputError(f"unknown action {action!r}; known: {sorted(specs)}")
        for key in take_names(action, takes):
            rng = seeded_rng(seed, "motion", subject, key)
            length = int(round(frames * rng.uniform(1 - frame_jitter, 1 + frame_jitter)))
            motions[key] = simulate_motion(specs[action], length, body, volume, rng)
    return motions


@dataclass(frozen=True)
class SyntheticSize:
    """A dataset size: ``takes`` sub-actions of each action, ``frames`` frames each (+- ``frame_jitter``)."""

    actions: tuple[str, ...]
    frames: int
    takes: int = 2
    frame_jitter: float = 0.2


SIZES: dict[str, SyntheticSize] = {
    "tiny": SyntheticSize(("Directions", "Walking"), frames=200),
    "default": SyntheticSize(
        ("Directions", "Discussion", "Greeting", "Photo", "Purchases", "Sitting", "SittingDown", "Walking"),
        frames=1200,
    ),
}


def synthetic_size(size: str) -> SyntheticSize:
    """Look a size up, naming the valid ones when it is unknown."""
    try:
        return SIZES[size]
    except KeyError:
        raise InputError(f"unknown synthetic dataset size {size!r}; valid: {', '.join(SIZES)}") from None


@dataclass(frozen=True)
class SynthesisSummary:
    """What :func:`synthesize_h36m` wrote: per-subject counts, sources, and file sizes in bytes."""

    directory: Path
    size: str
    seed: int
    subjects: tuple[str, ...]
    actions: Mapping[str, int]
    frames: Mapping[str, int]
    sources: tuple[str, ...]
    file_sizes: Mapping[str, int]

    @property
    def total_frames(self) -> int:
        return sum(self.frames.values())

    def format(self) -> str:
        """A short table: one line per subject, then the files."""
        lines = [f"synthetic Human3.6M ({self.size}, seed {self.seed}) in {self.directory}"]
        lines += [f"  {'subject':<8}{'actions':>8}{'frames':>9}"]
        lines += [f"  {s:<8}{self.actions[s]:>8}{self.frames[s]:>9}" for s in self.subjects]
        lines += [f"  {'total':<8}{sum(self.actions.values()):>8}{self.total_frames:>9}  ({FPS:g} fps, 4 cameras)"]
        lines += [f"  {name:<28}{size / 2**20:>8.1f} MiB" for name, size in self.file_sizes.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def h36m_keypoints_2d(world_32: np.ndarray, cameras: Sequence[CameraParameters]) -> list[np.ndarray]:
    """Project ``(T, 32, 3)`` world metres into each camera: a list of ``(T, 17, 2)`` float32 pixel arrays."""
    points = H36M_17.convert_from(H36M_32, world_32)
    return list(project_to_pixels(points, cameras)[0].astype(np.float32))


def keypoints_metadata(layout_name: str | None) -> dict:
    """The ``metadata`` entry of a 2D file; the real ``gt`` file has no ``layout_name``."""
    symmetry = [list(H36M_17.left), list(H36M_17.right)]
    metadata = {"num_joints": H36M_17.num_joints, "keypoints_symmetry": symmetry}
    return metadata if layout_name is None else {"layout_name": layout_name, **metadata}


def _synthesize_arrays(spec: SyntheticSize, seed: int) -> tuple[dict, dict]:
    """``positions_3d`` (subject -> action -> array) and ``positions_2d`` per source (-> list of views)."""
    positions_3d, positions_2d = {}, {source: {} for source in SYNTHETIC_2D_SOURCES}
    for subject in H36M_SUBJECTS:
        cameras = h36m_cameras(subject)
        motions = generate_subject_motions(
            subject, spec.actions, spec.frames, capture_volume(cameras), seed, spec.takes, spec.frame_jitter
        )
        positions_3d[subject] = {}
        for source in SYNTHETIC_2D_SOURCES:
            positions_2d[source][subject] = {}
        for action, motion in motions.items():
            world = to_layout(motion, H36M_32, H36M_COINCIDENT_JOINTS).astype(np.float32)
            exact = h36m_keypoints_2d(world, cameras)
            positions_3d[subject][action] = world
            positions_2d["gt"][subject][action] = exact
            positions_2d["noisy"][subject][action] = [
                corrupt_keypoints(view, H36M_17, seeded_rng(seed, "noisy", subject, action, camera.id)).points
                for view, camera in zip(exact, cameras, strict=True)
            ]
    return positions_3d, positions_2d


def synthesize_h36m(out_dir: str | Path, size: str = "default", seed: int = 0) -> SynthesisSummary:
    """Write ``data_3d_h36m.npz`` and ``data_2d_h36m_{gt,noisy}.npz`` for S1, S5-S9, S11 into ``out_dir``.

    Deterministic in ``(size, seed)``. Each file is written atomically (temporary file + rename).
    """
    spec = synthetic_size(size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    positions_3d, positions_2d = _synthesize_arrays(spec, seed)
    contents = {
        FILE_3D: {"positions_3d": positions_3d},
        file_2d("gt"): {"positions_2d": positions_2d["gt"], "metadata": keypoints_metadata(None)},
        file_2d("noisy"): {"positions_2d": positions_2d["noisy"], "metadata": keypoints_metadata("h36m")},
    }
    save_npz_files(out_dir, contents)
    return SynthesisSummary(
        directory=out_dir,
        size=size,
        seed=seed,
        subjects=tuple(positions_3d),
        actions={s: len(actions) for s, actions in positions_3d.items()},
        frames={s: sum(len(a) for a in actions.values()) for s, actions in positions_3d.items()},
        sources=SYNTHETIC_2D_SOURCES,
        file_sizes={name: (out_dir / name).stat().st_size for name in contents},
    )


def _is_complete(directory: Path) -> bool:
    names = [FILE_3D, *(file_2d(source) for source in SYNTHETIC_2D_SOURCES)]
    return all((directory / name).is_file() for name in names)


def ensure_synthetic_h36m(cache_dir: str | Path, size: str = "default", seed: int = 0) -> Path:
    """Return ``cache_dir / f"synthetic_h36m_{size}_seed{seed}"``, generating it first if it is not complete.

    Generation goes to a temporary sibling directory renamed into place at the end, so an interrupted run
    never leaves a half-written dataset; concurrent callers (e.g. DDP ranks) keep whichever finished first.
    """
    synthetic_size(size)  # fail on an unknown size before touching the disk
    target = Path(cache_dir) / f"synthetic_h36m_{size}_seed{seed}"
    # A lambda, not a bound reference: the generator is looked up at call time (tests replace it).
    return build_directory_atomically(target, lambda staging: synthesize_h36m(staging, size, seed), _is_complete)
