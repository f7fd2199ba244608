"""Frames from video files and image folders: order, size, rate, streaming, and damaged input."""

import numpy as np
import pytest
from PIL import Image

from components.errors import InputError, MissingFileError
from datamodules.video import FrameSource, is_frame_source, open_frames

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="video decoding needs imageio-ffmpeg")


def write_video(path, frames: int, size=(64, 48), fps=25.0):
    """An H.264 video whose frame i is uniformly grey level 8 * i (so decoded order is checkable)."""
    writer = imageio_ffmpeg.write_frames(str(path), size, fps=fps, macro_block_size=16, quality=9)
    writer.send(None)
    for i in range(frames):
        writer.send(np.full((size[1], size[0], 3), 8 * i, np.uint8))
    writer.close()
    return path


def test_video_frames_stream_in_order_with_the_file_rate_and_size(tmp_path):
    source = open_frames(write_video(tmp_path / "clip.mp4", 30))
    assert (source.width, source.height, source.fps, source.expected_frames) == (64, 48, 25.0, 30)
    batches = list(source.batches(8))
    assert [len(b) for b in batches] == [8, 8, 8, 6]
    assert all(b.dtype == np.uint8 and b.shape[1:] == (48, 64, 3) for b in batches)
    levels = np.concatenate([b.reshape(len(b), -1).mean(1) for b in batches])
    np.testing.assert_allclose(levels, 8 * np.arange(30), atol=3)  # lossy codec, exact order
    assert open_frames(tmp_path / "clip.mp4", fps=10).fps == 10.0  # the caller's rate wins


def test_portrait_video_keeps_its_orientation(tmp_path):
    source = open_frames(write_video(tmp_path / "phone.mp4", 3, size=(48, 96)))
    assert (source.width, source.height) == (48, 96)
    assert next(source.batches(3)).shape == (3, 96, 48, 3)


def test_image_folder_is_ordered_by_the_last_number(tmp_path):
    for frame in (10, 2, 1):
        Image.fromarray(np.full((20, 30, 3), frame * 10, np.uint8)).save(tmp_path / f"cam1_take3_{frame}.png")
    assert is_frame_source(tmp_path) and is_frame_source("a.MOV") and not is_frame_source("a.json")
    source = open_frames(tmp_path, fps=30)
    assert [p.name for p in source.images] == ["cam1_take3_1.png", "cam1_take3_2.png", "cam1_take3_10.png"]
    (frames,) = source.batches(8)
    assert frames.shape == (3, 20, 30, 3) and frames[:, 0, 0, 0].tolist() == [10, 20, 100]
    with pytest.raises(InputError, match="an image folder has no frame rate"):
        open_frames(tmp_path)


def test_image_folder_errors_name_the_image(tmp_path):
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "f_0.png")
    Image.fromarray(np.zeros((21, 30, 3), np.uint8)).save(tmp_path / "f_1.png")
    with pytest.raises(InputError, match=r"f_1\.png: 30x21 pixels, but the folder's first image is 30x20"):
        list(open_frames(tmp_path, fps=5).batches(4))
    (tmp_path / "f_1.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"f_1\.png: not a readable image"):
        list(open_frames(tmp_path, fps=5).batches(4))
    (tmp_path / "f_01.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"f_0?1\.png and .*f_0?1\.png: both are frame 1"):
        open_frames(tmp_path, fps=5)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: b"hello, not a video", "not a video FFmpeg can read"),
        (lambda data: data[: len(data) // 2], "not a video FFmpeg can read"),  # the index (moov) is lost
        (lambda data: data[: len(data) // 3] + bytes(b ^ 0xFF for b in data[len(data) // 3 : len(data) // 3 + 200])
         + data[len(data) // 3 + 200 :], "the video stream ends at frame"),
    ],
    ids=["text", "truncated", "flipped-bytes"],
)  # fmt: skip
def test_damaged_video_is_named(tmp_path, damage, message):
    data = write_video(tmp_path / "good.mp4", 30).read_bytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(damage(data))
    with pytest.raises(InputError, match=rf"bad\.mp4: {message}"):
        list(open_frames(bad).batches(8))


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(MissingFileError, match=r"absent\.mp4: file not found"):
        open_frames(tmp_path / "absent.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match="no images"):
        open_frames(tmp_path / "empty", fps=5)
    assert isinstance(FrameSource(tmp_path, 1, 1, 1.0), FrameSource)


def test_a_video_without_frames_and_a_missing_decoder_are_named(tmp_path, monkeypatch):
    writer = imageio_ffmpeg.write_frames(str(tmp_path / "zero.mp4"), (64, 48), fps=25, macro_block_size=16)
    writer.send(None)
    writer.close()  # a container with a video stream and no frame
    with pytest.raises(InputError, match=r"zero\.mp4: (not a video FFmpeg can read|the video has no frames)"):
        list(open_frames(tmp_path / "zero.mp4").batches(4))
    video = write_video(tmp_path / "clip.mp4", 3)
    monkeypatch.setitem(__import__("sys").modules, "imageio_ffmpeg", None)  # as if not installed
    with pytest.raises(
        InputError, match=r"clip\.mp4: reading video needs imageio-ffmpeg: pip install 'poselift\[video\]'"
    ):
        open_frames(video)


def test_cached_detections_need_no_detector(tmp_path):
    from types import SimpleNamespace

    from datamodules.video_detections import detect

    person = np.tile(np.array([[10.0, 20.0, 0.9]], np.float32), (17, 1))[None]  # one person, every joint at (10, 20)
    calls = []

    def load():
        calls.append("loaded")
        boxes = np.array([[5.0, 15.0, 15.0, 25.0, 0.8]], np.float32)
        return lambda frames: [SimpleNamespace(keypoints=person, boxes=boxes) for _ in frames]

    source = open_frames(write_video(tmp_path / "clip.mp4", 5))
    first = detect(source, load, "stand-in.pt", tmp_path / "cache", batch_size=2, progress=False)
    assert calls == ["loaded"] and first.keypoints.shape == (5, 1, 17, 3) and first.name == "clip"
    np.testing.assert_array_equal(first.keypoints[:, 0], np.broadcast_to(person[0], (5, 17, 3)))

    def fail():
        raise AssertionError("the cache should have served")

    again = detect(source, fail, "stand-in.pt", tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(again.keypoints, first.keypoints)
