"""MPI-INF-3DHP study on synthetic data: the official PCK / AUC / MPJPE of the quickstart lifter

1. trained and tested on the default synthetic 3DHP set (training cameras 0, 1, 2, 4-8; test TS1-TS6);
2. trained on the default synthetic Human3.6M set (the quickstart experiment) and tested on the same 3DHP test
   sequences: the cross-dataset protocol, with no code change between the two datasets.

Both use the quickstart lifter and schedule (27 frames, 256 channels, 3 epochs). Prints the "all" row (every
valid frame) and the scene PCKs.

Usage: python benchmarks/mpi_inf_3dhp_study.py [--epochs 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from runs import CONFIGS, best_checkpoint, fit_and_test, table_rows

import cli


def test_on_3dhp(checkpoint: Path, out: Path) -> dict[str, dict[str, float]]:
    """``poselift test`` of a checkpoint on the synthetic 3DHP test set; the per-sequence table's rows."""
    run = cli.lightning_main(
        ["test", "-c", str(CONFIGS / "experiments/synthetic_3dhp.yaml"), "--ckpt_path", str(checkpoint),
         "--trainer.logger.init_args.save_dir", str(out)]
    )  # fmt: skip
    return table_rows(run.model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    options = parser.parse_args()
    cli.quiet_known_noise()
    out = Path(options.out or tempfile.mkdtemp(prefix="poselift_3dhp_"))
    fit_and_test("synthetic_3dhp.yaml", out, "train_3dhp", options.epochs, summary="all")
    on_3dhp = best_checkpoint(out, "train_3dhp")
    fit_and_test("quickstart.yaml", out, "train_h36m", options.epochs)
    on_h36m = best_checkpoint(out, "train_h36m")
    results = {
        "3DHP -> 3DHP": test_on_3dhp(on_3dhp, out / "tests"),
        "H36M -> 3DHP": test_on_3dhp(on_h36m, out / "tests"),
    }
    print(
        f"\nSynthetic 3DHP test set (TS1-TS6, valid frames), quickstart lifter, {options.epochs} epochs; runs in {out}"
    )
    print(f"{'train -> test':<16}{'PCK':>8}{'AUC':>8}{'MPJPE':>8}{'PA':>8}{'GS':>8}{'noGS':>8}{'Outdoor':>8}")
    for name, rows in results.items():
        total = rows["all"]
        scenes = [rows[scene]["PCK"] for scene in ("GS", "noGS", "Outdoor")]
        values = [total["PCK"], total["AUC"], total["MPJPE"], total["P-MPJPE"], *scenes]
        print(f"{name:<16}" + "".join(f"{v:>8.1f}" for v in values))


if __name__ == "__main__":
    main()
