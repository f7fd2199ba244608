"""MPI-INF-3DHP study, seeded: the official PCK / AUC / MPJPE on the synthetic 3DHP test set (TS1-TS6, valid
frames) of the quickstart lifter trained on

1. the synthetic 3DHP training set (cameras 0, 1, 2, 4-8);
2. the synthetic Human3.6M default (cross-dataset, no code change between datasets);
3. the real-motion set (real motion capture in the Human3.6M files; cross-dataset).

Every lifter is tested at its last checkpoint (no validation). ``--datasets`` picks the Human3.6M-format training
sets of rows 2-3.

Usage: python benchmarks/mpi_inf_3dhp_study.py [--seeds 3] [--datasets synthetic mocap] [--epochs-synthetic 2]
       [--epochs-mocap 10] [--markdown docs/benchmarks.md] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness import Comparison, add_study_arguments, report, run_comparison, seed_overrides, seeds_of
from runs import CONFIGS, dataset_overrides, fit, last_checkpoint, table_rows

import cli

COLUMNS = ("PCK", "AUC", "MPJPE")
SOURCES = {"synthetic": "Human3.6M synthetic", "mocap": "real motion"}


def test_on_3dhp(checkpoint: Path, out: Path) -> dict[str, float]:
    """``poselift test`` of a checkpoint on the synthetic 3DHP test set; the ``all`` row (every valid frame)."""
    run = cli.lightning_main(
        ["test", "-c", str(CONFIGS / "experiments/synthetic_3dhp.yaml"), "--ckpt_path", str(checkpoint),
         "--trainer.logger.init_args.save_dir", str(out)]
    )  # fmt: skip
    return table_rows(run.model.last_tables["test"])["all"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(parser)
    parser.add_argument("--epochs-synthetic", type=int, default=2, help="epochs on the synthetic sets")
    parser.add_argument("--epochs-mocap", type=int, default=10, help="epochs on the real-motion set")
    options = parser.parse_args()
    cli.quiet_known_noise()
    out = options.out or Path(tempfile.mkdtemp(prefix="poselift_3dhp_"))

    def on_3dhp(seed: int) -> dict[str, float]:
        run = fit("synthetic_3dhp.yaml", out, f"3dhp_seed{seed}", options.epochs_synthetic, *seed_overrides(seed))
        return table_rows(run.model.checkpoint_tables["last"])["all"]

    def cross(dataset: str):
        epochs = options.epochs_synthetic if dataset == "synthetic" else options.epochs_mocap

        def run(seed: int) -> dict[str, float]:
            name = f"{dataset}_seed{seed}"
            fit("quickstart.yaml", out, name, epochs, *dataset_overrides(dataset), *seed_overrides(seed))
            return test_on_3dhp(last_checkpoint(out, name), out / "tests" / name)

        return run

    arms = {"3DHP -> 3DHP": on_3dhp} | {f"{SOURCES[d]} -> 3DHP": cross(d) for d in options.datasets}
    title = (
        f"Synthetic MPI-INF-3DHP test set (TS1-TS6, valid frames), quickstart lifter, last checkpoint; epochs: "
        f"{options.epochs_synthetic} on synthetic sets, {options.epochs_mocap} on the real-motion set "
        "(PCK, AUC %: higher is better; MPJPE mm)"
    )
    comparison = Comparison(title, COLUMNS, "3DHP -> 3DHP", higher_is_better=("PCK", "AUC"))
    report(options, "mpi_inf_3dhp", [run_comparison(comparison, arms, seeds_of(options)).markdown()])


if __name__ == "__main__":
    main()
