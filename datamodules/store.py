"""The contiguous per-split store and its vectorised gather.

All sequences of a split live in one contiguous, edge-padded 2D array, each frame once (plus the 3D, trajectory,
intrinsics and per-frame labels). A window is an offset into that array, so a batch of windows is one
vectorised gather: no per-window Python work. Flip augmentation mirrors the flagged windows of a batch on their
way out of the gather (a signed permutation matrix) rather than storing a mirrored copy of the split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from components.batch import PoseBatch
from components.camera import flip_intrinsics
from components.errors import InputError
from components.lifter import Timing
from components.skeleton import Skeleton
from datamodules.memory import release_freed_memory
from datamodules.sequence import PoseSequence


class _BufferPool:
    """Reuses batch-sized output tensors once nothing else references them.

    A fresh 30 MB batch costs more in page faults than the gather that fills it, so recycling buffers
    doubles throughput. A buffer is handed out again only when its storage has no user besides this pool
    (no batch, view or autograd node holds it), so a batch someone keeps is never overwritten. Disabled in
    DataLoader workers, whose batches move to shared memory.
    """

    def __init__(self, capacity: int = 4) -> None:
        self.capacity, self.buffers = capacity, []

    @staticmethod
    def _idle(buffer: Tensor) -> bool:
        # Users: this pool's tensor plus the temporary storage object made for the query.
        return torch._C._storage_Use_Count(buffer.untyped_storage()._cdata) <= 2

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        if torch.utils.data.get_worker_info() is not None:
            return torch.empty(shape, dtype=dtype)
        for buffer in self.buffers:
            if buffer.shape == shape and buffer.dtype == dtype and self._idle(buffer):
                return buffer.view(shape)  # a view of its own, so the pool sees every holder of the batch
        buffer = torch.empty(shape, dtype=dtype)
        if len(self.buffers) >= self.capacity:
            self.buffers.pop(0)
        self.buffers.append(buffer)
        return buffer.view(shape)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def _write_padded(out: np.ndarray, offset: int, array: np.ndarray, pads: tuple[int, int] = (0, 0)) -> None:
    """Write ``array`` ``(T, ...)`` into ``out`` at row ``offset``, edge-padded by ``pads`` (frames before, after).

    Filling a preallocated store keeps the peak at its final size, where ``np.pad`` + ``np.concatenate`` held
    two or three copies of a split at once.
    """
    before, after = pads
    start, end = offset + before, offset + before + len(array)
    out[start:end] = array
    out[offset:start] = out[start]
    out[end : end + after] = out[end - 1]


def _mirror_matrix(permutation: Sequence[int], channels: int, dtype: torch.dtype) -> Tensor:
    """The left-right mirror of one frame as a ``(J * C, J * C)`` signed permutation matrix ``M``:
    ``row @ M`` reorders the joints of a flattened ``(J, C)`` row by ``permutation`` (a skeleton's
    ``flip_permutation``; ``(0,)`` for the root trajectory) and negates x.

    Every output is one input times +-1 plus exact zeros, so the product equals
    :func:`components.geometry.flip_horizontal` bit for bit on finite data, and mirroring becomes one matrix
    multiply of the gathered rows: several times faster than re-indexing the joint axis of a batch.
    """
    joints = torch.as_tensor(permutation, dtype=torch.int64)
    target = torch.arange(len(joints) * channels)
    source = joints.repeat_interleave(channels) * channels + target % channels
    matrix = torch.zeros(len(target), len(target), dtype=dtype)
    matrix[source, target] = torch.where(target % channels == 0, -1.0, 1.0).to(dtype)
    return matrix


def _gather_rows_mirroring(source: Tensor, index: Tensor, plain: int, mirror: Tensor, out: Tensor | None = None):
    """``source[index]`` for a ``(N, ...)`` source and a ``(B, L)`` index whose windows ``plain:`` are mirrored.

    Each part is one contiguous row copy (``index_select`` of whole flattened rows); the mirrored part goes
    through ``mirror`` (:func:`_mirror_matrix`) on its way into the output, so nothing is copied twice.
    """
    rows = source.view(len(source), -1)
    out = source.new_empty((*index.shape, *source.shape[1:])) if out is None else out
    flat, split = out.view(index.numel(), -1), plain * index.shape[1]
    torch.index_select(rows, 0, index[:plain].reshape(-1), out=flat[:split])
    if split < len(flat):
        torch.mm(torch.index_select(rows, 0, index[plain:].reshape(-1)), mirror, out=flat[split:])
    return out


def _same_trailing_shape(arrays: Sequence[np.ndarray], what: str) -> tuple[int, ...]:
    shapes = {array.shape[1:] for array in arrays}
    if len(shapes) != 1:
        raise InputError(f"{what} of one split must share their joint and feature axes, got {sorted(shapes)}")
    return shapes.pop()


def _check_joints(arrays: Sequence[np.ndarray], skeleton: Skeleton, what: str) -> tuple[int, ...]:
    """The shared ``(joints, features)`` of ``arrays``, checked against ``skeleton``."""
    shape = _same_trailing_shape(arrays, what)
    if shape[0] != skeleton.num_joints:
        raise InputError(f"{what} have {shape[0]} joints, layout {skeleton.name!r} has {len(skeleton)}")
    return shape


# Bytes of consumed sequences after which the fill hands freed heap pages back (malloc_trim walks the heap, so
# not after every sequence; small enough that the peak stays near the store's own size).
_RELEASE_EVERY_BYTES = 64 * 2**20


class SequenceStore:
    """The sequences of one split in contiguous tensors, ready for vectorised gathers.

    Every frame is stored once. With ``flip`` a window can also be gathered mirrored: the same rows are
    gathered and then mirrored in the batch, so the mirrored half of the training data costs no memory.

    Args:
        sequences: all labeled or all unlabeled; 2D layouts must agree.
        timing: receptive field and causality; fixes the edge padding.
        input_skeleton: layout of the 2D joints. output_skeleton: layout of the 3D joints.
        flip: training windows come in two versions, as stored and mirrored (x negated, left/right swapped,
            intrinsics flipped); see :class:`TrainingWindows`.
        action_ids, subject_ids: ``(len(sequences),)`` integer labels carried into every batch.
        recording_ids: ``(len(sequences),)`` synchronized-recording index of every sequence (see
            :func:`recording_groups`), carried into every batch as ``recording``; None leaves it out.
        consume: ``sequences`` is a list whose entries are replaced, each right after it is copied, by its
            view of the store (:meth:`sequence_views`). A caller holding no other reference to the originals
            thus frees their arrays during the fill, and the peak stays near the store's size instead of
            store + sequences.
    """

    def __init__(
        self,
        sequences: Sequence[PoseSequence],
        timing: Timing,
        input_skeleton: Skeleton,
        output_skeleton: Skeleton,
        flip: bool,
        action_ids: Sequence[int],
        subject_ids: Sequence[int],
        recording_ids: Sequence[int] | None = None,
        consume: bool = False,
    ) -> None:
        if not sequences:
            raise InputError("a split needs at least one sequence")
        labeled = {s.labeled for s in sequences}
        if len(labeled) != 1:
            raise InputError("a split must be all labeled or all unlabeled")
        self.timing, self.flip = timing, flip
        self.input_skeleton, self.output_skeleton = input_skeleton, output_skeleton
        self.labeled = labeled.pop()
        self.lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
        self.copies = 2 if flip else 1  # versions of every training window: as stored and mirrored
        self._allocate(sequences)
        self._fill(sequences, consume)
        self._build_intrinsics(sequences)
        self._build_frame_labels(sequences)
        self.action_ids = torch.as_tensor(action_ids, dtype=torch.int64)
        self._pool = _BufferPool()
        dtype = self.keypoints.dtype
        self._mirrors = {
            "keypoints": _mirror_matrix(input_skeleton.flip_permutation, self.keypoints.shape[-1], dtype),
            "poses": _mirror_matrix(output_skeleton.flip_permutation, 3, dtype),
            "trajectory": _mirror_matrix((0,), 3, dtype),
        }
        self.subject_ids = torch.as_tensor(subject_ids, dtype=torch.int64)
        self.recording_ids = None if recording_ids is None else torch.as_tensor(recording_ids, dtype=torch.int64)

    @property
    def num_sequences(self) -> int:
        return len(self.lengths)

    def _allocate(self, sequences: Sequence[PoseSequence]) -> None:
        """Empty float32 stores: 2D ``(padded_size, J_in, F)`` with ``receptive_field - 1`` padding frames per
        sequence, 3D ``(size, J_out, 3)`` and trajectory ``(size, 1, 3)`` (labeled only)."""
        keypoint_shape = _check_joints([s.keypoints_2d for s in sequences], self.input_skeleton, "2D keypoints")
        padded_lengths = self.lengths.numpy() + self.timing.receptive_field - 1
        self.padded_offsets = torch.from_numpy(_offsets(padded_lengths))
        self.padded_size = int(padded_lengths.sum())
        self.keypoints = torch.empty((self.padded_size, *keypoint_shape), dtype=torch.float32)
        self.offsets = torch.from_numpy(_offsets(self.lengths.numpy()))
        self.size = int(self.lengths.sum())
        self.poses_3d = self.trajectory = None
        if self.labeled:
            pose_shape = _check_joints([s.poses_3d for s in sequences], self.output_skeleton, "3D poses")
            self.poses_3d = torch.empty((self.size, *pose_shape), dtype=torch.float32)
            self.trajectory = torch.empty((self.size, 1, 3), dtype=torch.float32)

    def _fill(self, sequences: Sequence[PoseSequence], consume: bool) -> None:
        """Copy every sequence into the stores (one loop step per sequence); see ``consume`` in the class."""
        pads = (self.timing.pad_before, self.timing.pad_after)
        padded_offsets, offsets = self.padded_offsets.tolist(), self.offsets.tolist()
        keypoints = self.keypoints.numpy()
        poses, trajectory = (self.poses_3d.numpy(), self.trajectory.numpy()) if self.labeled else (None, None)
        unreleased = 0
        for index, sequence in enumerate(sequences):
            _write_padded(keypoints, padded_offsets[index], sequence.keypoints_2d, pads)
            if self.labeled:
                _write_padded(poses, offsets[index], sequence.poses_3d)
                _write_padded(trajectory, offsets[index], sequence.trajectory)
            if consume:
                sequences[index] = self._view(sequence, index)
                unreleased += sequence.keypoints_2d.nbytes + (sequence.poses_3d.nbytes if self.labeled else 0)
                if unreleased > _RELEASE_EVERY_BYTES:
                    del sequence  # the last local reference to the original
                    release_freed_memory()
                    unreleased = 0

    def _view(self, sequence: PoseSequence, index: int) -> PoseSequence:
        """``sequence`` (number ``index`` of this store) with its arrays replaced by views of the store."""
        start, length = int(self.padded_offsets[index]) + self.timing.pad_before, int(self.lengths[index])
        arrays = {"keypoints_2d": self.keypoints.numpy()[start : start + length]}
        if self.labeled:
            frame = int(self.offsets[index])
            arrays["poses_3d"] = self.poses_3d.numpy()[frame : frame + length]
            arrays["trajectory"] = self.trajectory.numpy()[frame : frame + length]
        return replace(sequence, **arrays)

    def sequence_views(self, sequences: Sequence[PoseSequence]) -> list[PoseSequence]:
        """``sequences`` (the ones this store was built from) with 2D and 3D arrays that are views of this
        store's rows, padding left out: the same float32 values without a second copy.

        Once the caller drops the originals, the split is held in memory once. The views share memory with
        the store (writing into them changes the training data), and stay writable because consumers such as
        ``components.retrieval`` wrap them with ``torch.from_numpy``, which warns on read-only arrays.
        """
        return [self._view(sequence, index) for index, sequence in enumerate(sequences)]

    def _build_intrinsics(self, sequences: Sequence[PoseSequence]) -> None:
        known = {s.intrinsics is not None for s in sequences}
        if known != {True}:
            self.intrinsics = None
            return
        self.intrinsics = torch.from_numpy(np.stack([s.intrinsics for s in sequences]).astype(np.float32))

    def _build_frame_labels(self, sequences: Sequence[PoseSequence]) -> None:
        """Per-frame validity and activity, stored once (a mirrored window has the same labels)."""
        self.valid = self.activity = None
        if any(s.valid is not None for s in sequences):
            valid = [np.ones(len(s), bool) if s.valid is None else s.valid for s in sequences]
            self.valid = torch.from_numpy(np.concatenate(valid).astype(bool))
        if any(s.activity is not None for s in sequences):
            activity = [np.full(len(s), -1) if s.activity is None else s.activity for s in sequences]
            self.activity = torch.from_numpy(np.concatenate(activity).astype(np.int64))

    def gather(self, sequence: Tensor, start: Tensor, flipped: Tensor, length: int) -> PoseBatch:
        """Windows of ``length`` output frames, the ``flipped`` ones mirrored as they are gathered; the batch
        holds the plain windows first, then the mirrored ones (each in the given order), and its ``sequence``,
        ``start`` and ``flipped`` follow that order.

        Args:
            sequence, start: ``(B,)`` int64 sequence index and first output frame.
            flipped: ``(B,)`` bool, mirror the window (x negated, left/right swapped, intrinsics flipped).
            length: output frames per window; each window has ``length + receptive_field - 1`` input frames.
        """
        # Mirrored windows last (a stable partition): each part of every tensor is then one contiguous gather.
        order = torch.argsort(flipped.to(torch.int8), stable=True)
        sequence, start, flipped = sequence[order], start[order], flipped[order]
        plain = len(flipped) - int(flipped.sum())
        first_input = self.padded_offsets[sequence] + start
        steps = torch.arange(length + self.timing.receptive_field - 1)
        keypoints = self._pool.empty((len(sequence), len(steps), *self.keypoints.shape[1:]), self.keypoints.dtype)
        mirrors = self._mirrors
        _gather_rows_mirroring(self.keypoints, first_input[:, None] + steps, plain, mirrors["keypoints"], keypoints)
        poses = trajectory = intrinsics = None
        frames = (self.offsets[sequence] + start)[:, None] + torch.arange(length)
        if self.labeled:
            poses = _gather_rows_mirroring(self.poses_3d, frames, plain, mirrors["poses"])
            trajectory = _gather_rows_mirroring(self.trajectory, frames, plain, mirrors["trajectory"])
        if self.intrinsics is not None:
            intrinsics = self.intrinsics[sequence]
            intrinsics[plain:] = flip_intrinsics(intrinsics[plain:])
        return PoseBatch(
            keypoints_2d=keypoints,
            poses_3d=poses,
            trajectory=trajectory,
            intrinsics=intrinsics,
            sequence=sequence,
            start=start,
            action=self.action_ids[sequence],
            subject=self.subject_ids[sequence],
            flipped=flipped,
            valid=None if self.valid is None else self.valid[frames],
            activity=None if self.activity is None else self.activity[frames],
            recording=None if self.recording_ids is None else self.recording_ids[sequence],
        )
