"""Shared fixtures: a session cache with the tiny synthetic dataset, so tests never write to ~/.cache."""

import os

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
