"""Shared by the study scripts: one CLI fit (which ends by testing its best checkpoint) and its result row."""

from __future__ import annotations

from pathlib import Path

import cli
from lightning_modules.base import LiftingModule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def averages(module: LiftingModule) -> dict[str, float]:
    """The action-wise averages (mm) of the module's last test table, by protocol name."""
    table = module.last_tables["test"][0]
    label, values = table.rows[-1]
    assert label == "average", f"last row of the table is {label!r}"
    return dict(zip(table.columns, values, strict=True))


def fit_and_test(experiment: str, out: Path, name: str, epochs: int, *overrides: str) -> dict[str, float]:
    """``poselift fit -c configs/experiments/<experiment>`` into ``out/name``; returns the test averages."""
    run = cli.lightning_main(
        [
            "fit",
            "-c", str(CONFIGS / "experiments" / experiment),
            "--trainer.max_epochs", str(epochs),
            "--trainer.logger.init_args.save_dir", str(out),
            "--trainer.logger.init_args.name", name,
            *overrides,
        ]
    )  # fmt: skip
    return averages(run.model)
