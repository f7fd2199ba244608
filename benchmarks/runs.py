"""Shared by the study scripts: one CLI fit (which ends by testing its best checkpoint) and its result row."""

from __future__ import annotations

from pathlib import Path

import cli
from lightning_modules.base import LiftingModule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def averages(module: LiftingModule, summary: str = "average") -> dict[str, float]:
    """The summary row of the module's first test table by column (Human3.6M: action-wise means in mm;
    3DHP: ``summary="all"``, PCK/AUC over every valid frame and errors in mm)."""
    return table_rows(module)[summary]


def table_rows(module: LiftingModule, index: int = 0) -> dict[str, dict[str, float]]:
    """Every row of one of the module's last test tables: row label -> column -> value."""
    table = module.last_tables["test"][index]
    return {label: dict(zip(table.columns, values, strict=True)) for label, values in table.rows}


def fit_and_test(
    experiment: str, out: Path, name: str, epochs: int, *overrides: str, summary: str = "average"
) -> dict[str, float]:
    """``poselift fit -c configs/experiments/<experiment>`` into ``out/name``; returns the test summary row."""
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
    return averages(run.model, summary)


def best_checkpoint(out: Path, name: str) -> Path:
    """The best checkpoint of the run ``out/name`` (written by :func:`fit_and_test`)."""
    (path,) = (out / name).glob("version_*/checkpoints/best-*.ckpt")
    return path
