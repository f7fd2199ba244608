"""Samplers of the window datasets: per-epoch shuffles sharded over processes without repeats, synchronized
multi-view grouping, and evaluation shards that cover every chunk exactly once across processes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler

from components.errors import InputError
from datamodules.sequence import PoseSequence
from datamodules.windows import consecutive_runs


def recording_groups(sequences: Sequence[PoseSequence]) -> list[list[int]]:
    """Indices of ``sequences`` grouped into synchronized recordings: the views of one instant.

    Views of one recording share ``subject`` and ``action``. A recording may be split into several blocks (the
    labeled block and the unlabeled rest), which every camera lists in the same order, so the k-th sequence
    of each (subject, action, camera) pairs with the k-th of the other cameras.

    Returns:
        One list per recording, in first-appearance order; its views ordered by camera, cameras in their
        first-appearance order over all ``sequences``.

    Raises:
        ValueError: the views of one recording differ in length.
    """
    camera_rank = {camera: rank for rank, camera in enumerate(dict.fromkeys(s.camera for s in sequences))}
    blocks_seen: dict[tuple[str, str, str], int] = {}
    groups: dict[tuple[str, str, int], list[int]] = {}
    for index, s in enumerate(sequences):
        view = (s.subject, s.action, s.camera)
        block = blocks_seen.get(view, 0)
        blocks_seen[view] = block + 1
        groups.setdefault((s.subject, s.action, block), []).append(index)
    ordered = [sorted(members, key=lambda i: camera_rank[sequences[i].camera]) for members in groups.values()]
    for members in ordered:
        _check_synchronized([sequences[i] for i in members])
    return ordered


def _check_synchronized(views: Sequence[PoseSequence]) -> None:
    lengths = [len(v) for v in views]
    if len(set(lengths)) > 1:
        cameras = [v.camera for v in views]
        raise InputError(
            f"views of {views[0].subject}/{views[0].action} are not synchronized: cameras {cameras} "
            f"have {lengths} frames"
        )


class WindowBatchSampler(DistributedSampler):
    """Yields ``(batch,)`` id tensors of training windows: a seeded shuffle per epoch, sharded by rank.

    Every rank gets the same number of batches (the remainder of an uneven split is dropped), so DDP gradient
    reductions stay in step. It subclasses ``DistributedSampler`` because that tells Lightning the sampler
    already shards by rank (Lightning then neither wraps nor pads it) while still calling ``set_epoch``.

    Args:
        num_batches: yield exactly this many batches per epoch, drawing from fresh shuffles as often as needed
            (an unlabeled stream paced by the labeled one). None: one pass over the windows.
    """

    def __init__(
        self,
        windows: Dataset,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        num_batches: int | None = None,
    ) -> None:
        super().__init__(windows, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=True)
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.num_batches = batch_size, num_batches

    def _generator(self, draw: int) -> torch.Generator:
        """The same stream on every rank for one (seed, epoch, draw)."""
        return torch.Generator().manual_seed(self.seed + self.epoch + 1_000_003 * draw)

    def _order(self, draw: int) -> Tensor:
        if not self.shuffle:
            return torch.arange(len(self.dataset))
        return torch.randperm(len(self.dataset), generator=self._generator(draw))

    def _shard(self, ids: Tensor, needed: int) -> Tensor:
        """This rank's share of the first ``needed`` ids (a multiple of the world size): every world-th one."""
        return ids[self.rank : needed : self.num_replicas]

    def _rank_ids(self) -> Tensor:
        total = len(self.dataset)
        if self.num_batches is None:
            needed = total // self.num_replicas * self.num_replicas
        else:
            needed = self.num_batches * self.batch_size * self.num_replicas
        orders = [self._order(0)]
        while len(orders) * total < needed:
            orders.append(self._order(len(orders)))
        return self._shard(torch.cat(orders), needed)

    def __iter__(self) -> Iterator[Tensor]:
        # A generator: the order is drawn at the first batch, after Lightning's set_epoch. A fit resumed from a
        # checkpoint creates its first iterator before set_epoch, so an eager order would replay epoch 0's.
        batches = list(torch.split(self._rank_ids(), self.batch_size))
        # A lone trailing window would make BatchNorm's batch statistics undefined.
        if batches and len(batches[-1]) == 1 and len(batches) > 1:
            batches.pop()
        yield from batches

    def __len__(self) -> int:
        if self.num_batches is not None:
            return self.num_batches
        per_rank = len(self.dataset) // self.num_replicas
        full, rest = divmod(per_rank, self.batch_size)
        return full + (rest > 1 or (rest == 1 and full == 0))


class MultiviewBatchSampler(WindowBatchSampler):
    """Yields ``(instants,)`` id tensors of :class:`MultiviewInstants`, instants of one recording in runs.

    The contract of :class:`WindowBatchSampler` (seeded shuffle per epoch, equal batch counts per rank,
    ``num_batches`` pacing), but the epoch order keeps ``instants_per_recording`` instants of one recording
    together, so each batch holds several instants of a recording at different times: the hard negatives of
    a temporal metric loss. Ranks take contiguous slices of the order, which keeps the runs whole.

    Args:
        instants: a dataset with ``instant_group`` ``(len,)``, the recording of every id.
        batch_size: instants per batch (each instant is ``views`` windows).
        instants_per_recording: run length; a recording's last run may be shorter.
        options: ``shuffle``, ``seed``, ``num_replicas``, ``rank``, ``num_batches`` of :class:`WindowBatchSampler`.
    """

    def __init__(self, instants: Dataset, batch_size: int, instants_per_recording: int = 8, **options) -> None:
        super().__init__(instants, batch_size, **options)
        if instants_per_recording < 1:
            raise InputError(f"instants_per_recording must be >= 1, got {instants_per_recording}")
        self.instants_per_recording = instants_per_recording

    def _order(self, draw: int) -> Tensor:
        """Instants sorted by (recording, random key), cut into runs per recording, runs shuffled."""
        if not self.shuffle:
            return super()._order(draw)
        generator = self._generator(draw)
        group = self.dataset.instant_group
        shuffled = torch.randperm(len(group), generator=generator)  # the random key of every instant
        order = shuffled[torch.argsort(group[shuffled], stable=True)]
        run = consecutive_runs(group[order], self.instants_per_recording)
        run_rank = torch.randperm(int(run[-1]) + 1, generator=generator)
        return order[torch.argsort(run_rank[run], stable=True)]

    def _shard(self, ids: Tensor, needed: int) -> Tensor:
        return ids[:needed].view(self.num_replicas, -1)[self.rank]


class ShardSampler(DistributedSampler):
    """Evaluation chunk ids ``rank, rank + world, ...``: no padding and no repeats, so across all ranks every
    frame is evaluated exactly once (``DistributedSampler`` would repeat samples to even the shards)."""

    def __init__(self, chunks: Dataset, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(chunks, num_replicas=num_replicas, rank=rank, shuffle=False)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))
