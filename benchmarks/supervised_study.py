"""Supervised study, seeded, on the synthetic default and on the real-motion set.

Arms (same data, same budget, the last checkpoint tested; no validation, so nothing is selected):
1. mean pose: the training split's mean root-relative pose for every frame (no training; the same every seed);
2. 1 frame: the quickstart lifter with filter widths 1, 1, 1 (same channels, epochs, batches);
3. 27 frames: the quickstart experiment.

Reports P1, P2, P3 and MPJVE (mm, action-wise) as mean ± std over seeds and the paired differences against
the 27-frame lifter.

Usage: python benchmarks/supervised_study.py [--seeds 3] [--datasets synthetic mocap] [--epochs-synthetic 2]
       [--epochs-mocap 10] [--markdown docs/benchmarks.md] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness import Comparison, add_study_arguments, report, run_comparison, seed_overrides, seeds_of
from runs import CONFIGS, averages, dataset_overrides, fit_and_test, mean_pose_baseline

import cli

COLUMNS = ("P1", "P2", "P3", "MPJVE")


def study(dataset: str, epochs: int, seeds: list[int], out: Path) -> Comparison:
    data = dataset_overrides(dataset)
    _, datamodule = cli.instantiate_from_config(str(CONFIGS / "experiments/quickstart.yaml"), data)
    baseline = averages(mean_pose_baseline(datamodule))

    def lifter(widths: str, name: str):
        def run(seed: int) -> dict[str, float]:
            return fit_and_test(
                "quickstart.yaml", out / dataset, f"{name}_seed{seed}", epochs, *data, *seed_overrides(seed),
                "--model.init_args.lifter.init_args.filter_widths", widths,
            )  # fmt: skip

        return run

    arms = {
        "mean pose": lambda seed: baseline,
        "1 frame": lifter("[1, 1, 1]", "1f"),
        "27 frames": lifter("[3, 3, 3]", "27f"),
    }
    title = f"Supervised lifters, {dataset} set, {epochs} epochs, last checkpoint (test, action-wise mm)"
    return run_comparison(Comparison(title, COLUMNS, "27 frames"), arms, seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(parser)
    parser.add_argument("--epochs-synthetic", type=int, default=2)
    parser.add_argument("--epochs-mocap", type=int, default=10)
    options = parser.parse_args()
    cli.quiet_known_noise()
    out = options.out or Path(tempfile.mkdtemp(prefix="poselift_supervised_"))
    epochs = {"synthetic": options.epochs_synthetic, "mocap": options.epochs_mocap}
    blocks = [study(d, epochs[d], seeds_of(options), out).markdown() for d in options.datasets]
    report(options, "supervised", blocks)


if __name__ == "__main__":
    main()
