"""Frames of a video file or a folder of images, streamed in batches: the whole video is never in memory.

Videos are decoded by FFmpeg through ``imageio-ffmpeg`` (``pip install 'poselift[video]'``), which ships its own
FFmpeg binary and applies the rotation a phone stores in the file (a portrait video comes out portrait). Frame
rate and size come from the file. An image folder is ordered by the last number in each file name (as OpenPose
folders are); its frame rate is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.errors import InputError, MissingFileError
from datamodules.detection_files import LAST_NUMBER

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def is_frame_source(path: str | Path) -> bool:
    """Whether ``path`` is a video file (by suffix) or a folder holding images (rather than detections)."""
    path = Path(path)
    if path.is_dir():
        return any(child.suffix.lower() in IMAGE_SUFFIXES for child in path.iterdir())
    return path.suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class FrameSource:
    """Where frames come from.

    Attributes:
        path: the video file or image folder.
        width, height: frame size in pixels, as displayed (after the file's rotation).
        fps: frames per second.
        images: the image files in frame order (an image folder), else empty.
        expected_frames: the frame count the video's duration states (0: not stated; an image folder: its
            images); a stream that ends well before it is damaged.
    """

    path: Path
    width: int
    height: int
    fps: float
    images: tuple[Path, ...] = ()
    expected_frames: int = 0

    def batches(self, size: int) -> Iterator[np.ndarray]:
        """``(B, H, W, 3)`` uint8 RGB frames, ``B <= size``, in order; a damaged stream raises
        :class:`InputError` naming the file and the frame it reached."""
        frames = self._images() if self.images else self._video_frames()
        batch: list[np.ndarray] = []
        for frame in frames:
            batch.append(frame)
            if len(batch) == size:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)

    def _video_frames(self) -> Iterator[np.ndarray]:
        import imageio_ffmpeg

        # -xerror: FFmpeg stops at the first damaged packet instead of guessing frames from it.
        reader = imageio_ffmpeg.read_frames(str(self.path), input_params=["-xerror"])
        next(reader)  # the metadata, already read by open_frames
        count = 0
        try:
            for raw in reader:
                frame = np.frombuffer(raw, np.uint8)
                if frame.size != self.height * self.width * 3:
                    raise InputError(
                        f"{self.path}: frame {count} has {frame.size} bytes, expected {self.width}x{self.height}x3"
                    )
                yield frame.reshape(self.height, self.width, 3)
                count += 1
        except (OSError, RuntimeError) as error:
            raise InputError(
                f"{self.path}: the video stream is damaged after frame {count} ({_first_line(error)})"
            ) from None
        finally:
            reader.close()
        if count == 0:
            raise InputError(f"{self.path}: the video has no frames")
        if count < 0.95 * self.expected_frames - 1:  # FFmpeg stopped at a damaged packet (-xerror)
            raise InputError(
                f"{self.path}: the video stream ends at frame {count}, but the file states about "
                f"{self.expected_frames} frames (a damaged or truncated stream)"
            )

    def _images(self) -> Iterator[np.ndarray]:
        from PIL import Image, UnidentifiedImageError

        for image_path in self.images:
            try:
                with Image.open(image_path) as image:
                    frame = np.asarray(image.convert("RGB"))
            except (OSError, UnidentifiedImageError) as error:
                raise InputError(f"{image_path}: not a readable image ({_first_line(error)})") from None
            if frame.shape[:2] != (self.height, self.width):
                raise InputError(
                    f"{image_path}: {frame.shape[1]}x{frame.shape[0]} pixels, but the folder's first image is "
                    f"{self.width}x{self.height}; every frame must have one size"
                )
            yield frame


def open_frames(path: str | Path, fps: float | None = None) -> FrameSource:
    """The :class:`FrameSource` of a video file or an image folder (``fps`` is required for a folder, and
    overrides a video's own rate when given)."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: file not found")
    if path.is_dir():
        return _image_folder(path, fps)
    try:
        import imageio_ffmpeg
    except ImportError:
        raise InputError(
            f"{path}: reading video needs imageio-ffmpeg: pip install 'poselift[video]' (or imageio-ffmpeg)"
        ) from None
    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as error:
        raise InputError(f"{path}: not a video FFmpeg can read ({_first_line(error)})") from None
    finally:
        reader.close()
    width, height = meta["size"]
    rate = fps or meta.get("fps") or 0.0
    if not rate > 0:
        raise InputError(f"{path}: the video states no frame rate; give it (--data.init_args.fps)")
    expected = round(meta.get("duration", 0.0) * (meta.get("fps") or 0.0))
    return FrameSource(path, int(width), int(height), float(rate), expected_frames=expected)


def _image_folder(path: Path, fps: float | None) -> FrameSource:
    images = [child for child in path.iterdir() if child.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise MissingFileError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    numbered = {}
    for image in images:
        match = LAST_NUMBER.search(image.stem)
        if match is None:
            raise InputError(f"{image}: the file name holds no frame number (the last number orders the frames)")
        frame = int(match.group(1))
        if frame in numbered:
            raise InputError(f"{image} and {numbered[frame]}: both are frame {frame}")
        numbered[frame] = image
    if fps is None or not fps > 0:
        raise InputError(f"{path}: an image folder has no frame rate; give it (--data.init_args.fps)")
    ordered = tuple(numbered[frame] for frame in sorted(numbered))
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(ordered[0]) as first:
            width, height = first.size
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(f"{ordered[0]}: not a readable image ({_first_line(error)})") from None
    return FrameSource(path, width, height, float(fps), ordered, len(ordered))


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[-1][:200] if "\n" in text else text[:200]
