"""Rendered clips have the requested frames and pixel sizes; bad requests fail before anything is written."""

import numpy as np
import pytest
import torch
from PIL import Image

from components.rendering import contact_sheet, render_animation
from components.skeleton import COCO_17, H36M_17

FRAMES = 6
SIZE = (160, 96)


def clip(frames: int = FRAMES) -> tuple[np.ndarray, torch.Tensor]:
    """COCO 2D in pixels of a 640x480 image and H36M root-relative 3D in metres, swaying over ``frames``."""
    rng = np.random.default_rng(0)
    sway = np.sin(np.linspace(0, np.pi, frames))[:, None, None]
    poses = rng.normal(scale=0.3, size=(1, H36M_17.num_joints, 3)) + 0.1 * sway
    poses -= poses[:, H36M_17.root : H36M_17.root + 1]
    keypoints = 320 + 80 * rng.normal(size=(1, COCO_17.num_joints, 2)) + 20 * sway
    return keypoints, torch.from_numpy(poses).float()  # the 3D as a tensor, as a lifter returns it


def render(path, **options):
    keypoints, poses = options.pop("clip", clip())
    return render_animation(keypoints, poses, COCO_17, H36M_17, path, **({"fps": 10, "size": SIZE} | options))


def test_gif_has_every_frame_at_the_requested_size(tmp_path):
    path = render(tmp_path / "clip.gif", image_size=(640, 480))
    with Image.open(path) as gif:
        assert (gif.n_frames, gif.size) == (FRAMES, SIZE)
        assert gif.info["duration"] == 100  # milliseconds per frame at 10 fps
    assert [p.name for p in tmp_path.iterdir()] == ["clip.gif"]  # no temporary file left behind


def test_mp4_has_every_frame_at_the_requested_size(tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    path = render(tmp_path / "clip.mp4")
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = list(reader)
    assert tuple(meta["size"]) == SIZE and len(frames) == FRAMES
    assert len(frames[0]) == SIZE[0] * SIZE[1] * 3  # rgb24 bytes


def test_contact_sheet_grid_size(tmp_path):
    path = tmp_path / "sheet.png"
    keypoints, poses = clip()
    contact_sheet(keypoints, poses, COCO_17, H36M_17, path, frames=8, panel_size=64, columns=4)
    with Image.open(path) as sheet:  # 8 asked, 6 exist: two rows of (2D, 3D) pairs, four pairs wide
        assert sheet.size == (2 * 4 * 64, 2 * 64)
    contact_sheet(keypoints, poses, COCO_17, H36M_17, path, frames=3, panel_size=64, columns=4)
    with Image.open(path) as sheet:
        assert sheet.size == (2 * 3 * 64, 64)


def test_rendering_errors(tmp_path):
    keypoints, poses = clip()
    with pytest.raises(ValueError, match=r"unsupported video extension '\.avi'; expected one of \('\.gif', '\.mp4'\)"):
        render(tmp_path / "clip.avi")
    with pytest.raises(ValueError, match="same, non-zero number of frames, got 6 and 5"):
        render(tmp_path / "clip.gif", clip=(keypoints, poses[:5]))
    with pytest.raises(ValueError, match=r"poses_3d must have shape \(frames, 17, 3\) for layout 'h36m'"):
        render(tmp_path / "clip.gif", clip=(keypoints, poses[:, :16]))
    with pytest.raises(ValueError, match="even width and height"):
        render(tmp_path / "clip.mp4", size=(161, 96))
    with pytest.raises(ValueError, match=r"expected the extension '\.png', got '\.jpg'"):
        contact_sheet(keypoints, poses, COCO_17, H36M_17, tmp_path / "sheet.jpg")
    assert list(tmp_path.iterdir()) == []
