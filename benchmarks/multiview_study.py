"""Multiview study on the default synthetic Human3.6M set: 10% of S1 labeled, the rest of S1 and S5-S8 as views.

Both runs use the same 27-frame, 256-channel trunk, epochs, labeled batches and seed:
1. supervised only (the labeled windows alone);
2. multiview metric learning (the same labeled windows plus as many batches of synchronized views).

Prints P1/P3 (mm, action-wise) of both, then the cross-view retrieval table of the test subjects (queries camera 0,
gallery the other three cameras, every 10th frame): the learned embedding, normalised 2D keypoints, and the 3D
output of both lifters. Targets: lower P1 than supervised-only; embedding Hit@1 at least twice the 2D baseline's.

Usage: python benchmarks/multiview_study.py [--epochs 30] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from runs import CONFIGS, best_checkpoint, fit_and_test

import cli
from lightning_modules.multiview import MultiviewLifting
from lightning_modules.retrieval import model_methods, retrieval_report
from lightning_modules.supervised import SupervisedLifting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    options = parser.parse_args()
    cli.quiet_known_noise()
    out = Path(options.out or tempfile.mkdtemp(prefix="poselift_multiview_"))
    budget = ["--trainer.check_val_every_n_epoch", str(options.epochs)]  # validate once, at the end
    supervised = fit_and_test(
        "synthetic_semi.yaml", out, "supervised_only", options.epochs, *budget,
        "--model", str(CONFIGS / "model/supervised_quickstart.yaml"),
        "--model.init_args.lr_decay", "0.95",
        "--data.init_args.unlabeled_subjects", "[]",
    )  # fmt: skip
    multiview = fit_and_test("synthetic_multiview.yaml", out, "multiview", options.epochs, *budget)
    model = MultiviewLifting.load_from_checkpoint(best_checkpoint(out, "multiview"), map_location="cpu")
    baseline = SupervisedLifting.load_from_checkpoint(best_checkpoint(out, "supervised_only"), map_location="cpu")
    _, data = cli.instantiate_from_config(str(CONFIGS / "experiments/synthetic_multiview.yaml"))
    data.setup("test")
    table = retrieval_report(
        data.synchronized_views("test"),
        model_methods(model.eval(), {"supervised only": baseline.eval()}),
        data.output_skeleton,
        "test_retrieval",
    )
    print(f"\nSynthetic default, labeled 10% of S1, views of the rest of S1 and S5-S8, {options.epochs} epochs;")
    print(f"test action-wise means (mm); runs in {out}")
    print(f"{'model':<24}{'P1':>9}{'P3':>9}")
    for name, values in (("supervised only", supervised), ("multiview", multiview)):
        print(f"{name:<24}{values['P1']:>9.1f}{values['P3']:>9.1f}")
    print()
    print(table.format())
    rows = dict(table.rows)
    hit = table.columns.index("Hit@1")
    ratio = rows["embedding"][hit] / max(rows["2D keypoints"][hit], 1e-9)
    print(f"\nP1 multiview vs supervised only: {multiview['P1']:.1f} vs {supervised['P1']:.1f} mm "
          f"({'PASS' if multiview['P1'] < supervised['P1'] else 'FAIL'})")  # fmt: skip
    print(f"Hit@1 embedding / 2D baseline: {ratio:.2f} (target >= 2): {'PASS' if ratio >= 2 else 'FAIL'}")


if __name__ == "__main__":
    main()
