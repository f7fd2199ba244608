"""The numpy projection (datamodules.synthetic.projection) against the torch camera model it reimplements."""

from __future__ import annotations

import numpy as np
import torch

from components.camera import h36m_cameras, project_to_2d, world_to_camera
from datamodules.synthetic.projection import project_to_pixels


def test_projection_matches_the_torch_camera_model() -> None:
    cameras = h36m_cameras("S9")
    # Points around the capture area (world z up, metres), some of them outside an image to exercise the clamp.
    points = np.random.default_rng(0).uniform([-3.0, -3.0, 0.0], [3.0, 3.0, 2.0], (50, 17, 3))
    pixels, depth = project_to_pixels(points, cameras)
    assert pixels.shape == (4, 50, 17, 2) and depth.shape == (4, 50, 17)
    for index, camera in enumerate(cameras):
        local = world_to_camera(
            torch.from_numpy(points),
            torch.tensor(camera.orientation, dtype=torch.float64),
            torch.tensor(camera.translation, dtype=torch.float64),
        )
        expected = project_to_2d(local, torch.from_numpy(camera.pixel_intrinsics())).numpy()
        np.testing.assert_allclose(depth[index], local[..., 2].numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(pixels[index], expected, rtol=0, atol=1e-8)  # pixels; float32 resolves ~1e-4
