"""The lifter contract and its one timing object."""

import numpy as np
import pytest
import torch
from torch import nn

from components.lifter import Timing, check_lifter
from components.networks.temporal_conv import TemporalConvLifter
from lightning_modules.supervised import SupervisedLifting


def test_timing_known_values():
    assert (Timing(243).pad, Timing(243).pad_before, Timing(243).pad_after) == (121, 121, 121)
    causal = Timing(27, causal=True)
    assert (causal.causal_shift, causal.pad_before, causal.pad_after, causal.input_frame(0)) == (13, 26, 0, 26)
    frames = np.arange(5.0)[:, None]
    assert Timing(5).pad_sequence(frames)[:, 0].tolist() == [0, 0, 0, 1, 2, 3, 4, 4, 4]
    assert causal.pad_sequence(torch.arange(3.0)).tolist() == [0.0] * 27 + [1.0, 2.0]
    with pytest.raises(ValueError, match="positive odd number, got 4"):
        Timing(4)


def test_a_padded_sequence_gives_one_output_per_frame_at_its_own_frame():
    lifter = TemporalConvLifter(filter_widths=(3, 3), channels=16, causal=True).eval()
    sequence = torch.randn(12, 17, 2)
    padded = Timing.of(lifter).pad_sequence(sequence)[None]
    with torch.no_grad():
        whole = lifter(padded)[0]
        alone = lifter(sequence[None, 2:11])[0, 0]  # causal: frame 10 from the 9 frames that end with it
    assert whole.shape[0] == 12 and torch.allclose(whole[10], alone, atol=1e-6)


def test_a_network_outside_the_contract_is_refused_at_construction():
    with pytest.raises(TypeError, match=r"lifter Linear lacks \['receptive_field', 'causal'\]"):
        SupervisedLifting(nn.Linear(2, 3))
    lifter = TemporalConvLifter(filter_widths=(3, 3), channels=16)
    trajectory = TemporalConvLifter(num_joints_out=1, filter_widths=(3, 3, 3), channels=16)
    with pytest.raises(ValueError, match=r"trajectory_model has timing Timing\(receptive_field=27, causal=False\), "):
        SupervisedLifting(lifter, trajectory)
    assert check_lifter(lifter) == Timing(9, False)
