"""Synthetic MPI-INF-3DHP, written in the real file formats and folder layout (reference/datasets.md B1, B2).

The real dataset is licensed; this one lets the 3DHP readers, protocols and regimes run on a fresh machine.
It comes from the same motion engine as the synthetic Human3.6M and is read by the real readers
(:mod:`datamodules.mpi_inf_3dhp_files`)::

    <root>/S1..S8/Seq1..Seq2/annot.mat              28 joints x 14 cameras (MATLAB v5)
    <root>/S1..S8/Seq1..Seq2/camera.calibration     the subject's 14-camera rig (Skeletool text)
    <root>/mpi_inf_3dhp_test_set/TS1..TS6/annot_data.mat   17 joints, one camera (MATLAB v7.3)

- Training: each subject has its own rig (:func:`train_rig`): 11 cameras on a ring at chest height and 3 on
  the ceiling looking down, all 2048x2048 without distortion. A recording runs several motion kinds in turn
  (:func:`~datamodules.synthetic.recording.simulate_recording`) at the recording's real frame rate (25 or
  50 fps: the engine's 50 fps motion, every other frame for 25 fps), for a fraction of the real frame count.
- Test: TS1-TS4 are seen by the studio camera and TS5-TS6 by the outdoor one (with its lens distortion) of
  :data:`~datamodules.mpi_inf_3dhp_files.TEST_CAMERAS`, from 3-5 m (studio) or about 6 m (outdoor); blocks
  of the seven activities in turn (:data:`ACTIVITY_MOTIONS`), some frames marked invalid. The test subjects
  are bodies of their own (``subject_body("TS1")`` ...).
- ``annot3`` is in each camera's frame in mm; ``univ_annot3`` is ``annot3`` scaled about the pelvis by
  :data:`UNIVERSAL_HEIGHT` / the subject's height; ``annot2`` is the projection of ``annot3`` in pixels.

Everything is deterministic in ``(size, seed)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from components.camera import CameraParameters
from components.errors import InputError
from components.geometry import look_at
from components.skeleton import MPI_INF_3DHP_17, MPI_INF_3DHP_28, Skeleton
from datamodules.mpi_inf_3dhp_files import (
    ANNOT_MAT,
    CALIBRATION,
    NUM_TRAIN_CAMERAS,
    TEST_ANNOTATIONS,
    TEST_CAMERAS,
    TEST_FPS,
    TEST_SEQUENCES,
    TEST_SET_FOLDER,
    TRAIN_RECORDINGS,
)
from datamodules.mpi_inf_3dhp_writers import save_annot_mat, save_calibration, save_test_annotations
from datamodules.synthetic.body import HEIGHT_RANGE, BodyShape, subject_body, to_layout
from datamodules.synthetic.files import build_directory_atomically
from datamodules.synthetic.motions import ActionSpec
from datamodules.synthetic.projection import project_to_pixels, world_to_cameras
from datamodules.synthetic.recording import simulate_recording
from datamodules.synthetic.seeding import seeded_rng
from datamodules.synthetic.signals import FPS
from datamodules.synthetic.volume import CaptureVolume, capture_volume

EXTRA_ROWS = 3
"""Zero rows after the last frame of every ``annot.mat`` matrix, as the real arrays run past the frame count."""
UNIVERSAL_HEIGHT = sum(HEIGHT_RANGE) / 2
"""Standing height (metres) of the "universal" skeleton of ``univ_annot3``: the middle of the synthetic heights."""
TEST_DISTANCES = {"studio": 4.0, "outdoor": 6.0}
"""Distance (metres) from each test camera to the middle of the floor area: the outdoor lens sees less."""

ACTIVITY_MOTIONS: dict[int, ActionSpec] = {
    1: ActionSpec("walking"),  # Standing/Walking
    2: ActionSpec("bending"),  # Exercising: bend down and up
    3: ActionSpec("sitting"),  # Sitting
    4: ActionSpec("reaching"),  # Reaching/Crouching
    5: ActionSpec("crouching"),  # On The Floor: the lowest poses the engine makes
    6: ActionSpec("walking", {"speed": 1.5, "arm_swing": 1.5}),  # Sports: fast strides, big arm swings
    7: ActionSpec("gestures", {"wave": True}),  # Miscellaneous
}
"""Motion of each test-set activity 1..7 (``ACTIVITIES`` in :mod:`datamodules.mpi_inf_3dhp_files`)."""
TRAIN_MOTIONS: tuple[ActionSpec, ...] = (
    *ACTIVITY_MOTIONS.values(),
    ActionSpec("turning"),
    ActionSpec("gestures", {"phone": True}),
)
"""The motions training recordings draw from: every activity's, and two more."""


@dataclass(frozen=True)
class SyntheticSize3DHP:
    """A dataset size: ``scale`` x the real frame count of each recording (at least ``min_frames``), made of
    ``segments`` motions in turn."""

    scale: float
    min_frames: int
    segments: int

    def frames(self, real_frames: int) -> int:
        """Frame count of a recording whose real counterpart has ``real_frames`` frames."""
        return max(self.min_frames, round(real_frames * self.scale))


SIZES_3DHP: dict[str, SyntheticSize3DHP] = {
    "tiny": SyntheticSize3DHP(scale=0.01, min_frames=40, segments=2),
    "default": SyntheticSize3DHP(scale=0.1, min_frames=200, segments=5),
}


def synthetic_size_3dhp(size: str) -> SyntheticSize3DHP:
    """Look a size up, naming the valid ones when it is unknown."""
    try:
        return SIZES_3DHP[size]
    except KeyError:
        raise InputError(f"unknown synthetic 3DHP size {size!r}; valid: {', '.join(SIZES_3DHP)}") from None


def synthetic_3dhp_files(root: str | Path) -> list[Path]:
    """Every file of a complete synthetic 3DHP under ``root``: training files first, then the test set."""
    root = Path(root)
    train = [root / s / q / name for s, q in TRAIN_RECORDINGS for name in (ANNOT_MAT, CALIBRATION)]
    return train + [root / TEST_SET_FOLDER / name / TEST_ANNOTATIONS for name in TEST_SEQUENCES]


# --------------------------------------------------------------------------- cameras


def _look_at(centre: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """Orientation ``(4,)`` (w, x, y, z), camera -> world, of a camera at ``centre`` looking at ``target``.

    Camera axes are x right, y down, z forward; the world is z up. ``roll`` (radians) turns the image about
    the optical axis.
    """
    from scipy.spatial.transform import Rotation

    quaternion = Rotation.from_matrix(look_at(centre, target, roll)).as_quat(scalar_first=True)
    return quaternion * np.sign(quaternion[0])


def _rig_camera(index: int, rng: np.random.Generator) -> CameraParameters:
    """Camera ``index`` of a training rig: 0-10 on a ring at chest height, 11-13 on the ceiling (metres)."""
    ring = NUM_TRAIN_CAMERAS - 3
    if index < ring:
        azimuth = 2 * np.pi * index / ring + rng.uniform(-0.08, 0.08)
        radius, height, aim = rng.uniform(3.5, 4.5), rng.uniform(1.0, 1.6), rng.uniform(0.8, 1.1)
    else:
        azimuth = 2 * np.pi * (index - ring) / 3 + np.pi / 3 + rng.uniform(-0.1, 0.1)
        radius, height, aim = rng.uniform(1.6, 2.2), rng.uniform(3.5, 4.0), 0.4
    centre = np.array([radius * np.cos(azimuth), radius * np.sin(azimuth), height])
    target = np.array([*rng.normal(0.0, 0.1, 2), aim])
    focal = rng.uniform(1480.0, 1520.0)
    return CameraParameters(
        id=str(index),
        width=2048,
        height=2048,
        focal_length=(focal, focal * rng.uniform(0.999, 1.001)),
        center=tuple(float(c) for c in 1024.0 + rng.uniform(-15.0, 15.0, 2)),
        radial_distortion=(0.0, 0.0, 0.0),
        tangential_distortion=(0.0, 0.0),
        orientation=tuple(float(q) for q in _look_at(centre, target, rng.uniform(-0.02, 0.02))),
        translation=tuple(float(c) for c in centre),
    )


def train_rig(subject: str, seed: int = 0) -> tuple[CameraParameters, ...]:
    """The 14 cameras of ``subject``'s training recordings, named ``"0"`` .. ``"13"``.

    Cameras 0-10 stand on a ring of radius 3.5-4.5 m at 1.0-1.6 m, looking at the centre of the floor area
    with a small downward tilt; 11-13 hang at 3.5-4.0 m and look steeply down. All are 2048x2048 with
    fx ~ fy ~ 1500 px, principal points within 15 px of the image centre and no distortion. Every subject's
    rig differs slightly (positions, aims, intrinsics), deterministically in ``(subject, seed)``.
    """
    rng = seeded_rng(seed, "mpi_inf_3dhp", "rig", subject)
    return tuple(_rig_camera(index, rng) for index in range(NUM_TRAIN_CAMERAS))


def _test_scene_camera(name: str, seed: int = 0) -> CameraParameters:
    """The camera of test sequence ``name`` placed in the engine's world: ``TEST_CAMERAS[name]``'s intrinsics,
    at 1.1-1.4 m, looking along +x at the subject's mid-height 4 m (studio) or 6 m (outdoor) away."""
    rng = seeded_rng(seed, "mpi_inf_3dhp", "test camera", name)
    camera = TEST_CAMERAS[name]
    centre = np.array([0.0, 0.0, rng.uniform(1.1, 1.4)])
    target = np.array([TEST_DISTANCES[camera.id], rng.uniform(-0.2, 0.2), rng.uniform(0.8, 1.0)])
    orientation = _look_at(centre, target, rng.uniform(-0.02, 0.02))
    return replace(
        camera, orientation=tuple(float(q) for q in orientation), translation=tuple(float(c) for c in centre)
    )


def _test_volume(camera: CameraParameters, body_radius: float = 0.8, body_height: float = 1.95) -> CaptureVolume:
    """An elliptic floor area in front of a single test camera, checked like :func:`capture_volume` checks.

    Raises:
        ValueError: the camera does not see a ``body_radius`` x ``body_height`` cylinder on the area's rim.
    """
    distance = TEST_DISTANCES[camera.id]
    volume = CaptureVolume((camera,), np.array([distance, 0.0]), np.diag([0.15, 0.2]) * distance)
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    rim = np.stack([np.cos(angles), np.sin(angles)], axis=-1) @ volume.axes.T + volume.centre
    cylinder = body_radius * np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=-1)
    cylinder = np.concatenate([cylinder, cylinder + [0.0, 0.0, body_height]])
    if not volume.sees(np.concatenate([rim, np.zeros((len(rim), 1))], axis=-1)[:, None] + cylinder).all():
        raise InputError(f"test camera {camera.id!r} does not see the whole floor area at {distance} m")
    return volume


# --------------------------------------------------------------------------- recordings


def _engine_step(fps: float) -> int:
    """How many 50 fps engine frames make one frame at ``fps``."""
    step = round(FPS / fps)
    if step < 1 or abs(FPS / step - fps) > 1e-9:
        raise InputError(f"frame rate {fps} fps is not the engine's {FPS:g} fps divided by a whole number")
    return step


def _universal(annot3: np.ndarray, skeleton: Skeleton, height: float) -> np.ndarray:
    """``annot3`` ``(..., joints, 3)`` scaled about the pelvis to the universal height (same units)."""
    pelvis = annot3[..., skeleton.index("pelvis") : skeleton.index("pelvis") + 1, :]
    return pelvis + (UNIVERSAL_HEIGHT / height) * (annot3 - pelvis)


def _draw_specs(rng: np.random.Generator, choices: Sequence, count: int) -> list:
    """``count`` distinct entries of ``choices`` in random order."""
    return [choices[i] for i in rng.choice(len(choices), count, replace=False)]


def _recording(
    specs: Sequence[ActionSpec], frames: int, fps: float, body: BodyShape, volume: CaptureVolume, rng
) -> tuple[np.ndarray, np.ndarray]:
    """World positions ``(frames, joints, 3)`` (BODY order, metres) at ``fps`` and the segment ``(frames,)``."""
    step = _engine_step(fps)
    recording = simulate_recording(specs, frames * step, body, volume, rng)
    return recording.positions[::step], recording.segment[::step]


def _train_arrays(
    subject: str, sequence: str, spec: SyntheticSize3DHP, seed: int, volume: CaptureVolume
) -> dict[str, np.ndarray]:
    """The arrays of one training ``annot.mat``, seen by the subject's rig (``volume.cameras``).

    Returns:
        ``annot2`` ``(14, F, 28, 2)`` pixels, ``annot3`` and ``univ_annot3`` ``(14, F, 28, 3)`` mm, each in
        its camera's frame, float64; F from ``spec`` and ``TRAIN_RECORDINGS[(subject, sequence)]``.
    """
    real_frames, fps = TRAIN_RECORDINGS[(subject, sequence)]
    rng = seeded_rng(seed, "mpi_inf_3dhp", "recording", subject, sequence)
    body = subject_body(subject, seed)
    motions = _draw_specs(rng, TRAIN_MOTIONS, spec.segments)
    positions, _ = _recording(motions, spec.frames(real_frames), fps, body, volume, rng)
    world, rig = to_layout(positions, MPI_INF_3DHP_28), volume.cameras
    annot3 = world_to_cameras(world, rig) * 1000.0  # m -> mm
    return {
        "annot2": project_to_pixels(world, rig)[0],
        "annot3": annot3,
        "univ_annot3": _universal(annot3, MPI_INF_3DHP_28, body.height),
    }


def _valid_frames(frames: int, rng: np.random.Generator) -> np.ndarray:
    """``(frames,)`` bool: invalid at the start and in one block near the middle, 5 % of the frames each."""
    valid = np.ones(frames, dtype=bool)
    block = max(1, round(0.05 * frames))
    valid[:block] = False
    start = int(rng.uniform(0.3, 0.7) * frames)
    valid[start : start + block] = False
    return valid


def _test_arrays(name: str, spec: SyntheticSize3DHP, seed: int) -> dict[str, np.ndarray]:
    """The arrays of one test ``annot_data.mat``.

    Returns:
        ``annot2`` ``(F, 17, 2)`` pixels through ``TEST_CAMERAS[name]`` (with its distortion),
        ``annot3`` / ``univ_annot3`` ``(F, 17, 3)`` mm in that camera's frame, ``valid`` ``(F,)`` bool and
        ``activity`` ``(F,)`` int64 in 1..7, in contiguous blocks.
    """
    scene = _test_scene_camera(name, seed)
    rng = seeded_rng(seed, "mpi_inf_3dhp", "test", name)
    body = subject_body(name, seed)
    activities = np.array(_draw_specs(rng, tuple(ACTIVITY_MOTIONS), spec.segments))
    motions = [ACTIVITY_MOTIONS[a] for a in activities]
    positions, segment = _recording(
        motions, spec.frames(TEST_SEQUENCES[name]), TEST_FPS[name], body, _test_volume(scene), rng
    )
    local = world_to_cameras(to_layout(positions, MPI_INF_3DHP_17), (scene,))[0]
    annot3 = local * 1000.0  # m -> mm
    return {
        "annot2": project_to_pixels(local, (TEST_CAMERAS[name],))[0][0],  # identity extrinsics: camera = world
        "annot3": annot3,
        "univ_annot3": _universal(annot3, MPI_INF_3DHP_17, body.height),
        "valid": _valid_frames(len(local), rng),
        "activity": activities[segment].astype(np.int64),
    }


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class SynthesisSummary3DHP:
    """What :func:`synthesize_3dhp` wrote: frame counts per recording (``"S1 Seq1"``) and test sequence."""

    directory: Path
    size: str
    seed: int
    train_frames: Mapping[str, int]
    test_frames: Mapping[str, int]

    def format(self) -> str:
        """A short table: training frames per subject, then test frames per sequence."""
        lines = [f"synthetic MPI-INF-3DHP ({self.size}, seed {self.seed}) in {self.directory}"]
        lines += [f"  {name:<10}{frames:>7} frames" for name, frames in self.train_frames.items()]
        lines += [f"  {name:<10}{frames:>7} frames" for name, frames in self.test_frames.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _write_subject(root: Path, subject: str, spec: SyntheticSize3DHP, seed: int) -> dict[str, int]:
    """Write ``annot.mat`` and ``camera.calibration`` of the subject's recordings; return their frame counts."""
    rig = train_rig(subject, seed)
    volume = capture_volume(rig, step=0.2)  # within a few cm of the 10 cm grid's ellipse, 4 times quicker
    frames = {}
    for sequence in (q for s, q in TRAIN_RECORDINGS if s == subject):
        folder = root / subject / sequence
        folder.mkdir(parents=True, exist_ok=True)
        arrays = _train_arrays(subject, sequence, spec, seed, volume)
        save_annot_mat(folder / ANNOT_MAT, **arrays, extra_rows=EXTRA_ROWS)
        save_calibration(folder / CALIBRATION, rig)
        frames[f"{subject} {sequence}"] = arrays["annot2"].shape[1]
    return frames


def _write_test(root: Path, name: str, spec: SyntheticSize3DHP, seed: int) -> int:
    """Write one test sequence's ``annot_data.mat``; return its frame count."""
    folder = root / TEST_SET_FOLDER / name
    folder.mkdir(parents=True, exist_ok=True)
    arrays = _test_arrays(name, spec, seed)
    save_test_annotations(folder / TEST_ANNOTATIONS, **arrays)
    return len(arrays["annot2"])


def synthesize_3dhp(out_dir: str | Path, size: str = "default", seed: int = 0) -> SynthesisSummary3DHP:
    """Write the synthetic training recordings (S1-S8, Seq1-Seq2) and test sequences (TS1-TS6) into ``out_dir``.

    Deterministic in ``(size, seed)``; each file is written atomically (temporary file + rename).
    """
    spec = synthetic_size_3dhp(size)
    root = Path(out_dir)
    train = {}
    for subject in dict.fromkeys(subject for subject, _ in TRAIN_RECORDINGS):
        train.update(_write_subject(root, subject, spec, seed))
    test = {name: _write_test(root, name, spec, seed) for name in TEST_SEQUENCES}
    return SynthesisSummary3DHP(root, size, seed, train, test)


def _is_complete(directory: Path) -> bool:
    return all(path.is_file() for path in synthetic_3dhp_files(directory))


def ensure_synthetic_3dhp(cache_dir: str | Path, size: str = "default", seed: int = 0) -> Path:
    """Return ``cache_dir / f"synthetic_3dhp_{size}_seed{seed}"``, generating it first if it is not complete.

    Generation fills a temporary sibling folder renamed into place at the end, so an interrupted run never
    leaves a half-written dataset; concurrent callers (e.g. DDP ranks) keep whichever finished first.
    """
    synthetic_size_3dhp(size)  # fail on an unknown size before touching the disk
    target = Path(cache_dir) / f"synthetic_3dhp_{size}_seed{seed}"
    # A lambda, not a bound reference: the generator is looked up at call time (tests replace it).
    return build_directory_atomically(target, lambda staging: synthesize_3dhp(staging, size, seed), _is_complete)
