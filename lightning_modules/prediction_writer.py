"""Write ``poselift predict`` results per video: arrays (``.npz``), readable frames (``.json``), and optionally an
animation (GIF/MP4) and a contact sheet (PNG).

``LiftingModule.predict_step`` returns one dict per evaluation chunk (``poses_3d`` ``(B, T, J_out, 3)`` metres,
optionally ``trajectory`` ``(B, T, 1, 3)`` metres, ``sequence`` and ``start`` ``(B,)``). Chunks arrive in any
order, and under DDP each process holds only its shard; :class:`PosePredictionWriter` gathers every shard on
rank 0, puts each chunk's frames in place with one scatter (:func:`assemble_sequences`) and writes.

Per video ``NAME`` (the datamodule's ``videos``, e.g. :class:`datamodules.detections.DetectionsDataModule`):

- ``NAME.npz``: ``poses_3d`` ``(F, J_out, 3)`` float32 millimetres, root-relative, camera space (x right, y down,
  z forward); ``trajectory`` ``(F, 1, 3)`` mm, the root in camera space (only when the model has a trajectory
  model); ``keypoints_2d`` ``(F, J_in, 2)`` pixels after filling; ``scores`` ``(F, J_in)``; ``filled``
  ``(F, J_in)`` bool; ``empty_frames`` ``(F,)`` bool; ``person`` ``(F,)`` int64 (-1: nobody);
  ``joint_names`` ``(J_out,)``; ``input_joint_names`` ``(J_in,)``; ``fps``, ``width``, ``height``; ``track``
  (the person's track id: ``people="all"`` writes one ``NAME_person<track>`` set per tracked person).
- ``NAME.json``: the same, one object per frame.
- ``NAME.gif``/``.mp4`` and ``NAME.png`` when ``render``/``sheet`` are on; for a video input the animation is
  ``NAME.mp4`` with the 2D drawn over the original frames beside the 3D view (the input's frame count and rate).

Every file is written to a temporary file in ``out_dir`` and renamed, so a file either is complete or absent.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from components.atomic import atomic_destination
from components.errors import InputError
from components.skeleton import Skeleton

MM_PER_M = 1000.0
DECIMALS = 2  # JSON precision: 0.01 mm and 0.01 px are far below any lifter's error
CHUNK_KEYS = ("sequence", "start")
JSON_UNITS = {
    "poses_3d": "millimetres, root-relative, camera space (x right, y down, z forward)",
    "trajectory": "millimetres, the root (pelvis) in camera space",
    "keypoints_2d": "pixels [x, y, score], after following one person and filling gaps",
}


class FrameBatches(Protocol):
    """The original frames of a video input (``datamodules.video.FrameSource``)."""

    def batches(self, size: int) -> Iterator[np.ndarray]: ...


class PredictedVideo(Protocol):
    """What the writer reads of each video in ``datamodule.videos`` (``datamodules.detections.VideoTrack``)."""

    name: str
    keypoints: np.ndarray  # (F, J_in, 3) pixels [x, y, score], the 2D that was lifted
    filled: np.ndarray  # (F, J_in) bool
    empty_frames: np.ndarray  # (F,) bool
    person: np.ndarray  # (F,) int64, -1 where nobody
    width: float  # pixels
    height: float
    fps: float
    track: int  # the person's track id (0 when one person per video is lifted)
    frames: FrameBatches | None  # the original frames (a video input), else None

    def __len__(self) -> int: ...


def chunk_arrays(output: Mapping[str, object]) -> dict[str, np.ndarray]:
    """One ``predict_step`` output as NumPy arrays on the CPU (what is gathered and assembled)."""
    arrays = {}
    for key, value in output.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        arrays[key] = np.asarray(value)
    return arrays


def assemble_sequences(
    chunks: Sequence[Mapping[str, np.ndarray]], lengths: Sequence[int], key: str
) -> list[np.ndarray]:
    """Put the ``key`` frames of evaluation chunks, given in any order, back into whole sequences.

    Args:
        chunks: dicts with ``key`` ``(B, T, J, C)``, ``sequence`` ``(B,)`` and ``start`` ``(B,)`` (first frame of
            each window in its sequence); ``T`` may differ between chunks.
        lengths: ``(S,)`` frames of every sequence.
        key: which array to assemble (``poses_3d``, ``trajectory``).

    Returns:
        One ``(lengths[s], J, C)`` array per sequence. A frame given twice takes the later chunk's value (the
        evaluation sampler gives each once; a padding sampler may repeat identical frames).

    Raises:
        ValueError: a chunk lacks ``key``, reaches past its sequence, or some frame has no output.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    if not chunks:
        raise InputError(f"no predictions to assemble for {len(lengths)} sequences")
    missing_key = [index for index, chunk in enumerate(chunks) if key not in chunk]
    if missing_key:
        raise InputError(f"prediction chunk {missing_key[0]} has no {key!r} (keys {sorted(chunks[missing_key[0]])})")
    frames, values = zip(*(_chunk_frames(chunk, key, lengths, offsets) for chunk in chunks), strict=True)
    frames, values = np.concatenate(frames), np.concatenate(values)
    out = np.empty((int(lengths.sum()), *values.shape[1:]), dtype=values.dtype)
    out[frames] = values
    covered = np.bincount(frames, minlength=len(out)) > 0
    if not covered.all():
        first = int(np.flatnonzero(~covered)[0])
        sequence = int(np.searchsorted(offsets, first, side="right") - 1)
        raise InputError(
            f"{int((~covered).sum())} frames have no prediction, first frame {first - offsets[sequence]} of "
            f"sequence {sequence} ({lengths[sequence]} frames): were the outputs of every process gathered?"
        )
    return np.split(out, offsets[1:])


def _chunk_frames(
    chunk: Mapping[str, np.ndarray], key: str, lengths: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(B * T,)`` global frame indices and ``(B * T, J, C)`` values of one chunk."""
    values, sequence, start = (np.asarray(chunk[name]) for name in (key, *CHUNK_KEYS))
    sequence, start = sequence.reshape(-1).astype(np.int64), start.reshape(-1).astype(np.int64)
    if values.ndim != 4 or len(values) != len(sequence) or len(start) != len(sequence):
        raise InputError(
            f"prediction chunk: {key} has shape {values.shape}, expected (B, T, J, C) with B = "
            f"{len(sequence)} sequence ids and {len(start)} starts"
        )
    if sequence.min() < 0 or sequence.max() >= len(lengths):
        raise InputError(f"prediction chunk: sequence ids {sequence.tolist()} outside 0..{len(lengths) - 1}")
    end = start + values.shape[1]
    past = end > lengths[sequence]
    if past.any() or (start < 0).any():
        bad = int(np.flatnonzero(past | (start < 0))[0])
        raise InputError(
            f"prediction chunk: frames {start[bad]}..{end[bad] - 1} lie outside sequence {sequence[bad]} "
            f"({lengths[sequence[bad]]} frames)"
        )
    frames = (offsets[sequence] + start)[:, None] + np.arange(values.shape[1])
    return frames.reshape(-1), values.reshape(-1, *values.shape[2:])


def gather_to_rank_zero(local: list) -> list | None:
    """Every process's ``local`` list concatenated on rank 0 (``None`` elsewhere); ``local`` when not distributed.

    Uses ``torch.distributed.all_gather_object`` (every rank must call it): predictions are small next to the
    model, and objects keep the chunks' varying lengths without padding.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return local
    world = torch.distributed.get_world_size()
    if world == 1:
        return local
    gathered: list = [None] * world
    torch.distributed.all_gather_object(gathered, local)
    if torch.distributed.get_rank() != 0:
        return None
    return [item for part in gathered for item in part]


def check_model_fits_data(model: pl.LightningModule, data: object, ckpt_path: str | None) -> None:
    """Refuse to lift 2D the model was not trained on, before any frame is lifted.

    The CLI links the data's layouts to the model, so a checkpoint trained on another 2D layout (e.g. COCO joints)
    would otherwise silently read the data's (Human3.6M) joints in the wrong places: the layouts stored in
    ``ckpt_path``'s hyper-parameters must equal the model's. The data's ``features`` (2: x, y; 3: with score) must
    equal the lifter's ``in_features``.
    """
    expected = {"input_layout": model.input_skeleton.name, "output_layout": model.output_skeleton.name}
    stored = _checkpoint_hyper_parameters(ckpt_path)
    for key, name in expected.items():
        if key in stored and stored[key] != name:
            raise InputError(
                f"checkpoint {ckpt_path} was trained with {key} {stored[key]!r}, but the data gives {name!r}: pass "
                f"--data.init_args.{key} {stored[key]}"
            )
    features, in_features = getattr(data, "features", None), getattr(model.lifter, "in_features", None)
    if features is not None and in_features is not None and features != in_features:
        raise InputError(
            f"the lifter takes {in_features} features per joint but the data gives {features}: pass "
            f"--data.init_args.features {in_features} (2: x, y; 3: x, y, score)"
        )


def _checkpoint_hyper_parameters(ckpt_path: str | None) -> dict:
    """The ``hyper_parameters`` of a local checkpoint file, or ``{}`` (no file, remote, or pickled objects that
    are not unpickled here: Lightning's own load decides about those)."""
    if not ckpt_path or not Path(ckpt_path).is_file():
        return {}
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError:
        return {}
    hyper_parameters = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    return hyper_parameters if isinstance(hyper_parameters, dict) else {}


def output_stem(name: str) -> str:
    """A file name for a video's outputs: its name with path separators and unusual characters made ``_``."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")
    return stem or "video"


class PosePredictionWriter(BasePredictionWriter):
    """Write every video's lifted poses after ``poselift predict`` (see the module docstring for the files).

    Args:
        out_dir: folder for the outputs (created). None: the trainer's ``default_root_dir``, where LightningCLI
            also saves the merged ``config.yaml``, a record of how the outputs were made.
        render: also write an animation of the 2D input beside the 3D output (a video input: an MP4 of its own
            frames with the 2D drawn over them, beside the 3D view).
        video_format: ``gif`` (no extra dependency) or ``mp4`` (needs ``imageio-ffmpeg``).
        sheet: also write a PNG contact sheet of evenly spaced frames.
    """

    def __init__(
        self,
        out_dir: str | None = None,
        render: bool = False,
        video_format: Literal["gif", "mp4"] = "gif",
        sheet: bool = False,
    ) -> None:
        super().__init__(write_interval="epoch")
        if video_format not in ("gif", "mp4"):
            raise InputError(f"video_format must be 'gif' or 'mp4', got {video_format!r}")
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.render, self.video_format, self.sheet = render, video_format, sheet
        self.written: list[dict[str, Path]] = []  # per video, the files of the last run (rank 0)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        check_model_fits_data(pl_module, trainer.datamodule, trainer.ckpt_path)
        if self.out_dir is None:
            self.out_dir = Path(trainer.default_root_dir)

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Sequence, batch_indices: Sequence
    ) -> None:
        chunks = gather_to_rank_zero([chunk_arrays(output) for output in predictions])
        if chunks is None:  # not rank 0: it sent its shard
            return
        videos = getattr(trainer.datamodule, "videos", None)
        if not videos:
            raise InputError(
                f"PosePredictionWriter needs a datamodule with per-video metadata ('videos'), such as "
                f"DetectionsDataModule; got {type(trainer.datamodule).__name__}"
            )
        stems = [output_stem(video.name) for video in videos]
        if len(set(stems)) < len(stems):
            names = [video.name for video, stem in zip(videos, stems, strict=True) if stems.count(stem) > 1]
            raise InputError(f"videos {names} would write to the same files in {self.out_dir}; rename them")
        lengths = [len(video) for video in videos]
        poses = assemble_sequences(chunks, lengths, "poses_3d")
        trajectories = assemble_sequences(chunks, lengths, "trajectory") if "trajectory" in chunks[0] else None
        input_skeleton, output_skeleton = pl_module.input_skeleton, pl_module.output_skeleton
        self.written = []
        for index, video in enumerate(videos):
            trajectory = None if trajectories is None else trajectories[index]
            self.written.append(self.write_video(video, poses[index], trajectory, input_skeleton, output_skeleton))

    def write_video(
        self,
        video: PredictedVideo,
        poses_3d: np.ndarray,
        trajectory: np.ndarray | None,
        input_skeleton: Skeleton,
        output_skeleton: Skeleton,
    ) -> dict[str, Path]:
        """Write one video's files; returns them by kind (``npz``, ``json``, ``video``, ``sheet``).

        Args:
            video: pixels, masks, size and fps (:class:`PredictedVideo`).
            poses_3d: ``(F, J_out, 3)`` root-relative camera-space metres. trajectory: ``(F, 1, 3)`` metres or None.
        """
        if poses_3d.shape[1:] != (output_skeleton.num_joints, 3) or len(poses_3d) != len(video):
            raise InputError(
                f"video {video.name!r}: predicted poses have shape {poses_3d.shape}, expected "
                f"({len(video)}, {output_skeleton.num_joints}, 3) for layout {output_skeleton.name!r}"
            )
        arrays = video_arrays(video, poses_3d, trajectory, input_skeleton, output_skeleton)
        stem = self.out_dir / output_stem(video.name)
        files = {"npz": stem.with_name(stem.name + ".npz"), "json": stem.with_name(stem.name + ".json")}
        with atomic_destination(files["npz"]) as temporary, open(temporary, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        with atomic_destination(files["json"]) as temporary:
            temporary.write_text(json.dumps(frames_json(video.name, arrays), indent=1))
        image_size = (video.width, video.height)
        if self.render and video.frames is not None:  # a video input: draw over its own frames
            files["video"] = stem.with_name(f"{stem.name}.mp4")
            from components.rendering import render_overlay

            render_overlay(
                video.frames.batches(16), video.keypoints, poses_3d, input_skeleton, output_skeleton, files["video"],
                video.fps,
            )  # fmt: skip
        elif self.render:
            files["video"] = stem.with_name(f"{stem.name}.{self.video_format}")
            from components.rendering import render_animation  # matplotlib only when drawing

            render_animation(
                video.keypoints, poses_3d, input_skeleton, output_skeleton, files["video"], video.fps, image_size
            )
        if self.sheet:
            files["sheet"] = stem.with_name(stem.name + ".png")
            from components.rendering import contact_sheet

            contact_sheet(
                video.keypoints, poses_3d, input_skeleton, output_skeleton, files["sheet"], image_size=image_size
            )
        empty = int(video.empty_frames.sum())
        print(f"{video.name}: {len(video)} frames ({empty} empty) -> {', '.join(map(str, files.values()))}", flush=True)
        return files


def video_arrays(
    video: PredictedVideo,
    poses_3d: np.ndarray,
    trajectory: np.ndarray | None,
    input_skeleton: Skeleton,
    output_skeleton: Skeleton,
) -> dict[str, np.ndarray]:
    """The ``.npz`` contents of one video (see the module docstring): metres become millimetres."""
    arrays = {
        "poses_3d": (poses_3d * MM_PER_M).astype(np.float32),
        "keypoints_2d": video.keypoints[..., :2].astype(np.float32),
        "scores": video.keypoints[..., 2].astype(np.float32),
        "filled": video.filled.astype(bool),
        "empty_frames": video.empty_frames.astype(bool),
        "person": video.person.astype(np.int64),
        "joint_names": np.asarray(output_skeleton.joint_names),
        "input_joint_names": np.asarray(input_skeleton.joint_names),
        "fps": np.float64(video.fps),
        "track": np.int64(video.track),
        "width": np.float64(video.width),
        "height": np.float64(video.height),
    }
    if trajectory is not None:
        arrays["trajectory"] = (trajectory * MM_PER_M).astype(np.float32)
    return arrays


def frames_json(name: str, arrays: Mapping[str, np.ndarray]) -> dict:
    """The ``.json`` document of one video: metadata, then one object per frame with the same numbers."""
    rounded = {
        key: np.round(np.asarray(arrays[key], dtype=np.float64), DECIMALS).tolist()
        for key in ("poses_3d", "trajectory")
        if key in arrays
    }
    pixels = np.concatenate([arrays["keypoints_2d"], arrays["scores"][..., None]], -1).astype(np.float64)
    columns = {
        **rounded,
        "keypoints_2d": np.round(pixels, DECIMALS).tolist(),
        "filled": arrays["filled"].tolist(),
        "empty": arrays["empty_frames"].tolist(),
        "person": arrays["person"].tolist(),
    }
    if "trajectory" in columns:  # (F, 1, 3) -> one [x, y, z] per frame
        columns["trajectory"] = [point[0] for point in columns["trajectory"]]
    # JSON is written per frame for people reading it; the numbers were converted above in one go per array.
    frames = [
        {"frame": index, **{key: column[index] for key, column in columns.items()}}
        for index in range(len(arrays["poses_3d"]))
    ]
    return {
        "name": name,
        "fps": float(arrays["fps"]),
        "track": int(arrays["track"]),
        "width": float(arrays["width"]),
        "height": float(arrays["height"]),
        "units": {key: unit for key, unit in JSON_UNITS.items() if key in columns},
        "joint_names": arrays["joint_names"].tolist(),
        "input_joint_names": arrays["input_joint_names"].tolist(),
        "frames": frames,
    }
