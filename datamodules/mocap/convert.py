"""Motion capture -> a Human3.6M dataset in the VideoPose3D file formats.

``poselift synthesize --from-mocap PATH --out DIR`` reads BVH/TRC files (a file, a folder laid out as
``<subject>/<action>.bvh``, or a YAML manifest), converts each clip (:mod:`datamodules.mocap.clips`), places it
in view of a camera rig (:mod:`datamodules.mocap.placement`; the Human3.6M cameras of each subject by default),
projects it, and writes what :class:`datamodules.human36m.Human36mDataModule` reads:

- ``data_3d_h36m.npz``: ``positions_3d`` subject -> action -> ``(T, 32, 3)`` world metres (z up);
- ``data_2d_h36m_gt.npz``: the exact projections; ``data_2d_h36m_noisy.npz``: the same through a 2D detector's
  errors (:func:`datamodules.synthetic.corrupt_keypoints`);
- ``cameras.json``: every subject's cameras (:mod:`datamodules.camera_rig`), which the reader then uses;
- ``conversion.json``: where each action came from (file, frames, units, up axis, mapping, placement).

Everything is computed before anything is written, and each file is written atomically: a conversion that
fails leaves the output folder as it was.

A manifest names subjects and actions and may cut files in time::

    clips:
      - {file: takes/walk.bvh, subject: S1, action: Walking, start: 0, end: 30}   # seconds; paths relative
      - {file: takes/walk.bvh, subject: S9, action: Walking, start: 30}           # to the manifest
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from components.atomic import write_text_atomic
from components.camera import H36M_SUBJECTS_WITH_CAMERAS, CameraParameters, h36m_cameras
from components.errors import InputError
from components.skeleton import H36M_17, H36M_32
from datamodules.camera_rig import RIG_FILE, random_rig, save_subject_cameras
from datamodules.mocap.clips import FORMATS, TARGET_FPS, load_clip
from datamodules.mocap.errors import MocapFormatError
from datamodules.mocap.mapping import JointMapping
from datamodules.mocap.placement import TOES, on_floor, place_clip
from datamodules.synthetic.detector import corrupt_keypoints
from datamodules.synthetic.files import save_npz_files
from datamodules.synthetic.h36m import FILE_3D, file_2d, h36m_keypoints_2d, keypoints_metadata
from datamodules.synthetic.seeding import seeded_rng
from datamodules.synthetic.volume import CaptureVolume, capture_volume

CONVERSION_FILE = "conversion.json"


@dataclass(frozen=True)
class ClipEntry:
    """One clip to convert: a file (or the ``start``-``end`` seconds of it) as ``subject``'s ``action``."""

    path: Path
    subject: str
    action: str
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class MocapOptions:
    """How clips are read and placed (see :func:`datamodules.mocap.clips.load_clip`).

    Attributes:
        rig: cameras for every subject (None: each subject's Human3.6M cameras; subjects without Human3.6M
            cameras take those of S1, S5, ... in turn).
        min_seconds: the shortest piece a clip is cut into to fit the cameras' view.
        split: cut clips into pieces that fit (False: each clip must fit whole).
        seed: seeds the facings, the detector noise and random cameras.
        random_cameras: give every subject its own random rig of 4 everyday cameras
            (:func:`datamodules.camera_rig.random_rig`: height, tilt, roll, distance, focal length, portrait or
            landscape frames) instead of the Human3.6M studio, so a lifter trained on the set meets real videos'
            viewpoints; excludes ``rig``.
    """

    mapping: JointMapping | None = None
    units: str = "auto"
    up: str = "auto"
    rig: tuple[CameraParameters, ...] | None = None
    min_seconds: float = 1.0
    split: bool = True
    seed: int = 0
    random_cameras: bool = False


@dataclass(frozen=True)
class MocapSummary:
    """What a conversion wrote: frames per subject and the files' sizes (bytes)."""

    directory: Path
    frames: dict[str, int]
    actions: dict[str, int]
    files: dict[str, int]
    dropped_frames: int

    def format(self) -> str:
        lines = [f"motion capture -> Human3.6M files in {self.directory} ({TARGET_FPS:g} fps)"]
        lines += [f"  {'subject':<10}{'actions':>8}{'frames':>9}"]
        lines += [f"  {s:<10}{self.actions[s]:>8}{self.frames[s]:>9}" for s in self.frames]
        lines += [f"  {'total':<10}{sum(self.actions.values()):>8}{sum(self.frames.values()):>9}"]
        if self.dropped_frames:
            lines.append(f"  {self.dropped_frames} frames left out: clip tails shorter than the shortest piece")
        lines += [f"  {name:<28}{size / 2**20:>8.2f} MiB" for name, size in self.files.items()]
        return "\n".join(lines)


def find_entries(path: str | Path, subject: str = "S1") -> list[ClipEntry]:
    """The clips of ``path``: a manifest (``.yaml``/``.yml``), one motion file (``subject``'s action named
    after the file), or a folder of ``<subject>/<action>.<bvh|trc>`` (files directly in it belong to
    ``subject``)."""
    path = Path(path)
    if not path.exists():
        raise MocapFormatError(f"{path}: no such file or folder")
    if path.suffix.lower() in (".yaml", ".yml"):
        return read_manifest(path)
    if path.is_file():
        return [ClipEntry(path, subject, path.stem)]
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in FORMATS and p.is_file())
    entries = []
    for file in files:
        depth = len(file.relative_to(path).parts)
        if depth > 2:
            raise MocapFormatError(f"{file}: too deep; a folder holds <subject>/<action>.bvh (or .trc)")
        entries.append(ClipEntry(file, file.parent.name if depth == 2 else subject, file.stem))
    if not entries:
        raise MocapFormatError(f"{path}: no {'/'.join(FORMATS)} files (a folder holds <subject>/<action>.bvh)")
    return entries


def read_manifest(path: Path) -> list[ClipEntry]:
    """A manifest's clips (see the module docstring)."""
    import yaml

    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise MocapFormatError(f"{path}: cannot read the manifest ({str(error).splitlines()[0]})") from None
    clips = content.get("clips") if isinstance(content, dict) else None
    if not isinstance(clips, list) or not clips:
        raise MocapFormatError(f"{path}: a manifest has a non-empty list under 'clips'")
    entries = []
    for index, clip in enumerate(clips):
        where = f"{path}: clips[{index}]"
        if not isinstance(clip, dict) or not {"file", "subject", "action"} <= set(clip):
            raise MocapFormatError(f"{where}: needs file, subject and action (optional start, end), got {clip!r}")
        unknown = set(clip) - {"file", "subject", "action", "start", "end"}
        if unknown:
            raise MocapFormatError(f"{where}: unknown key(s) {sorted(unknown)}")
        seconds = {key: float(clip[key]) if clip.get(key) is not None else None for key in ("start", "end")}
        file = (path.parent / str(clip["file"])).resolve()
        entries.append(ClipEntry(file, str(clip["subject"]), str(clip["action"]), **seconds))
    return entries


def convert_mocap(
    entries: Sequence[ClipEntry], out_dir: str | Path, options: MocapOptions = MocapOptions()
) -> MocapSummary:
    """Convert ``entries`` and write the dataset files into ``out_dir`` (see the module docstring)."""
    out_dir = Path(out_dir)
    subjects = sorted({entry.subject for entry in entries}, key=lambda s: [e.subject for e in entries].index(s))
    if options.random_cameras and options.rig is not None:
        raise InputError("give either a camera rig or random cameras, not both")
    cameras = {subject: _cameras(subject, i, options) for i, subject in enumerate(subjects)}
    positions_3d = {subject: {} for subject in subjects}
    provenance, dropped = [], 0
    for entry in entries:
        pieces, left = _convert_entry(entry, cameras[entry.subject], options)
        dropped += left
        for piece in pieces:
            key = _action_key(positions_3d[entry.subject], entry.action)
            positions_3d[entry.subject][key] = piece.world.astype(np.float32)
            provenance.append(_provenance(entry, key, piece))
    positions_2d = _project(positions_3d, cameras, options.seed)
    contents = {
        FILE_3D: {"positions_3d": positions_3d},
        file_2d("gt"): {"positions_2d": positions_2d["gt"], "metadata": keypoints_metadata(None)},
        file_2d("noisy"): {"positions_2d": positions_2d["noisy"], "metadata": keypoints_metadata("h36m")},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    save_npz_files(out_dir, contents)
    save_subject_cameras(out_dir / RIG_FILE, cameras)
    write_text_atomic(out_dir / CONVERSION_FILE, json.dumps({"fps": TARGET_FPS, "actions": provenance}, indent=1))
    names = [*contents, RIG_FILE, CONVERSION_FILE]
    return MocapSummary(
        out_dir,
        frames={s: sum(len(a) for a in positions_3d[s].values()) for s in subjects},
        actions={s: len(positions_3d[s]) for s in subjects},
        files={name: (out_dir / name).stat().st_size for name in names},
        dropped_frames=dropped,
    )


def _cameras(subject: str, index: int, options: MocapOptions) -> tuple[CameraParameters, ...]:
    if options.random_cameras:
        return _roomy_random_rig(np.random.default_rng([options.seed, index, 0xCA]), subject)
    if options.rig is not None:
        return tuple(options.rig)
    if subject in H36M_SUBJECTS_WITH_CAMERAS:
        return h36m_cameras(subject)
    return h36m_cameras(H36M_SUBJECTS_WITH_CAMERAS[index % len(H36M_SUBJECTS_WITH_CAMERAS)])


def _roomy_random_rig(rng: np.random.Generator, subject: str, min_axis: float = 0.3, tries: int = 200):
    """A random rig whose shared floor area lets a person walk (both semi-axes of the area at least ``min_axis``
    metres); rigs whose views barely overlap are drawn again from the same stream, so the result stays seeded."""
    for _ in range(tries):
        rig = random_rig(rng)
        try:
            volume = _volume(rig)
        except InputError:
            continue
        if np.linalg.norm(volume.axes, axis=0).min() >= min_axis:
            return rig
    raise InputError(f"subject {subject}: no random camera rig out of {tries} left {min_axis} m to walk in")


@cache
def _volume(cameras: tuple[CameraParameters, ...]) -> CaptureVolume:
    return capture_volume(cameras)


def _convert_entry(entry: ClipEntry, cameras, options: MocapOptions):
    clip = load_clip(entry.path, options.mapping, options.units, options.up, entry.start, entry.end)
    world = on_floor(clip.world, all(H36M_32.joint_names[toe] in clip.mapped for toe in TOES))
    where = f"{entry.path}" + (f" ({entry.start}-{entry.end} s)" if entry.start or entry.end else "")
    min_frames = max(2, int(round(options.min_seconds * TARGET_FPS)))

    def rng_for(start: int) -> np.random.Generator:
        return seeded_rng(options.seed, "placement", entry.subject, entry.action, str(entry.path.name), str(start))

    return place_clip(world, _volume(cameras), rng_for, min_frames, options.split, where)


def _action_key(existing: dict, action: str) -> str:
    """``action``, then ``action 1``, ``action 2`` ... (Human3.6M's sub-action keys), whichever is free."""
    if action not in existing:
        return action
    number = 1
    while f"{action} {number}" in existing:
        number += 1
    return f"{action} {number}"


def _provenance(entry: ClipEntry, key: str, piece) -> dict:
    return {
        "subject": entry.subject,
        "action": key,
        "file": str(entry.path),
        "window_seconds": [entry.start, entry.end],
        "frames_at_50fps": [piece.start, piece.stop],
        "yaw_degrees": round(float(np.degrees(piece.yaw)), 3),
        "shift_metres": [round(v, 4) for v in piece.shift],
    }


def _project(positions_3d: dict, cameras: dict, seed: int) -> dict[str, dict]:
    """``gt`` and ``noisy`` 2D: subject -> action -> list of ``(T, 17, 2)`` float32 pixels per camera."""
    out = {"gt": {}, "noisy": {}}
    for subject, actions in positions_3d.items():
        out["gt"][subject], out["noisy"][subject] = {}, {}
        for action, world in actions.items():
            exact = h36m_keypoints_2d(world, cameras[subject])
            out["gt"][subject][action] = exact
            out["noisy"][subject][action] = [
                corrupt_keypoints(view, H36M_17, seeded_rng(seed, "noisy", subject, action, camera.id)).points
                for view, camera in zip(exact, cameras[subject], strict=True)
            ]
    return out
