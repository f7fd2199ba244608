"""Shared fixtures: a session cache with the tiny synthetic dataset, so tests never write to ~/.cache."""

import pytest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("poselift_cache")


@pytest.fixture(autouse=True)
def _isolated_cache(cache_dir, monkeypatch):
    monkeypatch.setenv("POSELIFT_CACHE", str(cache_dir))
