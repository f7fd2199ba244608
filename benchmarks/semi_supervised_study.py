"""Semi-supervised study on the default synthetic Human3.6M set: 10% of S1 labeled, unlabeled S5-S8.

Both runs use the same lifter (27 frames, 256 channels), epochs, labeled batches and seed:
1. supervised only (the labeled windows alone);
2. back-projection (the same labeled windows plus as many unlabeled batches: reprojection + bone prior after the
   warm-up).

Prints P1 and P3 (mm, action-wise) and whether back-projection's P1 is at least 10% lower.

Usage: python benchmarks/semi_supervised_study.py [--epochs 60] [--warmup 10] [--lr-decay 0.98] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from runs import CONFIGS, fit_and_test

import cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10, help="labeled-only epochs of back-projection")
    parser.add_argument("--lr-decay", type=float, default=0.98, help="per-epoch learning-rate decay of both runs")
    parser.add_argument("--labeled-subjects", default="[S1]")
    parser.add_argument("--unlabeled-subjects", default="[S5, S6, S7, S8]")
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    options = parser.parse_args()
    cli.quiet_known_noise()
    out = Path(options.out or tempfile.mkdtemp(prefix="poselift_semi_"))
    split = ["--data.init_args.train_subjects", options.labeled_subjects]
    budget = ["--trainer.check_val_every_n_epoch", str(options.epochs), *split]  # validate once, at the end
    supervised = fit_and_test(
        "synthetic_semi.yaml", out, "supervised_only", options.epochs, *budget,
        "--model", str(CONFIGS / "model/supervised_quickstart.yaml"),
        "--model.init_args.lr_decay", str(options.lr_decay),  # after --model, which would reset it
        "--data.init_args.unlabeled_subjects", "[]",
    )  # fmt: skip
    semi = fit_and_test(
        "synthetic_semi.yaml", out, "back_projection", options.epochs, *budget,
        "--data.init_args.unlabeled_subjects", options.unlabeled_subjects,
        "--model.init_args.warmup_epochs", str(options.warmup),
        "--model.init_args.lr_decay", str(options.lr_decay),
    )  # fmt: skip
    print(f"\nSynthetic default, labeled 10% of {options.labeled_subjects}, unlabeled {options.unlabeled_subjects},")
    print(f"{options.epochs} epochs (warm-up {options.warmup}); test action-wise means (mm); runs in {out}")
    print(f"{'model':<24}{'P1':>9}{'P3':>9}")
    for name, values in (("supervised only", supervised), ("back-projection", semi)):
        print(f"{name:<24}{values['P1']:>9.1f}{values['P3']:>9.1f}")
    gain = 1 - semi["P1"] / supervised["P1"]
    print(f"\nP1 reduction by back-projection: {gain:.1%} (target >= 10%): {'PASS' if gain >= 0.10 else 'FAIL'}")


if __name__ == "__main__":
    main()
