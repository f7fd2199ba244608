"""TensorBoard figures: the 2D input next to the predicted and true 3D skeletons of one frame."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from components.batch import PoseBatch
from components.lifter import Timing
from components.skeleton import Skeleton


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
