import numpy as np
import pytest
import torch

from components.camera import (
    CameraParameters,
    camera_to_world,
    downward_pitch_degrees,
    flip_intrinsics,
    h36m_cameras,
    image_coordinates,
    normalize_screen_coordinates,
    project_to_2d,
    project_to_2d_linear,
    world_to_camera,
)
from components.geometry import flip_horizontal, look_at, matrix_to_quaternion
from components.skeleton import H36M_17

S1_CAMERA_0 = h36m_cameras("S1")[0]
# Pixels of the camera-space point (0.1, -0.2, 4.0) m through S1's first camera (54138969), evaluated by hand
# from the published distortion formula with 30-digit decimal arithmetic.
KNOWN_POINT = (0.1, -0.2, 4.0)
KNOWN_PIXELS = (541.147131961767, 458.291524390566)
KNOWN_PIXELS_LINEAR = (541.167739868164, 458.262420654297)


def test_h36m_calibration_is_packaged():
    cameras = h36m_cameras("S1")
    assert [c.id for c in cameras] == ["54138969", "55011271", "58860488", "60457274"]
    assert (S1_CAMERA_0.width, S1_CAMERA_0.height) == (1000, 1002)
    assert S1_CAMERA_0.translation == pytest.approx((1.8411070556640625, 4.95528466796875, 1.5634454345703125))
    # Normalised intrinsics of camera 0: f / w * 2 and the screen-normalised centre.
    assert S1_CAMERA_0.intrinsics()[:4] == pytest.approx([2.2901, 2.2876, 0.0251, 0.0289], abs=1e-4)
    assert h36m_cameras("S2")[0].orientation == (1.0, 0.0, 0.0, 0.0)  # 2D-only subject: no extrinsics


def test_projection_of_known_point_matches_hand_computed_pixels():
    point = torch.tensor([KNOWN_POINT], dtype=torch.float64)
    intrinsics = torch.from_numpy(S1_CAMERA_0.pixel_intrinsics())
    assert project_to_2d(point, intrinsics).tolist()[0] == pytest.approx(KNOWN_PIXELS, abs=1e-6)
    assert project_to_2d_linear(point, intrinsics).tolist()[0] == pytest.approx(KNOWN_PIXELS_LINEAR, abs=1e-6)


def test_normalised_intrinsics_project_to_normalised_pixels():
    point = torch.tensor([KNOWN_POINT], dtype=torch.float64)
    normalised = project_to_2d(point, torch.from_numpy(S1_CAMERA_0.intrinsics()).double())
    pixels = image_coordinates(normalised, S1_CAMERA_0.width, S1_CAMERA_0.height)
    assert pixels.tolist()[0] == pytest.approx(KNOWN_PIXELS, abs=1e-3)  # float32 intrinsics


def test_projection_clamps_and_broadcasts_batches():
    intrinsics = torch.from_numpy(np.stack([c.intrinsics() for c in h36m_cameras("S9")]))  # (4, 9)
    points = torch.randn(4, 5, 17, 3)
    points[..., 2] = points[..., 2].abs() + 3
    out = project_to_2d(points, intrinsics)
    assert out.shape == (4, 5, 17, 2)
    assert torch.allclose(out[2], project_to_2d(points[2], intrinsics[2]))
    far = torch.tensor([[10.0, 0.0, 1.0]])  # x/z = 10 is clamped to 1
    assert torch.equal(project_to_2d_linear(far, intrinsics[0]), project_to_2d_linear(far / 10, intrinsics[0]))
    with pytest.raises(ValueError, match="do not lead the batch dims"):
        project_to_2d(points, intrinsics[:3])


def _rotation_matrix(q):
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def test_world_camera_round_trip_and_matrix_form():
    q = torch.tensor(S1_CAMERA_0.orientation, dtype=torch.float64)
    t = torch.tensor(S1_CAMERA_0.translation, dtype=torch.float64)
    world = torch.randn(100, 17, 3, dtype=torch.float64)
    camera = world_to_camera(world, q, t)
    assert torch.allclose(camera_to_world(camera, q, t), world, atol=1e-6)  # float32 calibration
    rotation = _rotation_matrix(np.asarray(S1_CAMERA_0.orientation, dtype=np.float64))
    expected = (world.numpy() - t.numpy()) @ rotation  # row vectors: R^T (X - t)
    assert np.allclose(camera.numpy(), expected, atol=1e-6)
    assert torch.allclose(world_to_camera(t[None], q, t), torch.zeros(1, 3, dtype=torch.float64))


def test_screen_normalisation_round_trip_and_range():
    pixels = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]], dtype=np.float32)
    normalised = normalize_screen_coordinates(pixels, 1000, 1002)
    assert normalised[:, 0].tolist() == pytest.approx([-1.0, 1.0, 0.0])
    assert normalised[:, 1].tolist() == pytest.approx([-1.002, 1.002, 0.0])
    assert np.allclose(image_coordinates(normalised, 1000, 1002), pixels, atol=1e-4)
    tensor = torch.from_numpy(pixels)
    assert torch.allclose(image_coordinates(normalize_screen_coordinates(tensor, 1000, 1002), 1000, 1002), tensor)
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 2\)"):
        normalize_screen_coordinates(np.zeros((3, 3)), 1000, 1000)


def test_flip_is_consistent_with_projection_and_an_involution():
    intrinsics = torch.from_numpy(np.stack([c.intrinsics() for c in h36m_cameras("S5")])).double()
    poses = torch.randn(4, 17, 3, dtype=torch.float64) * 0.3
    poses[..., 2] += 4.0
    mirrored_projection = flip_horizontal(project_to_2d(poses, intrinsics), H36M_17)
    projected_mirror = project_to_2d(flip_horizontal(poses, H36M_17), flip_intrinsics(intrinsics))
    assert torch.allclose(mirrored_projection, projected_mirror, atol=1e-12)
    assert torch.equal(flip_intrinsics(flip_intrinsics(intrinsics)), intrinsics)
    assert torch.equal(flip_horizontal(flip_horizontal(poses, H36M_17), H36M_17), poses)
    assert flip_intrinsics(np.arange(9.0))[[2, 7]].tolist() == [-2.0, -7.0]


def test_camera_parameters_intrinsics_layout():
    camera = CameraParameters("c", 2000, 1000, (1000.0, 900.0), (1000.0, 500.0), (0.1, 0.2, 0.3), (0.01, 0.02))
    assert camera.intrinsics().tolist() == pytest.approx([1.0, 0.9, 0.0, 0.0, 0.1, 0.2, 0.3, 0.01, 0.02])


def test_downward_pitch_of_cameras_aimed_by_look_at():
    # A camera 3 m up aiming at a floor point 3 m away looks 45 degrees down; one at eye height looks level.
    targets = [(3.0, 0.0, 0.0), (0.0, 4.0, 1.5), (0.0, -2.0, 3.0 + 2.0 * np.tan(np.radians(20.0)))]
    rotations = np.stack(
        [look_at(np.array([0.0, 0.0, 3.0 if i != 1 else 1.5]), np.array(t)) for i, t in enumerate(targets)]
    )
    orientation = matrix_to_quaternion(torch.from_numpy(rotations))
    torch.testing.assert_close(
        downward_pitch_degrees(orientation), torch.tensor([45.0, 0.0, -20.0], dtype=torch.float64)
    )


def test_human36m_cameras_look_down_by_about_13_degrees():
    orientation = torch.tensor([camera.orientation for s in ("S1", "S5", "S9") for camera in h36m_cameras(s)])
    pitch = downward_pitch_degrees(orientation.double())
    assert pitch.shape == (12,)
    assert 10.0 < pitch.min() and pitch.max() < 16.5
