"""Semi-supervised study, seeded: back-projection against supervised-only at the same labeled budget.

Labeled budget: synthetic default: 10% of S1 (one block per recording); real-motion set: half of S1. The rest of
S1 and S5-S8 are the unlabeled 2D. Both arms use the same 27-frame, 256-channel lifter, epochs, labeled batches,
learning-rate decay and seeds, and test their last checkpoint (no validation, so nothing is selected):

1. supervised only: the labeled windows alone;
2. back-projection: the same labeled windows plus as many unlabeled batches (reprojection through the predicted
   trajectory and the bone-length prior after the labeled-only warm-up).

Reports P1, P2, P3 (mm, action-wise), mean ± std, and the paired difference with its 95% interval.

Usage: python benchmarks/semi_supervised_study.py [--seeds 3] [--datasets synthetic mocap] [--epochs 20]
       [--warmup 5] [--lr-decay 0.95] [--markdown docs/benchmarks.md] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness import Comparison, add_study_arguments, report, run_comparison, seed_overrides, seeds_of
from runs import CONFIGS, dataset_overrides, fit_and_test

import cli

COLUMNS = ("P1", "P2", "P3")
LABELED = {"synthetic": "0.1", "mocap": "0.5"}
"""Fraction of S1 labeled on each study set (the real-motion set is small: half of S1 is ~6k camera-frames)."""


def study(dataset: str, options: argparse.Namespace, out: Path) -> Comparison:
    common = [*dataset_overrides(dataset), "--data.init_args.subset", LABELED[dataset]]

    def supervised(seed: int) -> dict[str, float]:
        return fit_and_test(
            "synthetic_semi.yaml", out / dataset, f"supervised_seed{seed}", options.epochs, *common,
            *seed_overrides(seed),
            "--model", str(CONFIGS / "model/supervised_quickstart.yaml"),
            "--model.init_args.lr_decay", str(options.lr_decay),  # after --model, which would reset it
            "--data.init_args.unlabeled_subjects", "[]",
        )  # fmt: skip

    def back_projection(seed: int) -> dict[str, float]:
        return fit_and_test(
            "synthetic_semi.yaml", out / dataset, f"back_projection_seed{seed}", options.epochs, *common,
            *seed_overrides(seed),
            "--model.init_args.warmup_epochs", str(options.warmup),
            "--model.init_args.lr_decay", str(options.lr_decay),
        )  # fmt: skip

    title = (
        f"Back-projection vs supervised only, {dataset} set, {float(LABELED[dataset]):.0%} of S1 labeled, "
        f"{options.epochs} epochs (warm-up {options.warmup}), last checkpoint (test, action-wise mm)"
    )
    arms = {"supervised only": supervised, "back-projection": back_projection}
    return run_comparison(Comparison(title, COLUMNS, "supervised only"), arms, seeds_of(options))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(parser)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5, help="labeled-only epochs of back-projection")
    parser.add_argument("--lr-decay", type=float, default=0.95, help="per-epoch learning-rate decay of both arms")
    options = parser.parse_args()
    cli.quiet_known_noise()
    out = options.out or Path(tempfile.mkdtemp(prefix="poselift_semi_"))
    report(options, "semi_supervised", [study(d, options, out).markdown() for d in options.datasets])


if __name__ == "__main__":
    main()
