"""Streaming equals what ``poselift test/predict`` computes: the lifter on each causally edge-padded sequence."""

import numpy as np
import pytest
import torch

from components.lifter import Timing
from components.networks.temporal_conv import TemporalConvLifter
from components.skeleton import H36M_17
from components.streaming import StreamingLifter
from datamodules.sequence import PoseSequence
from datamodules.store import SequenceStore
from datamodules.windows import EvaluationChunks

J = H36M_17.num_joints


def causal_lifter(seed: int = 0) -> TemporalConvLifter:
    torch.manual_seed(seed)
    lifter = TemporalConvLifter(filter_widths=(3, 3), channels=16, causal=True)
    # Non-trivial running statistics, so the folded BatchNorm matters.
    for bn in (lifter.expand_bn, *lifter.layers_bn):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return lifter.eval()


def sequence(frames: int, seed: int) -> PoseSequence:
    rng = np.random.default_rng(seed)
    keypoints = rng.normal(scale=0.3, size=(frames, J, 2)).astype(np.float32)
    return PoseSequence("S9", "Walking", "c0", keypoints)


def offline(lifter: TemporalConvLifter, sequences: list[PoseSequence], chunk_length: int | None) -> list[torch.Tensor]:
    """Per-sequence ``(T, J, 3)`` poses through the evaluation's own padding and chunking (``EvaluationChunks``)."""
    ids = list(range(len(sequences)))
    timing = Timing(lifter.receptive_field, causal=True)
    store = SequenceStore(sequences, timing, H36M_17, H36M_17, False, ids, ids)
    chunks = EvaluationChunks(store, chunk_length)
    outputs = [[] for _ in sequences]
    with torch.no_grad():
        for index in range(len(chunks)):
            batch = chunks[index]
            outputs[int(batch.sequence)].append(lifter(batch.keypoints_2d)[0])
    return [torch.cat(parts) for parts in outputs]


def streamed(stream: StreamingLifter, seq: PoseSequence) -> torch.Tensor:
    stream.reset()
    return torch.stack([stream.push(torch.from_numpy(frame)) for frame in seq.keypoints_2d])


@pytest.mark.parametrize("chunk_length", [None, 4])
def test_streaming_equals_offline_causal_evaluation(chunk_length):
    lifter = causal_lifter()
    sequences = [sequence(23, seed=1), sequence(5, seed=2)]  # the second is shorter than the receptive field (9)
    expected = offline(lifter, sequences, chunk_length)
    stream = StreamingLifter(lifter)
    for seq, want in zip(sequences, expected, strict=True):
        got = streamed(stream, seq)  # the same streamer, reset between sequences
        assert got.shape == (len(seq), J, 3)
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_first_frame_is_lifted_from_replicated_copies():
    lifter = causal_lifter()
    frame = torch.randn(J, 2)
    pose = StreamingLifter(lifter).push(frame)
    with torch.no_grad():
        expected = lifter(frame.expand(1, lifter.receptive_field, J, 2))[0, 0]
    torch.testing.assert_close(pose, expected, atol=1e-6, rtol=0)


def test_output_depends_only_on_the_last_receptive_field_frames():
    lifter = causal_lifter()
    seq = sequence(30, seed=3).keypoints_2d
    rf = lifter.receptive_field
    one, other = StreamingLifter(lifter), StreamingLifter(lifter)
    for frame in seq[:10]:
        one.push(torch.from_numpy(frame))
    for frame in np.random.default_rng(4).normal(size=(17, J, 2)):
        other.push(torch.from_numpy(frame))
    for frame in seq[10 : 10 + rf - 1]:
        one.push(torch.from_numpy(frame))
        other.push(torch.from_numpy(frame))
    last = torch.from_numpy(seq[10 + rf - 1])
    torch.testing.assert_close(one.push(last), other.push(last), atol=1e-6, rtol=0)


def test_streaming_needs_a_causal_lifter_and_consistent_frames():
    with pytest.raises(ValueError, match="causal lifter"):
        StreamingLifter(TemporalConvLifter(filter_widths=(3,), channels=8, causal=False))
    stream = StreamingLifter(causal_lifter())
    with pytest.raises(ValueError, match=r"\(J_in, F\)"):
        stream.push(torch.zeros(1, J, 2))
    stream.push(torch.zeros(J, 2))
    with pytest.raises(ValueError, match=r"\(17, 2\)"):
        stream.push(torch.zeros(16, 2))
