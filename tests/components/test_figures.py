"""The validation figure shows the 2D frame the drawn prediction belongs to, for centred and causal lifters."""

import numpy as np
import pytest
import torch

from components.batch import PoseBatch
from components.lifter import Timing
from components.rendering import pose_figure
from components.skeleton import H36M_17


@pytest.mark.parametrize("causal", [False, True])
def test_the_figure_draws_the_input_frame_of_the_shown_output_frame(causal):
    timing = Timing(9, causal)
    frames_out = 5
    frames_in = frames_out + timing.receptive_field - 1
    keypoints = torch.arange(frames_in, dtype=torch.float32)[None, :, None, None].expand(1, frames_in, 17, 2).clone()
    keypoints[..., 1] = torch.linspace(0, 1, 17)  # distinct joints; x holds the frame index
    poses = torch.zeros(1, frames_out, 17, 3)
    ids = torch.zeros(1, dtype=torch.int64)
    batch = PoseBatch(
        keypoints, ids, ids, ids, ids, ids.bool(), poses_3d=poses, trajectory=torch.zeros(1, frames_out, 1, 3)
    )
    figure = pose_figure(batch, poses, H36M_17, H36M_17, timing)
    drawn = {float(x) for line in figure.axes[0].get_lines() for x in line.get_xdata()}
    shown = frames_out // 2  # the middle output frame
    expected = shown + (timing.receptive_field - 1 if causal else (timing.receptive_field - 1) // 2)
    assert drawn == {float(expected)} and timing.input_frame(shown) == expected
    np.testing.assert_equal(expected, 10 if causal else 6)
