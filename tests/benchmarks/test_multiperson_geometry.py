"""The multi-view geometry of benchmarks/multiperson_eval.py: Qualisys calibration parsing, DLT triangulation and
the association of people across views, on hand-made cameras (no network, no video)."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from multiperson_eval import (  # noqa: E402
    Camera,
    associate,
    read_qca,
    reprojection_errors,
    triangulate,
    triangulate_people,
)

# One camera 5 m from the origin along -y, 1 m high, looking along +y (horizontal), image x along world +x.
# Row by row, M = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]: its rows are the Qualisys camera axes (x, y up, z backwards).
QCA = """<?xml version='1.0' encoding='ASCII'?>
<calibration type="regular">
  <cameras>
    <camera active="1" serial="camA" viewrotation="0">
      <fov_video bottom="1919" left="0" right="1087" top="0"/>
      <transform r11="1" r12="0" r13="0" r21="0" r22="0" r23="1" r31="0" r32="-1" r33="0"
                 x="0" y="-5000" z="1000"/>
      <intrinsic centerPointU="34816" centerPointV="61440" focalLengthU="102400" focalLengthV="102400"
                 sensorMaxU="69568" sensorMaxV="122816" sensorMinU="0" sensorMinV="0"/>
    </camera>
    <camera active="1" serial="camB" viewrotation="0">
      <fov_video bottom="1019" left="100" right="1087" top="20"/>
      <transform r11="1" r12="0" r13="0" r21="0" r22="0" r23="1" r31="0" r32="-1" r33="0"
                 x="0" y="-5000" z="1000"/>
      <intrinsic centerPointU="34816" centerPointV="61440" focalLengthU="102400" focalLengthV="102400"
                 sensorMaxU="69568" sensorMaxV="122816" sensorMinU="0" sensorMinV="0"/>
    </camera>
  </cameras>
</calibration>
"""


def test_qca_intrinsics_extrinsics_and_axes():
    camera, cropped = read_qca(QCA)
    assert camera.name == "camA" and camera.size == (1088, 1920)
    np.testing.assert_allclose(camera.intrinsics, [[1600, 0, 544], [0, 1600, 960], [0, 0, 1]])
    np.testing.assert_allclose(camera.centre, [0, -5000, 1000], atol=1e-9)
    np.testing.assert_allclose(camera.rotation @ camera.rotation.T, np.eye(3), atol=1e-12)
    # straight ahead -> principal point; right of it (world +x) -> larger u; higher (world +z) -> smaller v
    ahead, right, up = np.array([[0, 0, 1000], [500, 0, 1000], [0, 0, 1500]], dtype=float)
    np.testing.assert_allclose(camera.project(ahead), [544, 960])
    np.testing.assert_allclose(camera.project(right), [544 + 1600 * 500 / 5000, 960])
    np.testing.assert_allclose(camera.project(up), [544, 960 - 1600 * 500 / 5000])
    assert (ahead - camera.centre) @ camera.rotation[2] > 0  # in front of the camera
    # a video window starting at (100, 20) of the sensor moves the principal point by that corner
    assert cropped.size == (988, 1000)
    np.testing.assert_allclose(cropped.intrinsics[:2, 2], [444, 940])


def test_qca_without_cameras_is_refused():
    with pytest.raises(ValueError, match="no camera"):
        read_qca("<calibration><cameras/></calibration>")


def look_at(name: str, centre, target=(0.0, 0.0, 1000.0), focal: float = 1500.0) -> Camera:
    """A pinhole camera at ``centre`` (mm, world z up) looking at ``target``, 1080x1920 portrait."""
    centre, target = np.asarray(centre, float), np.asarray(target, float)
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    intrinsics = np.array([[focal, 0, 540], [0, focal, 960], [0, 0, 1.0]])
    return Camera(name, intrinsics, rotation, -rotation @ centre, (1080, 1920))


RIG = [look_at(f"c{i}", (4000 * np.cos(a), 4000 * np.sin(a), 1800.0)) for i, a in enumerate([0.3, 1.9, 3.4, 4.8])]
PROJECTIONS = np.stack([camera.projection for camera in RIG])


def test_weighted_dlt_returns_the_points_exactly():
    points = np.random.default_rng(0).uniform([-800, -800, 0], [800, 800, 1900], size=(50, 3))
    pixels = np.stack([camera.project(points) for camera in RIG], axis=1)  # (50, 4, 2)
    weights = np.random.default_rng(1).uniform(0.3, 1.0, size=(50, 4))
    np.testing.assert_allclose(triangulate(PROJECTIONS, pixels, weights), points, atol=1e-6)
    np.testing.assert_allclose(reprojection_errors(RIG, points, pixels), 0, atol=1e-6)
    # two views are enough; one is not; a missing (NaN) view counts as unseen
    two = weights * np.array([1, 0, 1, 0])
    np.testing.assert_allclose(triangulate(PROJECTIONS, pixels, two), points, atol=1e-6)
    assert np.isnan(triangulate(PROJECTIONS, pixels, weights * np.array([0, 0, 1, 0]))).all()
    holes = pixels.copy()
    holes[:, :3] = np.nan
    assert np.isnan(triangulate(PROJECTIONS, holes, weights)).all()


def person(offset) -> np.ndarray:
    """A rough standing COCO-17 skeleton ``(17, 3)`` mm at floor position ``offset``."""
    x = [0, -30, 30, -80, 80, -180, 180, -200, 200, -210, 210, -100, 100, -110, 110, -110, 110]
    z = [1650, 1690, 1690, 1660, 1660, 1450, 1450, 1150, 1150, 850, 850, 950, 950, 500, 500, 80, 80]
    return np.stack([np.asarray(x, float) + offset[0], np.full(17, float(offset[1])), np.asarray(z, float)], -1)


def test_people_are_associated_across_views_and_followed():
    frames = 3
    people = [[person((-700 + 20 * f, 0)) for f in range(frames)], [person((700, 200 - 20 * f)) for f in range(frames)]]
    bystander = person((0, -3500))  # seen by cameras 0 and 1 only: never three views
    rng = np.random.default_rng(0)
    points = np.full((4, frames, 3, 17, 3), np.nan)
    truth = np.full((frames, 2, 4), -1)
    for f, c in itertools.product(range(frames), range(4)):
        order = rng.permutation(3 if c < 2 else 2)  # the detector's order changes from frame to frame
        seen = [people[0][f], people[1][f], bystander][: len(order)]
        for slot, who in zip(order, range(len(order)), strict=True):
            points[c, f, slot, :, :2] = RIG[c].project(seen[who]) + rng.normal(0, 1.0, (17, 2))
            points[c, f, slot, :, 2] = 0.9
            if who < 2:
                truth[f, who, c] = slot
    assignment = associate(points, RIG)
    if (assignment[0, 0] != truth[0, 0]).any():  # identities are labelled in the order found: swap to compare
        assignment = assignment[:, ::-1]
    np.testing.assert_array_equal(assignment, truth)
    triangulated = triangulate_people(points, RIG, assignment)
    np.testing.assert_allclose(triangulated.world[:, 0], np.stack(people[0]), atol=15)
    assert (triangulated.views == 4).all() and (triangulated.errors < 3).all()
