"""The ``tiny`` synthetic Human3.6M dataset, written once for every test module of this folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datamodules.synthetic import SynthesisSummary, synthesize_h36m


def _load(path: Path, key: str):
    with np.load(path, allow_pickle=True) as archive:
        return archive[key].item()


@pytest.fixture(scope="session")
def summary(tmp_path_factory) -> SynthesisSummary:
    return synthesize_h36m(tmp_path_factory.mktemp("synthetic") / "seed0", "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny(summary) -> Path:
    return summary.directory


@pytest.fixture(scope="session")
def poses_3d(tiny) -> dict:
    return _load(tiny / "data_3d_h36m.npz", "positions_3d")


@pytest.fixture(scope="session")
def gt_2d(tiny) -> dict:
    return _load(tiny / "data_2d_h36m_gt.npz", "positions_2d")


@pytest.fixture(scope="session")
def noisy_2d(tiny) -> dict:
    return _load(tiny / "data_2d_h36m_noisy.npz", "positions_2d")
