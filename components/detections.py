"""Users' own 2D detections made ready for a lifter: layout conversion, following one person, filling gaps.

Keypoints here are pixels with a confidence: ``(..., joints, 3)`` holding ``[x, y, score]``. A missing joint
has NaN coordinates; a person slot that is NaN everywhere means "no detection". The recommended order is
:func:`follow_person` (in the detector's layout, whose extra joints help the boxes), then
:func:`convert_keypoints` to the lifter's layout, then :func:`fill_missing`, so that only the joints the lifter
needs must be seen somewhere in the video.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from components import geometry
from components.errors import InputError
from components.skeleton import Skeleton

DERIVATION_RULES: Mapping[str, Mapping[str, float]] = {
    "pelvis": {"left_hip": 0.5, "right_hip": 0.5},
    "thorax": {"left_shoulder": 0.5, "right_shoulder": 0.5},
    "spine": {"pelvis": 0.5, "thorax": 0.5},
    "head": {"nose": 1.0},
    "head_top": {"left_ear": 0.75, "right_ear": 0.75, "thorax": -0.5},
}
"""Weights that build a joint the source layout lacks from joints it has (or can itself derive).

- ``pelvis`` = mean(left_hip, right_hip); ``thorax`` = mean(left_shoulder, right_shoulder), the definitions
  of OpenPose's "MidHip" and "Neck".
- ``spine`` = mean(pelvis, thorax): Human3.6M's spine joint sits midway up the torso.
- ``head`` = nose: Human3.6M labels this joint "Neck/Nose"; in its 2D projections it lies on the face.
- ``head_top`` = ear midpoint + 0.5 (ear midpoint - thorax): the ears mark the head's centre, and the crown
  lies about half the thorax-to-ears distance further along the neck's direction. A geometric estimate, used
  only when the source has no ``head_top`` of its own (BODY_25B has one).

Contributors that the source lacks are derived in turn (``spine`` from COCO uses hips and shoulders).
"""


def _weights_of(name: str, source: Skeleton) -> np.ndarray:
    """``(source joints,)`` weights producing joint ``name``: one-hot if ``source`` has it, else its rule.

    Raises ``LookupError`` whose args are the chain of joints, ending in the one nothing can provide.
    """
    weights = np.zeros(source.num_joints)
    if name in source.joint_names:
        weights[source.index(name)] = 1.0
        return weights
    if name not in DERIVATION_RULES:
        raise LookupError(name)
    for contributor, weight in DERIVATION_RULES[name].items():
        try:
            weights += weight * _weights_of(contributor, source)
        except LookupError as error:
            raise LookupError(name, *error.args) from None
    return weights


def _describe(name: str) -> str:
    rule = DERIVATION_RULES[name]
    return f"{name} = " + " + ".join(f"{weight:g} * {joint}" for joint, weight in rule.items())


def _why(chain: tuple[str, ...], source: Skeleton) -> str:
    """Explain a failed derivation: ``chain`` runs from the target joint to the joint nothing provides."""
    target, lacking = chain[0], chain[-1]
    if len(chain) == 1:
        return f"target joint {target!r} is not in {source.name!r} and has no rule in DERIVATION_RULES"
    rules = "; ".join(_describe(joint) for joint in chain[:-1])
    return f"target joint {target!r} needs {lacking!r}, which {source.name!r} lacks (rules used: {rules})"


def conversion_matrix(source: Skeleton, target: Skeleton) -> np.ndarray:
    """``(target joints, source joints)`` float64 weights: ``target_xy = matrix @ source_xy``.

    Each row is one-hot for a joint both layouts name, else the :data:`DERIVATION_RULES` combination. Rows
    sum to 1, so the conversion commutes with translations of the image.
    """
    rows = []
    for name in target.joint_names:
        try:
            rows.append(_weights_of(name, source))
        except LookupError as error:
            raise InputError(f"cannot convert {source.name!r} to {target.name!r}: {_why(error.args, source)}") from None
    return np.stack(rows)


def convert_keypoints(
    points: np.ndarray | torch.Tensor, source: Skeleton, target: Skeleton
) -> np.ndarray | torch.Tensor:
    """Convert ``(..., source joints, 3)`` ``[x, y, score]`` keypoints to ``(..., target joints, 3)``.

    Coordinates are combined by :func:`conversion_matrix` in one matmul. A derived joint's score is the
    lowest score among its contributors, and it is missing (NaN) if any contributor is: an average with a
    missing end is not the joint, and a guess would look as trustworthy as a detection.
    Works on NumPy arrays and torch tensors (same type, dtype and device out).
    """
    if points.ndim < 2 or points.shape[-2:] != (source.num_joints, 3):
        raise InputError(
            f"keypoints have shape {tuple(points.shape)}, expected (..., {source.num_joints}, 3) "
            f"[x, y, score] for layout {source.name!r}"
        )
    weights = conversion_matrix(source, target)
    contributes = weights != 0
    xp = np
    weights = weights.astype(points.dtype) if isinstance(points, np.ndarray) else weights
    if isinstance(points, torch.Tensor):
        xp = torch
        weights = torch.as_tensor(weights, dtype=points.dtype, device=points.device)
        contributes = torch.as_tensor(contributes, device=points.device)
    missing = xp.isnan(points[..., :2]).any(-1)  # (..., source joints)
    # Zero missing inputs first: 0 * NaN would otherwise spread NaN to every target joint.
    xy = weights @ xp.nan_to_num(points[..., :2], nan=0.0)
    target_missing = (missing[..., None, :] & contributes).any(-1)  # (..., target joints)
    xy = xp.where(target_missing[..., None], xp.nan, xy)
    scores = xp.amin(xp.where(contributes, points[..., None, :, 2], xp.inf), -1)
    return xp.concatenate([xy, scores[..., None]], -1)


# --------------------------------------------------------------------------- following one person


def bounding_boxes(keypoints: np.ndarray) -> np.ndarray:
    """``(..., joints, 3)`` pixel keypoints -> ``(..., 4)`` boxes ``[x_min, y_min, x_max, y_max]`` of the
    joints with coordinates; NaN where no joint has any."""
    x, y = keypoints[..., 0], keypoints[..., 1]
    # fmin/fmax skip NaN without the all-NaN warnings of nanmin/nanmax.
    lows = [np.fmin.reduce(c, axis=-1) for c in (x, y)]
    highs = [np.fmax.reduce(c, axis=-1) for c in (x, y)]
    return np.stack([*lows, *highs], axis=-1)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """:func:`components.geometry.box_iou` on NumPy boxes (the tracking here works on arrays)."""
    return geometry.box_iou(torch.from_numpy(np.asarray(box)), torch.from_numpy(np.asarray(boxes))).numpy()


def person_scores(keypoints: np.ndarray) -> np.ndarray:
    """``(..., joints, 3)`` -> ``(...,)`` mean joint confidence x box area (pixels²); missing joints count 0.

    Large, confidently seen people win, so the main subject beats small or partial bystanders.
    """
    confidence = np.nan_to_num(keypoints[..., 2], nan=0.0).mean(-1)
    area = geometry.box_area(torch.from_numpy(bounding_boxes(keypoints))).numpy()
    return np.nan_to_num(confidence * area, nan=0.0)


def follow_person(
    keypoints: np.ndarray, min_iou: float = 0.1, reacquire_after: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Follow one person through ``(frames, persons, joints, 3)`` pixel keypoints with scores.

    The track starts at the first frame with a detection, on the person with the highest
    :func:`person_scores`. Each later frame takes the detection whose box has the highest IoU with the
    track's last box, if that IoU is at least ``min_iou`` (the gate); otherwise the frame is empty. After
    ``reacquire_after`` consecutive empty frames the track restarts on the highest-scoring detection, since
    a person who moved while unseen no longer overlaps the old box.

    Returns:
        ``(frames, joints, 3)`` keypoints of the followed person (NaN where nobody) and ``(frames,)`` int64
        chosen person index per frame, -1 where nobody.
    """
    if keypoints.ndim != 4 or keypoints.shape[-1] != 3:
        raise InputError(f"keypoints have shape {keypoints.shape}, expected (frames, persons, joints, 3)")
    boxes = bounding_boxes(keypoints)  # (frames, persons, 4)
    present = ~np.isnan(boxes).any(-1)
    scores = np.where(present, person_scores(keypoints), -np.inf)
    chosen = np.full(len(keypoints), -1, dtype=np.int64)
    last_box, unseen = None, 0
    for frame in range(len(keypoints)):  # each choice depends on the previous one
        if not present[frame].any():
            unseen += 1
            continue
        if last_box is None or unseen >= reacquire_after:
            chosen[frame] = int(np.argmax(scores[frame]))
        else:
            iou = np.where(present[frame], box_iou(last_box, boxes[frame]), -1.0)
            best = int(np.argmax(iou))
            if iou[best] < min_iou:
                unseen += 1
                continue
            chosen[frame] = best
        last_box, unseen = boxes[frame, chosen[frame]], 0
    if keypoints.shape[1] == 0:  # no frame has a person slot at all
        return np.full((len(keypoints), *keypoints.shape[2:]), np.nan, keypoints.dtype), chosen
    track = keypoints[np.arange(len(keypoints)), np.maximum(chosen, 0)]
    track = np.where((chosen >= 0)[:, None, None], track, np.nan)
    return track, chosen


def track_people(
    keypoints: np.ndarray, min_iou: float = 0.1, reacquire_after: int = 10, min_fraction: float = 0.1
) -> np.ndarray:
    """Follow every person through ``(frames, persons, joints, 3)`` pixel keypoints with scores.

    Frame by frame, the open tracks take the detections whose boxes overlap their last box most (greedy over
    the IoU of every pair, best first, each pair at least ``min_iou``); a detection no track takes opens a new
    track, and a track unseen for ``reacquire_after`` frames is closed. Tracks present in fewer than
    ``min_fraction`` of the frames with anyone in them are dropped (brief false detections).

    Returns:
        ``(frames, tracks)`` int64 person index of each track per frame, -1 where the track is absent; the
        tracks are ordered by prominence (:func:`person_scores` summed over their frames), so track 0 is the
        person :func:`follow_person` would most likely pick.
    """
    if keypoints.ndim != 4 or keypoints.shape[-1] != 3:
        raise InputError(f"keypoints have shape {keypoints.shape}, expected (frames, persons, joints, 3)")
    boxes = bounding_boxes(keypoints)
    present = ~np.isnan(boxes).any(-1)
    columns: list[np.ndarray] = []  # per track: the person index per frame
    last: list[np.ndarray] = []  # per track: its last box
    unseen: list[int] = []
    for frame in range(len(keypoints)):  # each frame's matching depends on the tracks so far
        detections = np.flatnonzero(present[frame])
        open_tracks = [t for t in range(len(columns)) if unseen[t] < reacquire_after]
        taken = _match(np.asarray([last[t] for t in open_tracks]).reshape(-1, 4), boxes[frame, detections], min_iou)
        matched = {open_tracks[a]: detections[d] for a, d in taken}
        for track in range(len(columns)):
            unseen[track] = 0 if track in matched else unseen[track] + 1
        for track, person in matched.items():
            columns[track][frame], last[track] = person, boxes[frame, person]
        for person in sorted(set(detections.tolist()) - set(matched.values())):
            columns.append(np.full(len(keypoints), -1, np.int64))
            columns[-1][frame] = person
            last.append(boxes[frame, person])
            unseen.append(0)
    if not columns:
        return np.full((len(keypoints), 0), -1, np.int64)
    tracks = np.stack(columns, axis=1)
    frames_with_anyone = max(int(present.any(1).sum()), 1)
    tracks = tracks[:, (tracks >= 0).sum(0) >= min_fraction * frames_with_anyone]
    scores = np.where(tracks >= 0, np.take_along_axis(person_scores(keypoints), np.maximum(tracks, 0), 1), 0.0)
    return tracks[:, np.argsort(-scores.sum(0), kind="stable")]


def _match(previous: np.ndarray, current: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs ``(previous index, current index)`` by descending IoU, each at least ``min_iou``."""
    if len(previous) == 0 or len(current) == 0:
        return []
    iou = box_iou(previous[:, None], current[None])
    pairs = []
    used_previous, used_current = set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):  # a handful of people: a short loop
        a, d = divmod(int(flat), iou.shape[1])
        if iou[a, d] < min_iou:
            break
        if a not in used_previous and d not in used_current:
            pairs.append((a, d))
            used_previous.add(a), used_current.add(d)
    return pairs


# --------------------------------------------------------------------------- filling gaps in time


@dataclass(frozen=True)
class FilledKeypoints:
    """Result of :func:`fill_missing`.

    Attributes:
        keypoints: ``(frames, joints, 3)`` with every x, y filled; scores keep the detector's value where it
            gave one (low for a rejected joint) and are 0 where it gave none, so filled joints stay marked.
        filled: ``(frames, joints)`` bool, True where x, y were interpolated or held.
        empty_frames: ``(frames,)`` bool, True where no joint was usable (nobody detected).
    """

    keypoints: np.ndarray
    filled: np.ndarray
    empty_frames: np.ndarray


def fill_missing(keypoints: np.ndarray, skeleton: Skeleton, min_score: float = 0.0) -> FilledKeypoints:
    """Fill missing or unreliable joints of ``(frames, joints, 3)`` pixel keypoints along time.

    A joint is unusable where x, y or its score is NaN or its score is below ``min_score``. Its x, y are
    linearly interpolated over time between the nearest usable frames of the same joint, and hold the nearest
    usable value before the first and after the last. Raises naming the joints of ``skeleton`` that are
    never usable, since nothing could stand in for them.
    """
    if keypoints.ndim != 3 or keypoints.shape[1:] != (skeleton.num_joints, 3):
        raise InputError(
            f"keypoints have shape {keypoints.shape}, expected (frames, {skeleton.num_joints}, 3) "
            f"for layout {skeleton.name!r}"
        )
    usable = ~np.isnan(keypoints).any(-1) & (np.nan_to_num(keypoints[..., 2], nan=-np.inf) >= min_score)
    never = [skeleton.joint_names[j] for j in np.flatnonzero(~usable.any(0))]
    if never:
        raise InputError(
            f"joints {never} of layout {skeleton.name!r} are never detected with score >= {min_score} in "
            f"{len(keypoints)} frames; they cannot be interpolated"
        )
    frames = np.arange(len(keypoints))
    filled = keypoints.copy()
    for joint in range(skeleton.num_joints):  # np.interp is 1-D; frames are vectorised
        valid = usable[:, joint]
        for axis in (0, 1):
            filled[:, joint, axis] = np.interp(frames, frames[valid], keypoints[valid, joint, axis])
    filled[..., 2] = np.nan_to_num(keypoints[..., 2], nan=0.0)
    return FilledKeypoints(keypoints=filled, filled=~usable, empty_frames=~usable.any(1))
