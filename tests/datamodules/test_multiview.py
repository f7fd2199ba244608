import numpy as np
import pytest
import torch
from lightning.pytorch.utilities import CombinedLoader

from components.lifter import Timing
from components.skeleton import H36M_17
from datamodules.human36m import Human36mDataModule
from datamodules.samplers import MultiviewBatchSampler, recording_groups
from datamodules.sequence import PoseSequence
from datamodules.store import SequenceStore
from datamodules.windows import MultiviewInstants

J = H36M_17.num_joints
CAMERAS = ("c0", "c1", "c2")


def coded_view(subject: str, action: str, camera: str, frames: int, recording: int) -> PoseSequence:
    """2D x = frame index within the sequence, y = 10 * recording + camera index: a window says where it is from."""
    keypoints = np.zeros((frames, J, 2), dtype=np.float32)
    keypoints[..., 0] = np.arange(frames)[:, None]
    keypoints[..., 1] = 10 * recording + CAMERAS.index(camera)
    return PoseSequence(subject, action, camera, keypoints)


def recordings_of_two_subjects() -> tuple[list[PoseSequence], list[list[int]]]:
    """2 subjects x 2 actions x 3 cameras; S2/Eating in two blocks; S2/Sitting seen by two cameras only.

    Sequences are listed camera-major per recording, as the Human3.6M reader lists them. Returns the sequences
    and the expected groups.
    """
    plan = [("S1", "Walking", [30]), ("S1", "Eating", [41]), ("S2", "Walking", [50]), ("S2", "Eating", [20, 25])]
    sequences, expected, recording = [], [], 0
    for subject, action, blocks in plan:
        first = len(sequences)
        for camera in CAMERAS:
            sequences += [coded_view(subject, action, camera, n, recording + b) for b, n in enumerate(blocks)]
        expected += [[first + b + len(blocks) * c for c in range(3)] for b in range(len(blocks))]
        recording += len(blocks)
    sequences += [coded_view("S2", "Sitting", camera, 36, recording) for camera in CAMERAS[:2]]
    expected.append([len(sequences) - 2, len(sequences) - 1])
    return sequences, expected


def make_store(sequences: list[PoseSequence], receptive_field: int = 3) -> SequenceStore:
    groups = recording_groups(sequences)
    recording_ids = [next(g for g, members in enumerate(groups) if i in members) for i in range(len(sequences))]
    ids = list(range(len(sequences)))
    return SequenceStore(
        sequences, Timing(receptive_field), H36M_17, H36M_17, False, ids, ids, recording_ids=recording_ids
    )


def equal_recordings(lengths: list[int]) -> MultiviewInstants:
    """One 3-camera recording per length, single-frame instants."""
    sequences = [coded_view("S1", f"Walking {i}", c, n, i) for i, n in enumerate(lengths) for c in CAMERAS]
    return MultiviewInstants(make_store(sequences, receptive_field=1), recording_groups(sequences))


def test_recording_groups_pair_views_and_blocks():
    sequences, expected = recordings_of_two_subjects()
    assert recording_groups(sequences) == expected
    reversed_cameras = sequences[:3][::-1] + sequences[3:]  # S1/Walking listed c2, c1, c0
    # views follow the cameras' first appearance (c2, c1, c0), also in S1/Eating listed c0, c1, c2
    assert recording_groups(reversed_cameras)[:2] == [[0, 1, 2], [5, 4, 3]]


def test_recording_groups_reject_unsynchronized_views():
    views = [coded_view("S1", "Walking", c, n, 0) for c, n in zip(CAMERAS, [30, 31, 30], strict=True)]
    with pytest.raises(ValueError, match=r"S1/Walking.*\['c0', 'c1', 'c2'\] have \[30, 31, 30\] frames"):
        recording_groups(views)


def test_instants_gather_every_view_of_one_frame_instant_major():
    sequences, expected = recordings_of_two_subjects()
    store = make_store(sequences)
    instants = MultiviewInstants(store, recording_groups(sequences))
    assert instants.views == 3  # the 2-camera recording is dropped
    assert len(instants) == 30 + 41 + 50 + 20 + 25
    ids = torch.tensor([0, 75, 128, 145])  # instants: S1/Walking 0-29, S1/Eating 30-70, S2/Walking 71-120, ...
    batch = instants[ids]
    group, start = instants.instant_group[ids], instants.instant_start[ids]
    assert group.tolist() == [0, 2, 3, 4] and start.tolist() == [0, 4, 7, 4]  # S2/Eating: both blocks
    assert len(batch) == 12 and batch.keypoints_2d.shape == (12, 3, J, 2) and batch.poses_3d is None
    assert batch.recording.tolist() == group.repeat_interleave(3).tolist()
    assert batch.start.tolist() == start.repeat_interleave(3).tolist()
    assert batch.sequence.view(4, 3).tolist() == [expected[g] for g in group.tolist()]
    centre = batch.keypoints_2d[:, 1, 0].view(4, 3, 2)  # (instant, view, xy) of each window's output frame
    assert torch.equal(centre[..., 0], start[:, None].float().expand(4, 3))
    assert torch.equal(centre[..., 1], (10 * group[:, None] + torch.arange(3)).float())
    assert not batch.flipped.any()
    assert torch.equal(batch.to(torch.float64).recording, batch.recording.double())


def test_instants_tile_recordings_and_choose_views():
    sequences, _ = recordings_of_two_subjects()
    store = make_store(sequences, receptive_field=1)
    tiled = MultiviewInstants(store, recording_groups(sequences), chunk_length=16)
    # 30 -> 0, 14; 41 -> 0, 16, 25; 50 -> 0, 16, 32, 34; 20 -> 0, 4; 25 -> 0, 9
    assert tiled.instant_start.tolist() == [0, 14, 0, 16, 25, 0, 16, 32, 34, 0, 4, 0, 9]
    assert tiled[torch.tensor([1])].keypoints_2d[:, :, 0, 0].tolist() == [list(range(14, 30))] * 3
    pairs = MultiviewInstants(store, recording_groups(sequences), views=2)
    assert pairs.instant_group.unique().tolist() == [0, 1, 2, 3, 4, 5]  # now S2/Sitting too, first 2 cameras
    assert pairs[torch.tensor([0])].keypoints_2d[:, 0, 0, 1].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="no synchronized recording has 4 views"):
        MultiviewInstants(store, recording_groups(sequences), views=4)


def test_sampler_covers_every_instant_once_per_epoch_across_ranks():
    instants = equal_recordings([31, 45, 40])  # 116 instants, 58 per rank
    seen = []
    for rank in range(2):
        sampler = MultiviewBatchSampler(instants, batch_size=16, seed=5, num_replicas=2, rank=rank)
        sampler.set_epoch(2)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 4 and [len(b) for b in batches] == [16, 16, 16, 10]
        seen.append(torch.cat(batches))
    union = torch.cat(seen)
    assert sorted(union.tolist()) == list(range(len(instants)))


def test_sampler_keeps_runs_of_one_recording_in_every_batch():
    instants = equal_recordings([32, 48, 40, 24])  # 144 instants: runs of 8 fill every batch and rank exactly
    for rank in range(2):
        sampler = MultiviewBatchSampler(instants, batch_size=16, seed=9, num_replicas=2, rank=rank)
        order = torch.cat(list(sampler))
        runs = instants.instant_group[order].view(-1, 8)
        assert (runs == runs[:, :1]).all()  # every run of 8 instants comes from one recording
        starts = instants.instant_start[order].view(-1, 8)
        assert all(len(set(run)) == 8 for run in starts.tolist())  # at 8 different times
        assert len(torch.unique_consecutive(runs[:, 0])) > 3  # and the runs are shuffled across recordings


def test_sampler_cuts_each_recording_into_runs():
    instants = equal_recordings([10, 7])
    order = torch.cat(list(MultiviewBatchSampler(instants, batch_size=17, seed=1, instants_per_recording=4)))
    group = instants.instant_group[order]
    boundaries = torch.nonzero(group[1:] != group[:-1]).flatten() + 1
    edges = torch.cat([torch.tensor([0]), boundaries, torch.tensor([17])])
    # runs of one recording: 10 = 4 + 4 + 2 and 7 = 4 + 3 (adjacent runs of one recording may merge)
    assert sorted(order.tolist()) == list(range(17))
    assert len(boundaries) <= 4 and edges.diff().min() >= 2


def test_sampler_is_deterministic_per_seed_and_epoch():
    instants = equal_recordings([30, 45])

    def epoch(seed: int, number: int) -> torch.Tensor:
        sampler = MultiviewBatchSampler(instants, batch_size=12, seed=seed)
        sampler.set_epoch(number)
        return torch.cat(list(sampler))

    assert torch.equal(epoch(3, 0), epoch(3, 0))
    assert not torch.equal(epoch(3, 0), epoch(3, 1)) and not torch.equal(epoch(3, 0), epoch(4, 0))
    assert sorted(epoch(3, 1).tolist()) == list(range(75))
    ordered = MultiviewBatchSampler(instants, batch_size=12, shuffle=False)
    assert torch.equal(torch.cat(list(ordered)), torch.arange(75))


def test_paced_sampler_yields_the_requested_batches_on_every_rank():
    instants = equal_recordings([10, 6])  # 16 instants
    ranks = [list(MultiviewBatchSampler(instants, 4, seed=2, num_replicas=2, rank=r, num_batches=7)) for r in (0, 1)]
    assert [len(r) for r in ranks] == [7, 7] and all(len(b) == 4 for r in ranks for b in r)
    drawn = torch.cat([torch.cat(r) for r in ranks])
    assert all(sorted(drawn[i : i + 16].tolist()) == list(range(16)) for i in (0, 16, 32))  # fresh shuffles


def test_human36m_multiview_training_batches():
    data = Human36mDataModule(
        synthetic_size="tiny", train_subjects=["S1"], subset=0.1,
        unlabeled_subjects=["S1", "S5"], batch_size=64, receptive_field=9,
    )  # fmt: skip
    data.setup("fit")
    loader = data.train_dataloader(("labeled", "multiview"))
    assert isinstance(loader, CombinedLoader)
    pair, _, _ = next(iter(loader))
    labeled, multiview = pair["labeled"], pair["multiview"]
    assert labeled.poses_3d.shape == (64, 1, 17, 3) and labeled.recording is None
    assert multiview.keypoints_2d.shape == (64 // 4 * 4, 9, 17, 2) and multiview.poses_3d is None
    assert multiview.trajectory is None and not multiview.flipped.any()
    recording, start = multiview.recording.view(16, 4), multiview.start.view(16, 4)
    assert (recording == recording[:, :1]).all() and (start == start[:, :1]).all()
    assert torch.unique(recording[:, 0], return_counts=True)[1].max() >= 2  # instants of one recording together
    views = [data.multiview_groups[g] for g in recording[:, 0].tolist()]
    assert multiview.sequence.view(16, 4).tolist() == views
    store = data.stores["multiview"]
    assert len(store.lengths) == len(data.sequences["train"]) + len(data.sequences["unlabeled"])
    assert len(data.multiview_groups) == len(store.lengths) // 4  # every recording block seen by 4 cameras
    groups = data.synchronized_views("train")
    assert all(len(g) == 4 and len({s.camera for s in g}) == 4 and len({len(s) for s in g}) == 1 for g in groups)
    assert len(loader) == len(data.window_loader("train"))
