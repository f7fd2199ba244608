"""Multiview study, seeded: metric learning against supervised-only, and cross-view retrieval.

Labeled budget as in the semi-supervised study (synthetic: 10% of S1; real-motion set: half of S1); the rest of
S1 and S5-S8 are synchronized unlabeled views. Both arms use the same 27-frame, 256-channel trunk, epochs,
labeled batches and seeds, and are tested at their last checkpoint (no validation):

1. supervised only: the labeled windows alone;
2. multiview: the same labeled windows plus as many batches of synchronized views (metric loss on the embedding).

Then cross-view retrieval on the test subjects (queries from camera 0, gallery the other cameras, every 10th
frame; a hit is a retrieved pose within NP-MPJPE 0.1 of the query's, the headline threshold as in Pr-VIPE;
0.05 is an extra column): the multiview model's embedding against the 2D keypoints and the 3D of both lifters.

Usage: python benchmarks/multiview_study.py [--seeds 3] [--datasets synthetic mocap] [--epochs 20]
       [--markdown docs/benchmarks.md] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from functools import cache
from pathlib import Path

from harness import Comparison, add_study_arguments, report, run_comparison, seed_overrides, seeds_of
from runs import CONFIGS, dataset_overrides, fit, table_rows
from semi_supervised_study import LABELED

import cli
from components.retrieval import model_methods, retrieval_report

COLUMNS = ("P1", "P2", "P3")
THRESHOLDS = (0.1, 0.05)
ROWS = ("embedding", "2D keypoints", "3D lifted (multiview)", "3D lifted (supervised only)")


def study(dataset: str, options: argparse.Namespace, out: Path) -> list[Comparison]:
    common = [*dataset_overrides(dataset), "--data.init_args.subset", LABELED[dataset]]

    @cache
    def trained(seed: int) -> dict[str, dict[str, float]]:
        """Both arms of one seed: their protocol averages and the retrieval rows."""
        supervised = fit(
            "synthetic_semi.yaml", out / dataset, f"supervised_seed{seed}", options.epochs, *common,
            *seed_overrides(seed),
            "--model", str(CONFIGS / "model/supervised_quickstart.yaml"),
            "--model.init_args.lr_decay", "0.95",
            "--data.init_args.unlabeled_subjects", "[]",
        )  # fmt: skip
        multiview = fit(
            "synthetic_multiview.yaml", out / dataset, f"multiview_seed{seed}", options.epochs, *common,
            *seed_overrides(seed),
        )  # fmt: skip
        results = {
            "supervised only": table_rows(supervised.model.checkpoint_tables["last"])["average"],
            "multiview": table_rows(multiview.model.checkpoint_tables["last"])["average"],
        }
        methods = model_methods(multiview.model.eval(), {"supervised only": supervised.model.eval()})
        methods["3D lifted (multiview)"] = methods.pop("3D lifted (this model)")
        views = multiview.datamodule.synchronized_views("test")
        for threshold in THRESHOLDS:
            table = retrieval_report(views, methods, multiview.model.output_skeleton, "test", threshold=threshold)
            for row, values in table_rows([table]).items():
                results.setdefault(row, {})[f"Hit@1 ({threshold:g})"] = values["Hit@1"]
        return results

    accuracy = Comparison(
        f"Multiview vs supervised only, {dataset} set, {float(LABELED[dataset]):.0%} of S1 labeled, {options.epochs} "
        "epochs, last checkpoint (test, action-wise mm)",
        COLUMNS,
        "supervised only",
    )
    arms = {arm: (lambda seed, arm=arm: trained(seed)[arm]) for arm in ("supervised only", "multiview")}
    run_comparison(accuracy, arms, seeds_of(options))
    retrieval = Comparison(
        f"Cross-view retrieval, {dataset} set, test subjects, camera 0 vs the others, every 10th frame "
        "(Hit@1 %, higher is better; headline NP-MPJPE <= 0.1)",
        tuple(f"Hit@1 ({t:g})" for t in THRESHOLDS),
        "embedding",
        higher_is_better=tuple(f"Hit@1 ({t:g})" for t in THRESHOLDS),
    )
    rows = {row: (lambda seed, row=row: trained(seed)[row]) for row in ROWS}
    run_comparison(retrieval, rows, seeds_of(options))
    return [accuracy, retrieval]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(parser)
    parser.add_argument("--epochs", type=int, default=20)
    options = parser.parse_args()
    cli.quiet_known_noise()
    out = options.out or Path(tempfile.mkdtemp(prefix="poselift_multiview_"))
    blocks = [c.markdown() for d in options.datasets for c in study(d, options, out)]
    report(options, "multiview", blocks)


if __name__ == "__main__":
    main()
