"""The motion kinds: generators that turn times, a random generator and a body into a :class:`MotionPlan`.

Each kind has the signature ``(t, rng, body, volume, scale, **style) -> MotionPlan``: ``t`` ``(T,)`` times in
seconds, ``rng`` the take's only source of randomness, ``body`` the subject, ``volume`` where the cameras see
it, ``scale`` in (0, 1] shrinks the path towards the volume's centre (:func:`simulate_motion` retries smaller
paths until the body stays in view), ``style`` the keyword arguments of an :class:`ActionSpec`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from datamodules.synthetic.body import SIDES, BodyShape
from datamodules.synthetic.plan import Degrees, JointAngles, MotionPlan
from datamodules.synthetic.signals import FPS, cycle_phase, drift_path, facing, smooth_noise, smooth_window, unit_noise
from datamodules.synthetic.volume import CaptureVolume


def _stance(a: JointAngles, rng: np.random.Generator, t: np.ndarray) -> None:
    """Relaxed standing: soft knees, weight shifting from foot to foot, arms hanging, head looking around."""
    knee = 4 + 3 * smooth_noise(rng, t, 0.05, 0.2)
    a.both("knee", flexion=knee)
    a.both("ankle", flexion=knee / 2)
    a.both("hip", flexion=knee / 2)
    # Both legs lean the same way, so the pelvis sways sideways over the feet.
    sway = 3 * smooth_noise(rng, t, 0.05, 0.25)
    a.add("left_hip", abduction=sway)
    a.add("right_hip", abduction=-sway)
    a.add("lower_spine", abduction=sway / 2, twist=8 * smooth_noise(rng, t))
    a.add("thorax", flexion=5 * smooth_noise(rng, t), twist=20 * smooth_noise(rng, t, 0.05, 0.3))
    a.add("head", flexion=6 * smooth_noise(rng, t))
    for side in SIDES:
        a.add(f"{side}_shoulder", flexion=4 * smooth_noise(rng, t), abduction=9 + 2 * smooth_noise(rng, t))
        a.add(f"{side}_elbow", flexion=14 + 6 * smooth_noise(rng, t))
        a.add(f"{side}_wrist", flexion=5 * smooth_noise(rng, t))


def _legs(a: JointAngles, thigh: Degrees, knee: Degrees, abduction: Degrees = 0.0) -> None:
    """Thighs ``thigh`` degrees forward of vertical, knees bent ``knee``, feet flat on the floor."""
    a.both("hip", flexion=thigh, abduction=abduction)
    a.both("knee", flexion=knee)
    a.both("ankle", flexion=knee - thigh)


def _ellipse_walk(
    t: np.ndarray, rng: np.random.Generator, volume: CaptureVolume, scale: float, speed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Walk around the volume's ellipse at ``speed`` ``(T,)`` m/s: path ``(T, 2)`` metres, heading degrees."""
    theta = np.linspace(0, 2 * np.pi, 1025)
    axes = volume.axes * rng.uniform(0.7, 1.0, 2)  # each take walks its own ellipse
    loop = scale * np.stack([np.cos(theta), np.sin(theta)], axis=-1) @ axes.T
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(loop, axis=0), axis=-1))])
    direction = rng.choice([-1.0, 1.0])
    distance = (rng.uniform(0, arc[-1]) + direction * np.cumsum(speed) / FPS) % arc[-1]
    path = np.stack([np.interp(distance, arc, loop[:, k]) for k in range(2)], axis=-1)
    velocity = np.gradient(path, axis=0)
    return path, np.degrees(np.unwrap(np.arctan2(velocity[:, 1], velocity[:, 0])))


def _walking(
    t: np.ndarray,
    rng: np.random.Generator,
    body: BodyShape,
    volume: CaptureVolume,
    scale: float,
    speed: float = 1.0,
    arm_swing: float = 1.0,
    stop_and_go: bool = False,
) -> MotionPlan:
    """Walk around an ellipse, arms swinging against the legs, looking around."""
    a = JointAngles(len(t))
    pace = rng.uniform(1.1, 1.4) * speed * (1 + 0.1 * smooth_noise(rng, t, 0.05, 0.2))
    if stop_and_go:  # a dog on the leash sets the pace
        pace = pace * (0.7 + 0.3 * smooth_noise(rng, t, 0.1, 0.3))
    path, heading = _ellipse_walk(t, rng, volume, scale, pace)
    stride = rng.uniform(0.72, 0.82) * body.height
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.cumsum(pace / stride) / FPS
    legs, arms = rng.uniform(0.85, 1.15), arm_swing * rng.uniform(0.7, 1.3)  # this take's gait amplitudes
    for side, leg in (("left", phase), ("right", phase + np.pi)):
        a.add(f"{side}_hip", flexion=8 + 20 * legs * np.sin(leg), abduction=2)
        a.add(f"{side}_knee", flexion=6 + 55 * legs * ((1 + np.cos(leg - 0.4)) / 2) ** 3)  # swing-phase bend
        a.add(f"{side}_ankle", flexion=6 * np.cos(leg) - 2)
        # Each arm swings with the opposite leg; the elbow bends more as the arm comes forward.
        a.add(f"{side}_shoulder", flexion=4 - 18 * arms * np.sin(leg), abduction=8)
        a.add(f"{side}_elbow", flexion=15 + 10 * arms * (1 - np.sin(leg)))
    a.add("spine", flexion=3, twist=7 * np.sin(phase))  # shoulders counter-rotate against the pelvis
    a.add("thorax", twist=15 * smooth_noise(rng, t), flexion=4 * smooth_noise(rng, t))
    yaw = heading - 5 * np.sin(phase)
    return MotionPlan(a, yaw, np.full(len(t), 3.0), path, "pelvis")


def _turning(
    t: np.ndarray, rng: np.random.Generator, body: BodyShape, volume: CaptureVolume, scale: float
) -> MotionPlan:
    """Turn on the spot with small steps, pointing one arm out now and then (giving directions)."""
    a = JointAngles(len(t))
    _stance(a, rng, t)
    yaw = facing(rng, t, 120)
    turn_rate = np.abs(np.gradient(yaw)) * FPS  # degrees per second
    step = np.clip(turn_rate / 60, 0, 1)
    phase = 2 * np.pi * rng.uniform(1.6, 2.0) * t + rng.uniform(0, 2 * np.pi)
    for side, leg in (("left", phase), ("right", phase + np.pi)):
        lift = step * np.clip(np.sin(leg), 0, None)
        a.add(f"{side}_hip", flexion=25 * lift)
        a.add(f"{side}_knee", flexion=45 * lift)
    side = str(rng.choice(SIDES))
    point = smooth_window(cycle_phase(rng, t, (3.0, 6.0)), 0.1, 0.55) * rng.uniform(0.7, 1.1)
    a.add(f"{side}_shoulder", flexion=80 * point, abduction=20 * point)
    a.add("thorax", twist=(20 if side == "left" else -20) * point)
    return MotionPlan(a, yaw, np.zeros(len(t)), drift_path(rng, t, volume, scale), "feet")


def _gestures(
    t: np.ndarray,
    rng: np.random.Generator,
    body: BodyShape,
    volume: CaptureVolume,
    scale: float,
    wave: bool = False,
    phone: bool = False,
) -> MotionPlan:
    """Talk with the hands; optionally wave and bow (greeting) or hold a phone to the ear."""
    a = JointAngles(len(t))
    _stance(a, rng, t)
    for side in SIDES:
        raise_, turn, bend = (unit_noise(rng, t, 0.15, 0.6) for _ in range(3))
        a.add(f"{side}_shoulder", flexion=30 * raise_, abduction=15 * unit_noise(rng, t), twist=-25 * turn)
        a.add(f"{side}_elbow", flexion=65 * bend)
    a.add("spine", flexion=5 * smooth_noise(rng, t))
    cycle = cycle_phase(rng, t, (4.0, 8.0))
    if wave:
        up = smooth_window(cycle, 0.05, 0.4) * rng.uniform(0.8, 1.1)
        a.add("right_shoulder", flexion=95 * up, abduction=30 * up)
        a.add("right_elbow", flexion=up * (55 + 25 * np.sin(2 * np.pi * 2.2 * t)))
        a.add("lower_spine", flexion=25 * smooth_window(cycle, 0.55, 0.8))
    if phone:
        ear = smooth_window(cycle, 0.1, 0.8)
        a.add("right_shoulder", flexion=25 * ear, abduction=35 * ear, twist=-40 * ear)
        a.add("right_elbow", flexion=110 * ear)
    return MotionPlan(a, facing(rng, t, 40), np.zeros(len(t)), drift_path(rng, t, volume, scale), "feet")


def _bending(
    t: np.ndarray, rng: np.random.Generator, body: BodyShape, volume: CaptureVolume, scale: float
) -> MotionPlan:
    """Bend down to pick something up and straighten again (purchases)."""
    a = JointAngles(len(t))
    _stance(a, rng, t)
    bend = smooth_window(cycle_phase(rng, t, (3.5, 6.0)), 0.1, 0.6) * rng.uniform(0.7, 1.15)
    a.add("lower_spine", flexion=25 * bend)
    a.add("spine", flexion=15 * bend)
    a.add("thorax", flexion=-10 * bend)
    _legs(a, thigh=20 * bend, knee=40 * bend)
    a.both("shoulder", flexion=70 * bend)
    return MotionPlan(a, facing(rng, t, 50), 35 * bend, drift_path(rng, t, volume, scale), "feet")


def _sitting(
    t: np.ndarray, rng: np.random.Generator, body: BodyShape, volume: CaptureVolume, scale: float
) -> MotionPlan:
    """Sit on a chair, leaning and shifting, bringing a hand to the mouth now and then (eating, sitting)."""
    a = JointAngles(len(t))
    thigh = 85 + 5 * smooth_noise(rng, t)
    for side in SIDES:
        knee = 85 + 20 * smooth_noise(rng, t, 0.03, 0.15)
        a.add(f"{side}_hip", flexion=thigh, abduction=6 + 4 * smooth_noise(rng, t))
        a.add(f"{side}_knee", flexion=knee)
        a.add(f"{side}_ankle", flexion=knee - thigh)
        a.add(f"{side}_shoulder", flexion=25 + 8 * smooth_noise(rng, t), abduction=8)
        a.add(f"{side}_elbow", flexion=55 + 10 * smooth_noise(rng, t))
    side = str(rng.choice(SIDES))
    mouth = smooth_window(cycle_phase(rng, t, (3.0, 6.0)), 0.1, 0.5)
    a.add(f"{side}_shoulder", flexion=15 * mouth, abduction=20 * mouth, twist=-30 * mouth)
    a.add(f"{side}_elbow", flexion=75 * mouth)
    a.add("lower_spine", flexion=8 + 8 * smooth_noise(rng, t), twist=8 * smooth_noise(rng, t))
    a.add("thorax", twist=20 * smooth_noise(rng, t))
    a.add("head", flexion=8 * smooth_noise(rng, t))
    pitch = -5 + 8 * smooth_noise(rng, t)
    return MotionPlan(a, facing(rng, t, 10), pitch, drift_path(rng, t, volume, scale, wander=0.03), "pelvis")


def _crouching(
    t: np.ndarray, rng: np.random.Generator, body: BodyShape, volume: CaptureVolume, scale: float
) -> MotionPlan:
    """Crouch down, stay low for a while, stand up again (sitting down)."""
    a = JointAngles(len(t))
    _stance(a, rng, t)
    down = smooth_window(cycle_phase(rng, t, (5.0, 8.0)), 0.1, 0.7, ramp=0.15) * rng.uniform(0.75, 1.05)
    _legs(a, thigh=95 * down, knee=125 * down)
    a.add("lower_spine", flexion=10 * down)
    a.add("thorax", flexion=-20 * down)
    a.both("shoulder", flexion=45 * down)
    a.both("elbow", flexion=30 * down)
    return MotionPlan(a, facing(rng, t, 40), 35 * down, drift_path(rng, t, volume, scale), "feet")


def _reaching(
    t: np.ndarray, rng: np.random.Generator, body: BodyShape, volume: CaptureVolume, scale: float
) -> MotionPlan:
    """Raise a camera to the face with both hands, then reach forward and up with one arm (photo)."""
    a = JointAngles(len(t))
    _stance(a, rng, t)
    cycle = cycle_phase(rng, t, (4.0, 7.0))
    shoot = smooth_window(cycle, 0.05, 0.45) * rng.uniform(0.85, 1.1)
    a.both("shoulder", flexion=70 * shoot, abduction=20 * shoot, twist=-45 * shoot)
    a.both("elbow", flexion=100 * shoot)
    a.add("spine", flexion=-5 * shoot)
    side = str(rng.choice(SIDES))
    reach = smooth_window(cycle, 0.55, 0.9)
    a.add(f"{side}_shoulder", flexion=100 * reach, abduction=10 * reach)
    a.add("lower_spine", twist=(15 if side == "right" else -15) * reach)
    return MotionPlan(a, facing(rng, t, 60), np.zeros(len(t)), drift_path(rng, t, volume, scale), "feet")


MOTION_KINDS: dict[str, Callable[..., MotionPlan]] = {
    "walking": _walking,
    "turning": _turning,
    "gestures": _gestures,
    "bending": _bending,
    "sitting": _sitting,
    "crouching": _crouching,
    "reaching": _reaching,
}
"""Motion generators by kind: ``(t, rng, body, volume, scale, **style) -> MotionPlan``."""
