"""Sequence-to-sequence study, seeded: DSTformer-small against the 243-frame temporal convolutions at equal
training time, on the synthetic default and on the real-motion set.

Arms (same data, same seeds, the same training time per run, no validation; the last checkpoint tested):
1. mean pose: the training split's mean root-relative pose for every frame (no training);
2. 243-frame convolutions: the quickstart lifter with filter widths 3, 3, 3, 3, 3 (quickstart channels);
3. DSTformer-small: ``configs/experiments/synthetic_dstformer_small.yaml`` (81-frame clips, velocity loss).

Each run trains for ``--minutes`` of CPU time of its own process (``runs.CpuTimeBudget``; data loading in the
process and the per-epoch bookkeeping count too): on a machine shared with other jobs that is the cost each arm
consumed, which wall-clock time is not; run single-threaded (``OMP_NUM_THREADS=1``) it is the wall-clock time of
one dedicated core. So the comparison is at equal cost, not at equal epochs. Reports P1, P2, P3 and MPJVE (mm,
action-wise) as mean ± std over seeds and the paired differences against the DSTformer.

Usage: python benchmarks/seq2seq_study.py [--seeds 3] [--datasets synthetic mocap] [--minutes 10]
       [--markdown docs/benchmarks.md] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness import Comparison, add_study_arguments, report, run_comparison, seed_overrides, seeds_of
from runs import CONFIGS, averages, dataset_overrides, fit_and_test, mean_pose_baseline

import cli

COLUMNS = ("P1", "P2", "P3", "MPJVE")
EPOCH_CEILING = 10_000  # the time limit ends every run long before this many epochs


def study(dataset: str, minutes: float, seeds: list[int], out: Path) -> Comparison:
    data = dataset_overrides(dataset)
    _, datamodule = cli.instantiate_from_config(str(CONFIGS / "experiments/quickstart.yaml"), data)
    baseline = averages(mean_pose_baseline(datamodule))
    budget = ["--trainer.callbacks+=runs.CpuTimeBudget", "--trainer.callbacks.seconds", str(60 * minutes)]

    def arm(experiment: str, name: str, *options: str):
        def run(seed: int) -> dict[str, float]:
            folder = f"{name}_seed{seed}"
            overrides = (*data, *seed_overrides(seed), *budget, *options)
            return fit_and_test(experiment, out / dataset, folder, EPOCH_CEILING, *overrides)

        return run

    arms = {
        "mean pose": lambda seed: baseline,
        "243-frame convolutions": arm(
            "quickstart.yaml", "tcn243", "--model.init_args.lifter.init_args.filter_widths", "[3, 3, 3, 3, 3]"
        ),
        "DSTformer-small": arm("synthetic_dstformer_small.yaml", "dstformer"),
    }
    title = f"Sequence-to-sequence lifter, {dataset} set, {minutes:g} CPU minutes of training each, last checkpoint"
    return run_comparison(Comparison(title, COLUMNS, "DSTformer-small"), arms, seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(parser)
    parser.add_argument("--minutes", type=float, default=10.0, help="CPU minutes of training of every run")
    options = parser.parse_args()
    cli.quiet_known_noise()
    out = options.out or Path(tempfile.mkdtemp(prefix="poselift_seq2seq_"))
    blocks = [study(d, options.minutes, seeds_of(options), out).markdown() for d in options.datasets]
    report(options, "seq2seq", blocks)


if __name__ == "__main__":
    main()
