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


def test_overlay_draws_the_2d_on_the_original_frames_beside_the_3d(tmp_path):
    from components.rendering import render_overlay
    from datamodules.video import open_frames

    pytest.importorskip("imageio_ffmpeg", reason="MP4 needs imageio-ffmpeg")
    keypoints, poses = clip()
    keypoints = np.broadcast_to(keypoints, (FRAMES, COCO_17.num_joints, 2)).copy()
    keypoints[:, COCO_17.index("left_hip")] = (100, 240)  # a long horizontal bone: left hip -> left knee
    keypoints[:, COCO_17.index("left_knee")] = (540, 240)
    frames = np.zeros((FRAMES, 480, 640, 3), np.uint8)  # black frames: whatever is coloured was drawn
    batches = (frames[i : i + 4] for i in range(0, FRAMES, 4))
    path = render_overlay(batches, keypoints, poses, COCO_17, H36M_17, tmp_path / "overlay.mp4", fps=12, height=96)
    video = open_frames(path)
    assert (video.width, video.height, video.fps, video.expected_frames) == (128 + 96, 96, 12.0, FRAMES)
    first = next(video.batches(FRAMES)).astype(int)
    assert len(first) == FRAMES
    middle = first[0, 48, 64]  # the bone's middle, scaled by 96 / 480: (320, 240) -> (64, 48)
    assert middle[2] > 120 and middle[2] > middle[0] + 60  # tab:blue (left side), through the lossy codec
    assert first[0, 10, 10].max() < 30  # the frame itself stays black away from the bones
    with pytest.raises(ValueError, match="the video has 5 frames, but there are 6 poses"):
        render_overlay([frames[:5]], keypoints, poses, COCO_17, H36M_17, tmp_path / "short.mp4", fps=12, height=96)
    assert not (tmp_path / "short.mp4").exists()
