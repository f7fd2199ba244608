"""Importing poselift changes no global state: warning filters and matplotlib's backend stay as they were."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("components", "datamodules", "lightning_modules")

SCRIPT = f"""
import importlib, pkgutil, warnings, matplotlib
import lightning.pytorch, torchmetrics, scipy.stats, h5py  # the libraries' own import-time settings come first
from torch.utils.tensorboard import SummaryWriter
filters, backend = list(warnings.filters), matplotlib.rcParams["backend"]
for package in {PACKAGES!r}:
    for module in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        importlib.import_module(module.name)
assert list(warnings.filters) == filters, [f for f in warnings.filters if f not in filters]
assert matplotlib.rcParams["backend"] == backend, (backend, matplotlib.rcParams["backend"])
print("unchanged")
"""


def test_importing_every_module_changes_no_global_state():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "unchanged", result.stderr[-2000:]
