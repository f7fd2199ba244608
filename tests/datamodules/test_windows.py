from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from components.batch import PoseBatch
from components.camera import flip_intrinsics
from components.errors import InputError
from components.geometry import flip_horizontal
from components.lifter import Timing
from components.skeleton import H36M_17
from datamodules.samplers import ShardSampler, WindowBatchSampler
from datamodules.sequence import PoseSequence
from datamodules.store import SequenceStore
from datamodules.windows import EvaluationChunks, TrainingWindows

J = H36M_17.num_joints


def frame_coded_sequence(frames: int, offset: float = 0.0, labeled: bool = True) -> PoseSequence:
    """2D x = frame index + offset, y = joint index: every gathered value says where it came from."""
    keypoints = np.zeros((frames, J, 2), dtype=np.float32)
    keypoints[..., 0] = np.arange(frames)[:, None] + offset
    keypoints[..., 1] = np.arange(J)[None]
    poses = np.random.default_rng(frames).normal(size=(frames, J, 3)).astype(np.float32) if labeled else None
    trajectory = np.random.default_rng(frames + 1).normal(size=(frames, 1, 3)).astype(np.float32) if labeled else None
    intrinsics = np.arange(9, dtype=np.float32) + offset
    return PoseSequence("S1", f"Walking {frames}", "c0", keypoints, poses, trajectory, intrinsics)


def make_store(lengths, receptive_field=5, causal=False, flip=False, labeled=True) -> SequenceStore:
    sequences = [frame_coded_sequence(n, offset=100 * i, labeled=labeled) for i, n in enumerate(lengths)]
    ids = list(range(len(sequences)))
    return SequenceStore(sequences, Timing(receptive_field, causal), H36M_17, H36M_17, flip, ids, ids)


def input_frames(batch: PoseBatch) -> np.ndarray:
    return batch.keypoints_2d[..., 0, 0].numpy()


def test_timing():
    assert (Timing(243).pad, Timing(243).pad_before, Timing(243).pad_after) == (
        121,
        121,
        121,
    )
    causal = Timing(27, causal=True)
    assert (causal.causal_shift, causal.pad_before, causal.pad_after) == (13, 26, 0)
    with pytest.raises(ValueError, match="positive odd"):
        Timing(4)


def test_windows_are_edge_padded_at_sequence_borders():
    store = make_store([10, 6], receptive_field=5)
    one = torch.tensor([0, 0, 0, 1, 1])
    batch = store.gather(one, torch.tensor([0, 9, 4, 0, 5]), torch.zeros(5, dtype=torch.bool), length=1)
    assert input_frames(batch).tolist() == [
        [0, 0, 0, 1, 2],
        [7, 8, 9, 9, 9],
        [2, 3, 4, 5, 6],
        [100, 100, 100, 101, 102],
        [103, 104, 105, 105, 105],
    ]
    assert batch.keypoints_2d[0, 0, :, 1].tolist() == list(range(J))
    assert batch.poses_3d.shape == (5, 1, J, 3) and batch.trajectory.shape == (5, 1, 1, 3)
    assert torch.equal(batch.poses_3d[1, 0], torch.from_numpy(frame_coded_sequence(10).poses_3d[9]))
    assert batch.intrinsics[3].tolist() == (np.arange(9) + 100).tolist()


def test_causal_windows_end_at_the_output_frame():
    store = make_store([10], receptive_field=5, causal=True)
    batch = store.gather(torch.tensor([0, 0]), torch.tensor([0, 3]), torch.zeros(2, dtype=torch.bool), length=1)
    assert input_frames(batch).tolist() == [[0, 0, 0, 0, 0], [0, 0, 1, 2, 3]]


def test_flipped_windows_mirror_everything():
    store = make_store([12], receptive_field=3, flip=True)
    sequence, start = torch.tensor([0]), torch.tensor([4])
    plain = store.gather(sequence, start, torch.tensor([False]), length=2)
    mirrored = store.gather(sequence, start, torch.tensor([True]), length=2)
    assert torch.equal(mirrored.keypoints_2d, flip_horizontal(plain.keypoints_2d, H36M_17))
    assert torch.equal(mirrored.poses_3d, flip_horizontal(plain.poses_3d, H36M_17))
    assert torch.equal(mirrored.trajectory, plain.trajectory * torch.tensor([-1.0, 1.0, 1.0]))
    assert torch.equal(mirrored.intrinsics, flip_intrinsics(plain.intrinsics))
    assert mirrored.flipped.tolist() == [True]


@pytest.mark.parametrize("causal", [False, True])
def test_preallocated_store_equals_padded_concatenation_without_a_mirrored_copy(causal):
    sequences = [frame_coded_sequence(n, offset=100 * i) for i, n in enumerate([7, 1, 12])]
    timing = Timing(5, causal)
    store = SequenceStore(sequences, timing, H36M_17, H36M_17, True, [0, 1, 2], [0, 1, 2])
    pads = ((timing.pad_before, timing.pad_after), (0, 0), (0, 0))
    padded = np.concatenate([np.pad(s.keypoints_2d, pads, mode="edge") for s in sequences])
    assert np.array_equal(store.keypoints.numpy(), padded)
    assert np.array_equal(store.poses_3d.numpy(), np.concatenate([s.poses_3d for s in sequences]))
    assert np.array_equal(store.trajectory.numpy(), np.concatenate([s.trajectory for s in sequences]))
    assert store.keypoints.dtype == store.poses_3d.dtype == torch.float32


def mirrored_by_hand(sequence: PoseSequence) -> PoseSequence:
    """What the store used to keep as its mirrored copy of ``sequence``."""
    return replace(
        sequence,
        keypoints_2d=flip_horizontal(sequence.keypoints_2d, H36M_17),
        poses_3d=flip_horizontal(sequence.poses_3d, H36M_17),
        trajectory=sequence.trajectory * np.float32([-1, 1, 1]),
        intrinsics=flip_intrinsics(sequence.intrinsics),
    )


@pytest.mark.parametrize("causal", [False, True])
def test_mirrored_gather_equals_gathering_from_a_mirrored_copy(causal):
    rng = np.random.default_rng(0)
    sequences = [frame_coded_sequence(n, offset=100 * i) for i, n in enumerate([7, 3, 12])]
    sequences = [replace(s, keypoints_2d=rng.normal(size=s.keypoints_2d.shape).astype(np.float32)) for s in sequences]
    timing, ids = Timing(5, causal), [0, 1, 2]
    store = SequenceStore(sequences, timing, H36M_17, H36M_17, True, ids, ids)
    mirror = SequenceStore([mirrored_by_hand(s) for s in sequences], timing, H36M_17, H36M_17, False, ids, ids)
    sequence, start = torch.tensor([0, 2, 1, 2, 0]), torch.tensor([0, 9, 1, 0, 5])
    flipped = torch.tensor([True, True, False, True, False])
    batch = store.gather(sequence, start, flipped, length=2)
    expected = mirror.gather(sequence, start, torch.zeros(5, dtype=torch.bool), length=2)
    plain = store.gather(sequence, start, torch.zeros(5, dtype=torch.bool), length=2)
    order = torch.tensor([2, 4, 0, 1, 3])  # the batch holds the plain windows first, then the mirrored ones
    assert torch.equal(batch.sequence, sequence[order]) and torch.equal(batch.start, start[order])
    assert batch.flipped.tolist() == [False, False, True, True, True]
    for name in ("keypoints_2d", "poses_3d", "trajectory", "intrinsics"):
        got, want, unflipped = getattr(batch, name), getattr(expected, name)[order], getattr(plain, name)[order]
        assert torch.equal(got[2:], want[2:]), name
        assert torch.equal(got[:2], unflipped[:2]), name


def test_consuming_store_replaces_sequences_by_views_as_it_fills():
    sequences = [frame_coded_sequence(n, offset=100 * i) for i, n in enumerate([7, 3])]
    originals = list(sequences)
    store = SequenceStore(sequences, Timing(3), H36M_17, H36M_17, False, [0, 1], [0, 1], consume=True)
    for view, original in zip(sequences, originals, strict=True):
        assert np.shares_memory(view.keypoints_2d, store.keypoints.numpy())
        assert np.shares_memory(view.poses_3d, store.poses_3d.numpy())
        assert np.array_equal(view.keypoints_2d, original.keypoints_2d)
        assert np.array_equal(view.trajectory, original.trajectory)


def test_sequence_views_share_the_store_and_keep_the_values():
    sequences = [frame_coded_sequence(n, offset=100 * i) for i, n in enumerate([7, 12])]
    store = SequenceStore(sequences, Timing(5), H36M_17, H36M_17, True, [0, 1], [0, 1])
    for view, original in zip(store.sequence_views(sequences), sequences, strict=True):
        assert (view.subject, view.action, len(view)) == (original.subject, original.action, len(original))
        for name in ("keypoints_2d", "poses_3d", "trajectory"):
            assert np.array_equal(getattr(view, name), getattr(original, name))
        assert np.shares_memory(view.keypoints_2d, store.keypoints.numpy())
        assert np.shares_memory(view.poses_3d, store.poses_3d.numpy())


def test_training_windows_tile_sequences():
    store = make_store([10, 3, 8], receptive_field=3)
    windows = TrainingWindows(store, chunk_length=4)
    # 10 frames -> starts 0, 4, 6 (last one ends at the last frame); 3 frames -> none; 8 -> 0, 4.
    assert windows.window_sequence.tolist() == [0, 0, 0, 2, 2]
    assert windows.window_start.tolist() == [0, 4, 6, 0, 4]
    batch = windows[torch.tensor([2, 4])]
    assert input_frames(batch).tolist() == [[5, 6, 7, 8, 9, 9], [203, 204, 205, 206, 207, 207]]
    assert batch.poses_3d.shape == (2, 4, J, 3)
    with pytest.raises(ValueError, match="no sequence has the 20 frames"):
        TrainingWindows(store, chunk_length=20)


def test_training_windows_overlap_with_a_smaller_stride():
    store = make_store([10, 3, 11], receptive_field=1)
    windows = TrainingWindows(store, chunk_length=4, stride=3)
    # 10 frames -> 0, 3, 6 (the last one ends at frame 9); 3 frames -> none; 11 -> 0, 3, 6, 7.
    assert windows.window_sequence.tolist() == [0, 0, 0, 2, 2, 2, 2]
    assert windows.window_start.tolist() == [0, 3, 6, 0, 3, 6, 7]
    tiled = TrainingWindows(store, chunk_length=4, stride=4)  # the stride of tiling is the default
    assert tiled.window_start.tolist() == TrainingWindows(store, chunk_length=4).window_start.tolist()
    with pytest.raises(ValueError, match="window_stride must be >= 1 or None, got 0"):
        TrainingWindows(store, chunk_length=4, stride=0)


def test_flip_doubles_the_window_ids():
    store = make_store([6], receptive_field=1, flip=True)
    windows = TrainingWindows(store)
    assert len(windows) == 12
    batch = windows[torch.tensor([1, 7])]
    assert batch.flipped.tolist() == [False, True]
    assert batch.keypoints_2d[0, 0, 0, 0] == -batch.keypoints_2d[1, 0, 0, 0] == 1.0


def test_sampler_covers_every_window_once_per_epoch_across_ranks():
    windows = TrainingWindows(make_store([50, 33], receptive_field=3, flip=True))  # 166 ids, 83 per rank
    seen = []
    for rank in range(2):
        sampler = WindowBatchSampler(windows, batch_size=16, seed=7, num_replicas=2, rank=rank)
        sampler.set_epoch(3)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 6  # 5 full batches and one of 3
        seen.append(torch.cat(batches))
    assert len(seen[0]) == len(seen[1])
    union = torch.cat(seen)
    assert len(torch.unique(union)) == len(union)  # no window twice
    assert sorted(union.tolist()) == list(range(len(windows)))


def test_sampler_shuffles_per_epoch_and_repeats_per_seed():
    windows = TrainingWindows(make_store([40], receptive_field=1))
    first = WindowBatchSampler(windows, batch_size=8, seed=1)
    second = WindowBatchSampler(windows, batch_size=8, seed=1)
    epoch0 = torch.cat(list(first))
    assert torch.equal(epoch0, torch.cat(list(second)))
    first.set_epoch(1)
    epoch1 = torch.cat(list(first))
    assert not torch.equal(epoch0, epoch1)
    assert sorted(epoch0.tolist()) == sorted(epoch1.tolist()) == list(range(40))


def test_lone_trailing_window_is_dropped():
    windows = TrainingWindows(make_store([17], receptive_field=1))
    sampler = WindowBatchSampler(windows, batch_size=8, shuffle=False)
    assert [len(b) for b in sampler] == [8, 8] and len(sampler) == 2
    sharded = WindowBatchSampler(windows, batch_size=8, shuffle=False, num_replicas=2, rank=1)
    assert [b.tolist() for b in sharded] == [[1, 3, 5, 7, 9, 11, 13, 15]]  # 17 // 2 = 8 per rank


@pytest.mark.parametrize("batch_chunks", [1, 3])
@pytest.mark.parametrize("chunk_length", [None, 4, 7])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_evaluation_counts_every_frame_exactly_once(chunk_length, world, batch_chunks):
    lengths = [10, 3, 15]
    store = make_store(lengths, receptive_field=5)
    chunks = EvaluationChunks(store, chunk_length, batch_chunks)
    counts = [np.zeros(n, dtype=int) for n in lengths]
    for rank in range(world):
        for index in ShardSampler(chunks, num_replicas=world, rank=rank):
            batch = chunks[index]
            assert len(batch) <= batch_chunks
            frames = batch.poses_3d.shape[1]
            for window, (sequence, start) in enumerate(zip(batch.sequence.tolist(), batch.start.tolist(), strict=True)):
                counts[sequence][start : start + frames] += 1
                assert batch.keypoints_2d.shape[1] == frames + 4
                assert input_frames(batch)[window, 2] == start + 100 * sequence  # centred on its first output frame
    assert all((c == 1).all() for c in counts)


def test_evaluation_steps_batch_chunks_of_one_length_longest_first():
    chunks = EvaluationChunks(make_store([10, 3, 15], receptive_field=5), chunk_length=4, batch_chunks=3)
    steps = [chunks[i] for i in range(len(chunks))]
    # chunks of 4 frames: (0, 0) (0, 4) (2, 0) (2, 4) (2, 8); of 3: (1, 0) (2, 12); of 2: (0, 8)
    assert [(b.sequence.tolist(), b.start.tolist(), b.poses_3d.shape[1]) for b in steps] == [
        ([0, 0, 2], [0, 4, 0], 4),
        ([2, 2], [4, 8], 4),
        ([1, 2], [0, 12], 3),
        ([0], [8], 2),
    ]
    with pytest.raises(InputError, match="eval_batch_size must be >= 1 chunks, got 0"):
        EvaluationChunks(make_store([10]), chunk_length=4, batch_chunks=0)


def test_dataloader_yields_pose_batches():
    windows = TrainingWindows(make_store([30], receptive_field=3, flip=True))
    loader = DataLoader(windows, sampler=WindowBatchSampler(windows, batch_size=10), batch_size=None)
    batches = list(loader)
    assert all(isinstance(b, PoseBatch) for b in batches)
    assert sum(len(b) for b in batches) == 60
    moved = batches[0].to(torch.float64)
    assert moved.keypoints_2d.dtype == torch.float64 and moved.sequence.dtype == torch.float64


def test_store_rejects_mixed_and_mismatched_input():
    labeled, unlabeled = frame_coded_sequence(5), frame_coded_sequence(5, labeled=False)
    with pytest.raises(ValueError, match="all labeled or all unlabeled"):
        SequenceStore([labeled, unlabeled], Timing(), H36M_17, H36M_17, False, [0, 0], [0, 0])
    unlabeled_store = make_store([8], labeled=False)
    assert unlabeled_store.gather(torch.tensor([0]), torch.tensor([0]), torch.tensor([False]), 2).poses_3d is None


def test_batches_that_are_kept_are_never_overwritten():
    windows = TrainingWindows(make_store([64], receptive_field=5))
    ids = torch.arange(16)
    kept = [windows[ids] for _ in range(6)]  # more live batches than the buffer pool holds
    first = kept[0].keypoints_2d.clone()
    for _ in range(3):
        windows[torch.flip(ids, [0])]  # released at once: its buffer may be recycled
    assert all(torch.equal(b.keypoints_2d, first) for b in kept)
    released = windows[ids].keypoints_2d.data_ptr()
    assert windows[ids].keypoints_2d.data_ptr() == released  # a dropped batch's buffer is reused


def test_paced_sampler_yields_exactly_the_requested_batches():
    windows = TrainingWindows(make_store([10], receptive_field=1))  # 10 windows
    sampler = WindowBatchSampler(windows, batch_size=4, seed=3, num_batches=7)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 7 and all(len(b) == 4 for b in batches)
    drawn = torch.cat(batches)
    assert sorted(drawn[:10].tolist()) == list(range(10))  # first a full pass, then a fresh shuffle
    assert sorted(drawn[10:20].tolist()) == list(range(10))
    ranks = [
        torch.cat(list(WindowBatchSampler(windows, 4, seed=3, num_replicas=2, rank=r, num_batches=3))) for r in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1]) == 12


def test_the_buffer_pool_reuses_a_batch_only_when_nobody_holds_it():
    """Guards the pool's use of torch's storage use count: if torch changes it, this fails instead of batches
    being overwritten while held (or never recycled)."""
    from datamodules.store import _BufferPool

    pool = _BufferPool()
    first = pool.empty((4, 3), torch.float32)
    first.fill_(1.0)
    held = pool.empty((4, 3), torch.float32)  # `first` is still referenced: a new buffer
    assert held.data_ptr() != first.data_ptr()
    pointer = first.data_ptr()
    del first
    assert pool.empty((4, 3), torch.float32).data_ptr() == pointer  # released: recycled
    pointer, view = held.data_ptr(), held[1:]  # a view keeps its buffer busy too
    del held
    assert pool.empty((4, 3), torch.float32).data_ptr() != pointer and view.shape == (3, 3)
