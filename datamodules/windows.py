"""The one window definition: training windows and evaluation chunks, as indices into a split's store.

Timing of a window with ``n`` output frames starting at frame ``s`` (``components.lifter.Timing``): input frames
``[s - pad_before, s + n + pad_after)``, edge-padded at the sequence ends. In causal mode the output at ``t``
therefore sees only frames ``<= t``. Training windows tile each sequence every ``chunk_length`` frames;
evaluation chunks cover every frame exactly once; multi-view instants gather every view of one instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor
from torch.utils.data import Dataset

from components.batch import PoseBatch
from components.errors import InputError
from datamodules.store import SequenceStore


def _tile(lengths: Tensor, chunk_length: int, stride: int | None = None) -> tuple[Tensor, Tensor]:
    """Windows of ``chunk_length`` frames covering sequences of ``lengths`` ``(S,)`` frames.

    Windows start every ``stride`` frames (default ``chunk_length``: tiling); the last one of a sequence ends at
    its last frame (so it may overlap the one before). Sequences shorter than ``chunk_length`` give no window.

    Returns:
        ``(W,)`` sequence index and ``(W,)`` first frame of every window, sequence-major.
    """
    stride = chunk_length if stride is None else stride
    spare = lengths - chunk_length  # frames a window can slide over
    counts = torch.where(spare >= 0, (spare + stride - 1).div(stride, rounding_mode="floor") + 1, 0)
    owner = torch.repeat_interleave(torch.arange(len(lengths)), counts)
    first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    rank_in_sequence = torch.arange(len(owner)) - first
    return owner, torch.minimum(rank_in_sequence * stride, lengths[owner] - chunk_length)


class TrainingWindows(Dataset):
    """Windows of ``chunk_length`` output frames tiling every sequence; indexed by a tensor of window ids.

    Windows start every ``stride`` frames (default ``chunk_length``: tiling; a smaller stride overlaps them, as
    sequence-to-sequence recipes train); the last window of a sequence ends at its last frame (so it may overlap
    the one before). Sequences shorter than ``chunk_length`` give no window. With flipping, ids
    ``>= num_windows`` are the mirrored versions of ids ``- num_windows`` (mirrored in the batch by the store).
    """

    def __init__(self, store: SequenceStore, chunk_length: int = 1, stride: int | None = None) -> None:
        if chunk_length < 1:
            raise InputError(f"chunk_length must be >= 1, got {chunk_length}")
        if stride is not None and stride < 1:
            raise InputError(f"window_stride must be >= 1 or None, got {stride}")
        self.store, self.chunk_length = store, chunk_length
        self.window_sequence, self.window_start = _tile(store.lengths, chunk_length, stride)
        self.num_windows = len(self.window_sequence)
        if self.num_windows == 0:
            raise InputError(f"no sequence has the {chunk_length} frames one training window needs")

    def __len__(self) -> int:
        return self.num_windows * self.store.copies

    def __getitem__(self, ids: Tensor) -> PoseBatch:
        ids = torch.as_tensor(ids, dtype=torch.int64)
        window = ids % self.num_windows
        return self.store.gather(
            self.window_sequence[window],
            self.window_start[window],
            ids >= self.num_windows,
            self.chunk_length,
        )


def consecutive_runs(sorted_group: Tensor, run_length: int) -> Tensor:
    """Run index of every element of a sorted ``(N,)`` group tensor: each group's elements cut into runs of
    ``run_length`` (its last run may be shorter); run indices increase along the tensor."""
    _, counts = torch.unique_consecutive(sorted_group, return_counts=True)
    first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    position = torch.arange(len(sorted_group)) - first
    runs = (counts + run_length - 1) // run_length
    first_run = torch.repeat_interleave(torch.cumsum(runs, 0) - runs, counts)
    return first_run + position // run_length


class EvaluationChunks(Dataset):
    """Whole sequences, or consecutive chunks of at most ``chunk_length`` output frames: every frame once.

    Item ``i`` is one evaluation step: a batch ``(B, frames + receptive_field - 1, J, F)`` of up to
    ``batch_chunks`` chunks of the same length (a sequence's last chunk is usually shorter and goes with the
    other chunks of its length), so short clips do not cost one step each.
    """

    def __init__(self, store: SequenceStore, chunk_length: int | None = None, batch_chunks: int = 1) -> None:
        if chunk_length is not None and chunk_length < 1:
            raise InputError(f"chunk_length must be >= 1 or None, got {chunk_length}")
        if batch_chunks < 1:
            raise InputError(f"eval_batch_size must be >= 1 chunks, got {batch_chunks}")
        lengths = store.lengths
        size = lengths if chunk_length is None else torch.full_like(lengths, chunk_length)
        counts = (lengths + size - 1) // size
        self.store = store
        self.chunk_sequence = torch.repeat_interleave(torch.arange(len(lengths)), counts)
        first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        self.chunk_start = (torch.arange(len(self.chunk_sequence)) - first) * size[self.chunk_sequence]
        end = torch.minimum(self.chunk_start + size[self.chunk_sequence], lengths[self.chunk_sequence])
        self.chunk_length = end - self.chunk_start
        # Steps: chunks sorted by length (longest first, stable), each length cut into runs of batch_chunks.
        self.step_chunks = torch.argsort(self.chunk_length, descending=True, stable=True)
        steps = consecutive_runs(self.chunk_length[self.step_chunks], batch_chunks)
        count = int(steps[-1]) + 1 if len(steps) else 0
        self.step_first = torch.searchsorted(steps, torch.arange(count + 1))  # step i: chunks [first[i], first[i+1])

    def __len__(self) -> int:
        return len(self.step_first) - 1

    def __getitem__(self, index: int) -> PoseBatch:
        chunks = self.step_chunks[int(self.step_first[index]) : int(self.step_first[index + 1])]
        flipped = torch.zeros(len(chunks), dtype=torch.bool)
        length = int(self.chunk_length[chunks[0]])
        return self.store.gather(self.chunk_sequence[chunks], self.chunk_start[chunks], flipped, length)


class MultiviewInstants(Dataset):
    """Synchronized instants: the same ``chunk_length`` output frames of one recording seen by ``views`` cameras.

    Instants tile every recording like :class:`TrainingWindows` tiles a sequence (starts every
    ``chunk_length`` frames, the last window ending at the last frame). Item ``ids`` ``(n,)`` is one
    :class:`PoseBatch` of ``n * views`` windows, instant-major (``[instant 0 view 0, instant 0 view 1, ...,
    instant 1 view 0, ...]``), never flipped, with ``recording`` the group index and ``start`` the instant's
    first output frame: a metric loss reads positives (same ``recording`` and ``start``) and negatives from
    those two labels alone.

    Args:
        store: holds the sequences the groups index.
        groups: store sequence indices per synchronized recording, views in a fixed camera order
            (:func:`recording_groups`); ``recording`` in batches is the index into this list.
        chunk_length: output frames per window.
        views: cameras per instant (None: the largest group). Groups with fewer are dropped; larger groups
            contribute their first ``views`` cameras.

    Attributes:
        instant_group: ``(len(self),)`` int64 group index of every instant (what the sampler keeps together).
        instant_start: ``(len(self),)`` int64 first output frame of every instant.
    """

    def __init__(
        self, store: SequenceStore, groups: Sequence[Sequence[int]], chunk_length: int = 1, views: int | None = None
    ) -> None:
        if chunk_length < 1:
            raise InputError(f"chunk_length must be >= 1, got {chunk_length}")
        self.store, self.chunk_length = store, chunk_length
        self.views = max((len(g) for g in groups), default=0) if views is None else views
        kept, self.members = _views_of_groups(groups, self.views)
        lengths = store.lengths[self.members]
        if (lengths != lengths[:, :1]).any():
            raise InputError("the views of a group must have equal lengths (use recording_groups)")
        self._instant_member_row, self.instant_start = _tile(lengths[:, 0], chunk_length)
        self.instant_group = kept[self._instant_member_row]
        if len(self.instant_group) == 0:
            raise InputError(f"no synchronized recording has the {chunk_length} frames one instant needs")

    def __len__(self) -> int:
        return len(self.instant_group)

    def __getitem__(self, ids: Tensor) -> PoseBatch:
        ids = torch.as_tensor(ids, dtype=torch.int64)
        sequence = self.members[self._instant_member_row[ids]].reshape(-1)
        start = self.instant_start[ids].repeat_interleave(self.views)
        batch = self.store.gather(sequence, start, torch.zeros(len(sequence), dtype=torch.bool), self.chunk_length)
        return replace(batch, recording=self.instant_group[ids].repeat_interleave(self.views))


def _views_of_groups(groups: Sequence[Sequence[int]], views: int) -> tuple[Tensor, Tensor]:
    """The groups with at least ``views`` members: ``(G,)`` their indices and ``(G, views)`` their first views."""
    kept = [index for index, members in enumerate(groups) if len(members) >= views]
    if views < 1 or not kept:
        sizes = [len(g) for g in groups]
        raise InputError(f"no synchronized recording has {views} views (group sizes {sizes})")
    members = torch.tensor([list(groups[g][:views]) for g in kept], dtype=torch.int64)
    return torch.tensor(kept, dtype=torch.int64), members
