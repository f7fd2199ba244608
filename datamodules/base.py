"""PoseDataModule: the shared DataModule. Readers supply sequences; this class batches them.

Subclasses implement :meth:`PoseDataModule.load_sequences` (and ``prepare_data`` when something must be
generated or converted first). Everything about windows, flipping, shuffling and sharding lives here and in
``datamodules.store``, ``datamodules.windows`` and ``datamodules.samplers``, so every dataset batches identically.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader

from components.errors import InputError
from components.evaluation import ActionwiseProtocol, EvaluationProtocol
from components.lifter import Timing
from components.metrics import action_group
from components.skeleton import Skeleton
from datamodules.memory import release_freed_memory
from datamodules.samplers import MultiviewBatchSampler, ShardSampler, WindowBatchSampler, recording_groups
from datamodules.sequence import PoseSequence
from datamodules.store import SequenceStore
from datamodules.windows import EvaluationChunks, MultiviewInstants, TrainingWindows

SPLITS = ("train", "val", "test", "unlabeled")
STREAMS = ("labeled", "unlabeled", "multiview")
"""What a regime can train on: labeled windows of ``train``, 2D windows of ``unlabeled``, and synchronized
multi-view instants of the 2D of both (3D dropped)."""


def hold_out_tails(sequences: list[PoseSequence], fraction: float) -> tuple[list[PoseSequence], list[PoseSequence]]:
    """Split the last ``round(len * fraction)`` frames off every labeled sequence: ``(heads, tails)``.

    The views of one recording have equal lengths, so every camera loses the same frames and no instant is seen
    in both splits. The tails are copied (small) and the heads stay views, so the original arrays are freed as
    soon as the training store has consumed the heads. Unlabeled sequences stay whole in the first list.
    """
    heads, tails = [], []
    for sequence in sequences:
        held = int(round(len(sequence) * fraction)) if sequence.labeled else 0
        if held < 1 or held >= len(sequence):
            heads.append(sequence)
            continue
        cut = len(sequence) - held
        heads.append(sequence.frames(0, cut))
        tails.append(sequence.frames(cut, len(sequence), copy=True))
    return heads, tails


def _shared_recordings(first: list[PoseSequence], second: list[PoseSequence]) -> list[tuple[str, str]]:
    """``(subject, action)`` recordings present in both lists, sorted."""
    return sorted({(s.subject, s.action) for s in first} & {(s.subject, s.action) for s in second})


class PoseDataModule(pl.LightningDataModule, ABC):
    """Batches of :class:`components.batch.PoseBatch` from the sequences a reader provides.

    Args:
        input_skeleton, output_skeleton: layouts of the 2D input and the 3D target (set by the subclass).
        batch_size: training windows per batch (per process under DDP).
        chunk_length: output frames per training window (1 for the single-frame strided lifter).
        window_stride: frames between the starts of consecutive training windows of a sequence (None:
            ``chunk_length``, windows tile the sequence; smaller overlaps them, e.g. 81 for 243-frame clips).
        receptive_field: input frames one output frame depends on (linked from the lifter by the CLI).
        causal: windows look only into the past (linked from the lifter).
        flip_augment: add a mirrored copy of every training window (doubling the epoch).
        eval_chunk_length: evaluate whole sequences (None) or chunks of at most this many output frames.
        eval_batch_size: evaluation chunks of equal length per step (val, test, predict); more than 1 pays off
            for short chunks (a sequence-to-sequence lifter's clips), while whole sequences rarely share a length.
        num_workers: DataLoader worker processes (0 keeps batching in the training process; fastest here).
        seed: base seed of the per-epoch shuffles.
        multiview_views: cameras per instant of the ``multiview`` stream (None: the largest synchronized
            recording); recordings with fewer cameras are left out.
        multiview_instants_per_recording: instants of one recording kept together in a multi-view batch, at
            different times: the hard negatives of the metric loss.
        val_fraction: when the reader names no validation recordings of its own, the last ``val_fraction`` of
            every labeled training sequence is held out as the ``val`` split (docs/conventions.md, "Splits").
            0 disables validation.
        allow_val_on_test: let validation and test share recordings. Without it such a configuration is refused:
            a checkpoint chosen on validation would be chosen on the frames it is reported on. With it, the
            best checkpoint's table is labelled "selected on the test subjects".
    """

    def __init__(
        self,
        input_skeleton: Skeleton,
        output_skeleton: Skeleton,
        batch_size: int = 1024,
        chunk_length: int = 1,
        window_stride: int | None = None,
        receptive_field: int = 1,
        causal: bool = False,
        flip_augment: bool = True,
        eval_chunk_length: int | None = None,
        eval_batch_size: int = 1,
        num_workers: int = 0,
        seed: int = 1234,
        multiview_views: int | None = None,
        multiview_instants_per_recording: int = 8,
        val_fraction: float = 0.1,
        allow_val_on_test: bool = False,
    ) -> None:
        super().__init__()
        self.input_skeleton, self.output_skeleton = input_skeleton, output_skeleton
        self.batch_size, self.chunk_length, self.window_stride = batch_size, chunk_length, window_stride
        self.timing = Timing(receptive_field, causal)
        self.flip_augment, self.eval_chunk_length = flip_augment, eval_chunk_length
        if eval_batch_size < 1:
            raise InputError(f"eval_batch_size must be >= 1 chunks, got {eval_batch_size}")
        self.eval_batch_size = eval_batch_size
        self.num_workers, self.seed = num_workers, seed
        self.multiview_views = multiview_views
        self.multiview_instants_per_recording = multiview_instants_per_recording
        if not 0 <= val_fraction < 1:
            raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.val_fraction, self.allow_val_on_test = val_fraction, allow_val_on_test
        self.multiview_groups: list[list[int]] = []
        self.sequences: dict[str, list[PoseSequence]] = {}
        self.stores: dict[str, SequenceStore] = {}

    # -- what subclasses provide ---------------------------------------------------------------------------
    @abstractmethod
    def load_sequences(self) -> dict[str, list[PoseSequence]]:
        """Sequences per split name in ``SPLITS`` (missing or empty splits are allowed)."""

    # -- derived facts ---------------------------------------------------------------------------------------
    @property
    def num_joints_in(self) -> int:
        return self.input_skeleton.num_joints

    @property
    def num_joints_out(self) -> int:
        return self.output_skeleton.num_joints

    @property
    def action_groups(self) -> tuple[str, ...]:
        """Sorted action groups (first word of the action name) over all loaded splits."""
        return tuple(sorted({action_group(s.action) for seqs in self.sequences.values() for s in seqs}))

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(sorted({s.subject for seqs in self.sequences.values() for s in seqs}))

    def evaluation_protocol(
        self, trajectory: bool = False, by_subject: bool = False, scale_free: bool = False
    ) -> EvaluationProtocol:
        """How this dataset is scored: the Human3.6M action-wise protocols unless a subclass says otherwise.

        Args:
            trajectory: the model predicts the root trajectory too (score it).
            by_subject: also tabulate each subject.
            scale_free: the model's poses have no metric scale (score them with scale-aligned metrics).
        """
        return ActionwiseProtocol(self.action_groups, self.subjects, by_subject, trajectory, scale_free)

    def set_timing(self, receptive_field: int, causal: bool) -> None:
        """Adopt the lifter's receptive field (before ``setup``; the stores are padded for it)."""
        if self.stores:
            raise RuntimeError("set_timing() must be called before setup()")
        self.timing = Timing(receptive_field, causal)

    # -- Lightning hooks -------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if not self.sequences:
            loaded = self.load_sequences()
            if "val" not in loaded and self.val_fraction > 0:
                loaded["train"], loaded["val"] = hold_out_tails(loaded.get("train", []), self.val_fraction)
            self.sequences = {split: list(seqs) for split, seqs in loaded.items() if seqs}
            self._check_val_test_disjoint()
            release_freed_memory()  # the files' arrays, dropped by the reader
        self._build_stores()

    @property
    def val_on_test(self) -> bool:
        """Whether validation shares recordings with the test split (only with ``allow_val_on_test``)."""
        return bool(_shared_recordings(self.sequences.get("val", []), self.sequences.get("test", [])))

    def _check_val_test_disjoint(self) -> None:
        shared = _shared_recordings(self.sequences.get("val", []), self.sequences.get("test", []))
        if shared and not self.allow_val_on_test:
            names = ", ".join(f"{subject}/{action}" for subject, action in shared[:4])
            raise InputError(
                f"{type(self).__name__}: the val and test splits share {len(shared)} recordings ({names}"
                f"{', ...' if len(shared) > 4 else ''}): a checkpoint selected on validation would be selected on "
                "the frames it is tested on. Leave the validation subjects unset (the held-out tail of every "
                "training recording is used) or set allow_val_on_test: true to accept it explicitly"
            )

    def _build_stores(self) -> None:
        """A store for every split without one; afterwards the split's sequences are views of its store.

        Each store replaces its sequences by views while it fills (``consume``), so their own arrays are freed
        progressively and each split ends up held in memory once. Splits of the very same sequences
        (Human3.6M's default val and test) share one store, and one list while it fills: a second list would
        keep the originals alive.
        """
        pending = [split for split in self.sequences if split not in self.stores]
        flips = {split: self.flip_augment and split in ("train", "unlabeled") for split in pending}
        keys = {split: (flips[split], *map(id, self.sequences[split])) for split in pending}
        built: dict[tuple, SequenceStore] = {}
        for split in pending:
            if keys[split] not in built:
                sequences = self.sequences[split]
                for sibling in [other for other in pending if keys[other] == keys[split]]:
                    self.sequences[sibling] = sequences
                built[keys[split]] = self._build_store(sequences, flips[split], consume=True)
                release_freed_memory()  # the last originals, dropped since the fill's latest release
            self.stores[split], self.sequences[split] = built[keys[split]], list(self.sequences[split])

    def _build_store(
        self,
        sequences: list[PoseSequence],
        flip: bool,
        recording_ids: list[int] | None = None,
        consume: bool = False,
    ) -> SequenceStore:
        groups, subjects = self.action_groups, self.subjects
        return SequenceStore(
            sequences,
            self.timing,
            self.input_skeleton,
            self.output_skeleton,
            flip=flip,
            action_ids=[groups.index(action_group(s.action)) for s in sequences],
            subject_ids=[subjects.index(s.subject) for s in sequences],
            recording_ids=recording_ids,
            consume=consume,
        )

    def _setup_multiview(self) -> None:
        """The 2D of the ``train`` and ``unlabeled`` splits, 3D dropped, grouped into synchronized recordings."""
        splits = [self.sequences.get(split, []) for split in ("train", "unlabeled")]
        sequences = [replace(s, poses_3d=None, trajectory=None) for split in splits for s in split]
        self.multiview_groups = recording_groups(sequences)
        recording_of = {index: group for group, members in enumerate(self.multiview_groups) for index in members}
        recording_ids = [recording_of[index] for index in range(len(sequences))]
        self.stores["multiview"] = self._build_store(sequences, flip=False, recording_ids=recording_ids)

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is not None:
            return trainer.world_size, trainer.global_rank
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size(), torch.distributed.get_rank()
        return 1, 0

    def require_split(self, split: str) -> None:
        """Raise (after ``setup``) when ``split`` holds no sequence, with :meth:`empty_split_reason`."""
        if split not in self.sequences:
            raise InputError(self.empty_split_reason(split))

    def empty_split_reason(self, split: str) -> str:
        """The message for an empty ``split``; readers override it to name their filters."""
        if split == "val" and self.val_fraction == 0:
            return f"{type(self).__name__}: split 'val' is empty: val_fraction is 0 and no validation recordings named"
        return f"{type(self).__name__}: split {split!r} is empty (non-empty splits: {sorted(self.sequences)})"

    def _store(self, split: str) -> SequenceStore:
        if split not in self.stores:
            raise InputError(f"{type(self).__name__} has no {split!r} split (loaded: {sorted(self.stores)})")
        return self.stores[split]

    def window_loader(self, split: str, seed_offset: int = 0, num_batches: int | None = None) -> DataLoader:
        """Shuffled training windows of ``split`` (``train`` or ``unlabeled``); see ``WindowBatchSampler``."""
        windows = TrainingWindows(self._store(split), self.chunk_length, self.window_stride)
        world, rank = self._rank()
        sampler = WindowBatchSampler(windows, self.batch_size, True, self.seed + seed_offset, world, rank, num_batches)
        return self._loader(windows, sampler)

    def multiview_loader(self, seed_offset: int = 2, num_batches: int | None = None) -> DataLoader:
        """Batches of synchronized instants (the ``multiview`` stream): each a :class:`PoseBatch` of
        ``instants * views`` windows, instant-major, ``instants = batch_size // views`` (at least 1), with
        ``recording`` and ``start`` telling which windows show the same instant. See ``MultiviewInstants`` and
        ``MultiviewBatchSampler``.
        """
        if "multiview" not in self.stores:
            self._setup_multiview()
        instants = MultiviewInstants(
            self._store("multiview"), self.multiview_groups, self.chunk_length, self.multiview_views
        )
        world, rank = self._rank()
        sampler = MultiviewBatchSampler(
            instants,
            max(1, self.batch_size // instants.views),
            seed=self.seed + seed_offset,
            num_replicas=world,
            rank=rank,
            num_batches=num_batches,
            instants_per_recording=self.multiview_instants_per_recording,
        )
        return self._loader(instants, sampler)

    def synchronized_views(self, split: str) -> list[list[PoseSequence]]:
        """The loaded sequences of ``split`` grouped into synchronized recordings (see ``recording_groups``),
        each list holding one recording's views in camera order."""
        if split not in self.sequences:
            raise InputError(f"{type(self).__name__} has no {split!r} split (loaded: {sorted(self.sequences)})")
        sequences = self.sequences[split]
        return [[sequences[i] for i in members] for members in recording_groups(sequences)]

    def chunk_loader(self, split: str) -> DataLoader:
        """Evaluation chunks of ``split``, sharded over processes so each frame is evaluated once."""
        chunks = EvaluationChunks(self._store(split), self.eval_chunk_length, self.eval_batch_size)
        world, rank = self._rank()
        return self._loader(chunks, ShardSampler(chunks, world, rank))

    def _loader(self, dataset, sampler) -> DataLoader:
        return DataLoader(
            dataset,
            sampler=sampler,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self, streams: Sequence[str] | None = None) -> DataLoader | CombinedLoader:
        """The training ``streams`` (default: those the module being fitted declares as ``training_streams``;
        labeled windows alone when nothing declares any): one stream gives ``PoseBatch`` batches, several give
        dicts of them by stream name (:data:`STREAMS`), combined with ``CombinedLoader``.

        Further streams are paced by the labeled one: an epoch is one pass over the labeled windows, with as many
        batches of each other stream drawn from fresh shuffles.
        """
        streams = tuple(streams) if streams is not None else self.requested_streams()
        unknown = [stream for stream in streams if stream not in STREAMS]
        if unknown or streams[:1] != ("labeled",):
            raise InputError(f"training streams {list(streams)}: the first must be 'labeled', each one of {STREAMS}")
        labeled = self.window_loader("train")
        if len(streams) == 1:
            return labeled
        loaders = {"labeled": labeled}
        for offset, stream in enumerate(streams[1:], start=1):
            if stream == "unlabeled" and "unlabeled" not in self.stores:
                raise InputError(
                    f"{self.module_name()} trains on unlabeled 2D too, but the data have no unlabeled split: set "
                    "data.init_args.unlabeled_subjects"
                )
            if stream == "unlabeled":
                loaders[stream] = self.window_loader("unlabeled", seed_offset=offset, num_batches=len(labeled))
            else:
                loaders[stream] = self.multiview_loader(seed_offset=offset + 1, num_batches=len(labeled))
        return CombinedLoader(loaders, mode="min_size")

    def requested_streams(self) -> tuple[str, ...]:
        """The ``training_streams`` of the module the trainer fits; ``("labeled",)`` without one."""
        module = self.trainer.lightning_module if self.trainer is not None else None
        return tuple(getattr(module, "training_streams", ("labeled",)))

    def module_name(self) -> str:
        module = self.trainer.lightning_module if self.trainer is not None else None
        return type(module).__name__ if module is not None else "the model"

    def val_dataloader(self) -> DataLoader:
        return self.chunk_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.chunk_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.chunk_loader("test")

    def describe(self) -> str:
        """A short table of the loaded splits: sequences, frames, subjects."""
        lines = [f"{'split':<10} {'sequences':>9} {'frames':>9}  subjects"]
        for split, sequences in self.sequences.items():
            frames = sum(len(s) for s in sequences)
            subjects = ",".join(sorted({s.subject for s in sequences}))
            lines.append(f"{split:<10} {len(sequences):>9} {frames:>9}  {subjects}")
        return "\n".join(lines)
