"""Figures, videos and contact sheets of poses: the 2D input skeleton beside the 3D skeleton, drawn on
``matplotlib.figure.Figure`` objects with their own Agg canvas (no pyplot state, no backend switch).

- :func:`pose_figure`: one frame's 2D input beside the predicted and true 3D skeletons (TensorBoard figures);
- :func:`render_animation` writes a GIF (matplotlib's ``PillowWriter``) or an MP4 (``imageio-ffmpeg``, the
  optional ``video`` extra) with one frame per pose.
- :func:`render_overlay` writes an MP4 of the original video frames with the 2D skeleton drawn over them,
  beside the 3D view: the input's frame count and rate;
- :func:`contact_sheet` writes one PNG with evenly spaced frames of the clip in a grid of 2D + 3D panels.

Axis limits are fixed over the whole clip, so motion is visible as motion rather than as rescaled axes. The 3D
panel shows camera space as :func:`camera_to_display` maps it (up is up, depth into the page). Bones are
coloured by side: left blue, right red, centre grey. Rendering is headless (Agg) and every file is written
through a temporary file in its folder and a rename.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d.art3d import Line3DCollection
from torch import Tensor

from components.atomic import atomic_destination
from components.batch import PoseBatch
from components.errors import InputError
from components.lifter import Timing
from components.skeleton import Skeleton

DPI = 100  # figure inches * DPI = pixels; sizes are given in pixels
VIDEO_SUFFIXES = (".gif", ".mp4")
SIDE_COLOURS = {"left": "tab:blue", "right": "tab:red", "centre": "0.35"}
MARGIN_2D = 0.05  # fraction of the keypoints' extent added around them when no image size is given


def _draw_bones(axis, points, skeleton: Skeleton, color: str, label: str) -> None:
    for i, (child, parent) in enumerate(skeleton.bones):
        segment = points[[child, parent]]
        axis.plot(*segment.T, color=color, linewidth=2, label=label if i == 0 else None)


def camera_to_display(points: np.ndarray) -> np.ndarray:
    """Camera space ``(..., 3)`` (x right, y down, z forward) as plotted ``(x, z, -y)``: up is up on screen and
    depth goes into the page (matplotlib's 3D axes put their third axis vertical)."""
    return points[..., [0, 2, 1]] * np.array([1.0, 1.0, -1.0])


def equal_axes(axis, points: np.ndarray) -> None:
    """One scale on all three axes of a 3D ``axis``, fitted to ``(N, 3)`` points, so bone lengths look right."""
    centre, half = points.mean(axis=0), np.ptp(points, axis=0).max() / 2 + 0.05
    for setter, c in zip((axis.set_xlim, axis.set_ylim, axis.set_zlim), centre, strict=True):
        setter(c - half, c + half)
    axis.set_box_aspect((1, 1, 1))


def pose_figure(batch: PoseBatch, pred: Tensor, input_skeleton: Skeleton, output_skeleton: Skeleton, timing: Timing):
    """Middle output frame of the first window: its own input 2D (left) and predicted vs. true 3D (right).

    Args:
        batch: an evaluation batch (``keypoints_2d`` ``(B, T_in, J_in, F)``, ``poses_3d`` ``(B, T_out, J_out, 3)``).
        pred: ``(B, T_out, J_out, 3)`` predictions in metres, camera space, root-relative.
        timing: the lifter's (which input frame an output frame belongs to: the centre, or the last when causal).
    """
    frame = pred.shape[1] // 2
    keypoints = batch.keypoints_2d[0, timing.input_frame(frame), :, :2].detach().cpu().numpy()
    predicted = pred[0, frame].detach().float().cpu().numpy()
    truth = batch.poses_3d[0, frame].detach().float().cpu().numpy()

    figure = Figure(figsize=(9, 4.5))  # off screen on its own Agg canvas: no pyplot state, no backend switch
    FigureCanvasAgg(figure)
    flat = figure.add_subplot(1, 2, 1)
    _draw_bones(flat, keypoints, input_skeleton, "tab:blue", "2D input")
    flat.set_title("2D input (screen units)")
    flat.invert_yaxis()  # image y points down
    flat.set_aspect("equal")

    space = figure.add_subplot(1, 2, 2, projection="3d")
    shown = {label: camera_to_display(p) for label, p in (("ground truth", truth), ("prediction", predicted))}
    for (label, points), color in zip(shown.items(), ("tab:green", "tab:red"), strict=True):
        _draw_bones(space, points, output_skeleton, color, label)
    equal_axes(space, np.concatenate(list(shown.values())))
    space.set_xlabel("x (m)")
    space.set_ylabel("z (m)")
    space.set_zlabel("-y (m)")
    space.set_title("3D, camera space, root-relative")
    space.legend(loc="upper right")
    figure.tight_layout()
    return figure


@dataclass(frozen=True)
class _Clip:
    """A clip ready to draw: bone segments per frame and fixed axis limits.

    Attributes:
        flat: ``(F, B_in, 2, 2)`` 2D bone segments in pixels (bone, end point, xy).
        space: ``(F, B_out, 2, 3)`` 3D bone segments in display coordinates, metres.
        flat_colours, space_colours: one colour per bone.
        flat_limits: ``((x_min, x_max), (y_bottom, y_top))`` of the 2D panel (y points down, as in images).
        space_points: ``(F * J_out, 3)`` every displayed 3D point, which fixes the 3D limits.
    """

    flat: np.ndarray
    space: np.ndarray
    flat_colours: list[str]
    space_colours: list[str]
    flat_limits: tuple[tuple[float, float], tuple[float, float]]
    space_points: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.flat)


def _bones(skeleton: Skeleton) -> tuple[np.ndarray, list[str]]:
    """``(B, 2)`` child/parent indices of every bone and its colour (by the child joint's side)."""
    left, right = set(skeleton.left), set(skeleton.right)
    bones = np.asarray(skeleton.bones, dtype=np.int64).reshape(-1, 2)
    sides = ["left" if c in left else "right" if c in right else "centre" for c, _ in skeleton.bones]
    return bones, [SIDE_COLOURS[s] for s in sides]


def _array(values, name: str) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, possibly on a device or requiring grad
        values = values.detach().cpu().numpy()
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3:
        raise InputError(f"{name} must have shape (frames, joints, channels), got {values.shape}")
    return values


def _prepare(
    keypoints_2d, poses_3d, input_skeleton: Skeleton, output_skeleton: Skeleton, image_size: tuple[int, int] | None
) -> _Clip:
    keypoints, poses = _array(keypoints_2d, "keypoints_2d"), _array(poses_3d, "poses_3d")
    if keypoints.shape[1] != input_skeleton.num_joints or keypoints.shape[2] < 2:
        raise InputError(
            f"keypoints_2d must have shape (frames, {input_skeleton.num_joints}, >=2) for layout "
            f"{input_skeleton.name!r}, got {keypoints.shape}"
        )
    if poses.shape[1:] != (output_skeleton.num_joints, 3):
        raise InputError(
            f"poses_3d must have shape (frames, {output_skeleton.num_joints}, 3) for layout "
            f"{output_skeleton.name!r}, got {poses.shape}"
        )
    if len(keypoints) != len(poses) or len(keypoints) == 0:
        raise InputError(
            f"keypoints_2d and poses_3d must have the same, non-zero number of frames, got {len(keypoints)} "
            f"and {len(poses)}"
        )
    keypoints, shown = keypoints[..., :2], camera_to_display(poses)
    flat_bones, flat_colours = _bones(input_skeleton)
    space_bones, space_colours = _bones(output_skeleton)
    return _Clip(
        flat=keypoints[:, flat_bones],
        space=shown[:, space_bones],
        flat_colours=flat_colours,
        space_colours=space_colours,
        flat_limits=_flat_limits(keypoints, image_size),
        space_points=shown.reshape(-1, 3),
    )


def _flat_limits(keypoints: np.ndarray, image_size: tuple[int, int] | None) -> tuple[tuple[float, float], ...]:
    """The image (``(width, height)`` pixels) or, without one, a square around the keypoints of the whole clip
    plus a margin (square, so the equal-aspect panel is filled whatever the pose's shape)."""
    if image_size is not None:
        width, height = image_size
        return (0.0, float(width)), (float(height), 0.0)
    points = keypoints.reshape(-1, 2)
    low, high = points.min(axis=0), points.max(axis=0)
    centre, half = (low + high) / 2, (1 + 2 * MARGIN_2D) * max(float((high - low).max()), 1.0) / 2
    return (centre[0] - half, centre[0] + half), (centre[1] + half, centre[1] - half)


def _check_size(size: tuple[int, int], name: str) -> tuple[int, int]:
    width, height = (int(v) for v in size)
    if width < 16 or height < 16:
        raise InputError(f"{name} must be (width, height) of at least 16 pixels each, got {tuple(size)}")
    return width, height


class _PosePanels:
    """One 2D axis and one 3D axis whose bone collections can be moved to any frame of the clip."""

    def __init__(self, figure, flat_spec, space_spec, clip: _Clip, labelled: bool = True) -> None:
        self.clip = clip
        self.flat = None
        if flat_spec is not None:
            self._add_flat(figure, flat_spec, labelled)
        self.space = figure.add_subplot(space_spec, projection="3d")
        self.space_lines = Line3DCollection(clip.space[0], colors=clip.space_colours, linewidths=1.5)
        self.space.add_collection(self.space_lines)
        equal_axes(self.space, clip.space_points)
        self.space.tick_params(labelsize=6)
        self.space.locator_params(nbins=4)  # fewer ticks: the default ones overlap at video sizes
        if labelled:
            self.space.set_title("3D (m): x, depth z, up -y", fontsize=8)
        else:  # small grid panels: tick labels would run into the neighbouring panel
            self.space.set_xticklabels([])
            self.space.set_yticklabels([])
            self.space.set_zticklabels([])

    def _add_flat(self, figure, flat_spec, labelled: bool) -> None:
        clip = self.clip
        self.flat = figure.add_subplot(flat_spec)
        self.flat_lines = LineCollection(clip.flat[0], colors=clip.flat_colours, linewidths=1.5)
        self.flat.add_collection(self.flat_lines)
        self.flat.set_xlim(*clip.flat_limits[0])
        self.flat.set_ylim(*clip.flat_limits[1])  # top below bottom: image y points down
        self.flat.set_aspect("equal")
        self.flat.tick_params(labelsize=6)
        if labelled:
            self.flat.set_title("2D input (px)", fontsize=8)
        else:
            self.flat.tick_params(labelbottom=False, labelleft=False)

    def show(self, frame: int) -> None:
        if self.flat is not None:
            self.flat_lines.set_segments(self.clip.flat[frame])
        self.space_lines.set_segments(self.clip.space[frame])


def _figure(size: tuple[int, int]) -> Figure:
    """A figure drawn off screen on its own Agg canvas: no pyplot state, no backend switch."""
    figure = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def render_animation(
    keypoints_2d,
    poses_3d,
    input_skeleton: Skeleton,
    output_skeleton: Skeleton,
    path: str | Path,
    fps: float = 25.0,
    image_size: tuple[int, int] | None = None,
    size: tuple[int, int] = (640, 320),
) -> Path:
    """Animate a clip: the 2D input (left) beside the lifted 3D skeleton (right), one video frame per pose.

    Args:
        keypoints_2d: ``(F, J_in, >=2)`` 2D keypoints in pixels (channels after x, y, e.g. scores, are ignored);
            numpy array or tensor.
        poses_3d: ``(F, J_out, 3)`` root-relative camera-space poses in metres.
        input_skeleton, output_skeleton: layouts of the two (the bones drawn).
        path: ``.gif`` or ``.mp4``.
        fps: frames per second of the video.
        image_size: ``(width, height)`` of the input image in pixels: the 2D panel shows the whole image.
            None: it shows the keypoints' extent over the clip.
        size: ``(width, height)`` of the video in pixels (even numbers for MP4, as H.264 in yuv420p needs).

    Returns:
        ``path``. A frame counter in the title keeps consecutive frames distinct, so GIF encoders do not merge
        still frames and the file has exactly ``F`` frames.

    Raises:
        ValueError: another extension, mismatched shapes or frame counts, bad sizes.
        ImportError: an MP4 without ``imageio-ffmpeg`` installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise InputError(f"{path}: unsupported video extension {path.suffix!r}; expected one of {VIDEO_SUFFIXES}")
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    size = _check_size(size, "size")
    if suffix == ".mp4" and (size[0] % 2 or size[1] % 2):
        raise InputError(f"MP4 (H.264, yuv420p) needs an even width and height, got size {size}")
    clip = _prepare(keypoints_2d, poses_3d, input_skeleton, output_skeleton, image_size)
    write = _write_gif if suffix == ".gif" else _write_mp4
    figure = _figure(size)
    panels = _PosePanels(figure, 121, 122, clip)
    title = figure.suptitle("", fontsize=8)

    def show(frame: int) -> None:
        panels.show(frame)
        title.set_text(f"frame {frame + 1}/{clip.num_frames}")

    with atomic_destination(path) as temporary:
        write(figure, show, clip.num_frames, temporary, fps, size)
    return path


def render_overlay(
    frame_batches: Iterable[np.ndarray],
    keypoints_2d,
    poses_3d,
    input_skeleton: Skeleton,
    output_skeleton: Skeleton,
    path: str | Path,
    fps: float,
    height: int = 480,
) -> Path:
    """An MP4 of the original frames with the 2D skeleton drawn over them (left) beside the 3D view (right).

    Args:
        frame_batches: the video's frames in order, ``(B, H, W, 3)`` uint8 RGB batches (streamed: the video is
            never held whole); there must be exactly one per pose.
        keypoints_2d: ``(F, J_in, >=2)`` pixels of the original frames. poses_3d: ``(F, J_out, 3)`` metres.
        path: the ``.mp4`` to write; fps: the input's rate (the output has the input's frame count and rate).
        height: output height in pixels (even); the frame keeps its aspect ratio, the 3D panel is square.
    """
    path = Path(path)
    if path.suffix.lower() != ".mp4" or height % 2 or height < 2:
        raise InputError(f"{path}: an overlay is an .mp4 of even height, got height {height}")
    clip = _prepare(keypoints_2d, poses_3d, input_skeleton, output_skeleton, None)
    figure = _figure((height, height))
    panels = _PosePanels(figure, None, 111, clip)
    colours = _bones(input_skeleton)[1]
    rgb_colours = [tuple(round(255 * c) for c in to_rgb(colour)) for colour in colours]
    with atomic_destination(path) as temporary:
        encoder, frame = None, 0
        try:
            for batch in frame_batches:
                for image in batch:
                    if frame >= clip.num_frames:
                        raise InputError(f"{path}: the video has more frames than the {clip.num_frames} poses")
                    panels.show(frame)
                    figure.canvas.draw()
                    space = np.asarray(figure.canvas.buffer_rgba())[..., :3]
                    picture = _drawn_frame(image, clip.flat[frame], rgb_colours, height)
                    combined = np.ascontiguousarray(np.concatenate([picture, space], axis=1))
                    if encoder is None:
                        encoder = _mp4_encoder(temporary, (combined.shape[1], height), fps)
                    encoder.send(combined.tobytes())
                    frame += 1
        finally:
            if encoder is not None:
                encoder.close()
        if frame != clip.num_frames:
            raise InputError(f"{path}: the video has {frame} frames, but there are {clip.num_frames} poses")
    return path


def _drawn_frame(image: np.ndarray, segments: np.ndarray, colours: list[tuple[int, ...]], height: int) -> np.ndarray:
    """``image`` scaled to ``height`` (even width) with the ``(B, 2, 2)`` pixel bone segments drawn over it."""
    from PIL import Image, ImageDraw

    scale = height / image.shape[0]
    width = max(2, 2 * round(image.shape[1] * scale / 2))
    picture = Image.fromarray(image).resize((width, height), Image.BILINEAR)
    draw = ImageDraw.Draw(picture)
    scaled = segments * np.array([width / image.shape[1], scale])
    for (start, end), colour in zip(scaled.tolist(), colours, strict=True):  # a bone per line: tens per frame
        if np.isfinite(start + end).all():
            draw.line([tuple(start), tuple(end)], fill=colour, width=max(2, height // 160))
    return np.asarray(picture)


def _mp4_encoder(path: Path, size: tuple[int, int], fps: float):
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ImportError("MP4 output needs imageio-ffmpeg: pip install 'poselift[video]' (or write a .gif)") from None
    # macro_block_size=1: keep the exact size instead of letting the encoder wrapper rescale to multiples of 16.
    encoder = imageio_ffmpeg.write_frames(
        str(path), size, fps=fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p", macro_block_size=1
    )
    encoder.send(None)  # starts ffmpeg
    return encoder


def _write_gif(figure, show, frames: int, path: Path, fps: float, size: tuple[int, int]) -> None:
    writer = PillowWriter(fps=fps)
    with writer.saving(figure, str(path), dpi=DPI):
        for frame in range(frames):
            show(frame)
            writer.grab_frame()


def _write_mp4(figure, show, frames: int, path: Path, fps: float, size: tuple[int, int]) -> None:
    encoder = _mp4_encoder(path, size, fps)
    try:
        for frame in range(frames):
            show(frame)
            figure.canvas.draw()
            rgb = np.asarray(figure.canvas.buffer_rgba())[..., :3]
            encoder.send(np.ascontiguousarray(rgb).tobytes())
    finally:
        encoder.close()


def contact_sheet(
    keypoints_2d,
    poses_3d,
    input_skeleton: Skeleton,
    output_skeleton: Skeleton,
    path: str | Path,
    frames: int = 8,
    image_size: tuple[int, int] | None = None,
    panel_size: int = 200,
    columns: int = 4,
) -> Path:
    """A PNG grid of evenly spaced frames of a clip, each a 2D input panel beside its 3D panel.

    Args:
        keypoints_2d, poses_3d, input_skeleton, output_skeleton, image_size: as :func:`render_animation`.
        path: ``.png`` file.
        frames: how many frames to show, evenly spaced from the first to the last (at most the clip's length).
        panel_size: side of each square panel in pixels.
        columns: frames per row (each frame is two panels wide).

    Returns:
        ``path``; the image is ``2 * min(columns, n) * panel_size`` by ``ceil(n / columns) * panel_size``
        pixels, ``n`` the number of frames shown.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: a contact sheet is a PNG; expected the extension '.png', got {path.suffix!r}")
    if frames < 1 or columns < 1:
        raise InputError(f"frames and columns must be >= 1, got frames={frames}, columns={columns}")
    _check_size((panel_size, panel_size), "panel_size")
    clip = _prepare(keypoints_2d, poses_3d, input_skeleton, output_skeleton, image_size)
    shown = _evenly_spaced(clip.num_frames, frames)
    per_row, rows = min(columns, len(shown)), math.ceil(len(shown) / columns)
    figure = _figure((2 * per_row * panel_size, rows * panel_size))
    grid = figure.add_gridspec(rows, 2 * per_row)
    for slot, frame in enumerate(shown):
        row, column = divmod(slot, per_row)
        panels = _PosePanels(figure, grid[row, 2 * column], grid[row, 2 * column + 1], clip, labelled=False)
        panels.show(frame)
        panels.flat.set_title(f"frame {frame}", fontsize=7)
    with atomic_destination(path) as temporary:
        figure.savefig(temporary, dpi=DPI, format="png")
    return path


def _evenly_spaced(length: int, count: int) -> Sequence[int]:
    """``min(count, length)`` distinct frame indices from 0 to ``length - 1``, evenly spaced."""
    return np.unique(np.linspace(0, length - 1, min(count, length)).round().astype(int)).tolist()
