"""Supervised study on the default synthetic Human3.6M set.

1. Mean-pose baseline: predict the training set's mean root-relative pose for every frame.
2. The quickstart experiment (27 frames), trained and tested through the CLI.
3. The same experiment with a single-frame lifter (filter widths 1, 1, 1): same channels, epochs, batches.

Prints the protocol averages (mm) and checks: quickstart P1 <= 40% of the baseline's; 27 frames beat 1 frame
on P1 and MPJVE.

Usage: python benchmarks/supervised_study.py [--epochs 3] [--out runs/study]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import lightning.pytorch as pl
import torch
from runs import averages, fit_and_test
from torch import Tensor, nn

import cli
from datamodules.human36m import Human36mDataModule
from lightning_modules.base import LiftingModule

COLUMNS = ("P1", "P2", "P3", "MPJVE")


class MeanPose(nn.Module):
    """A 'lifter' that ignores its input and returns one fixed pose ``(J, 3)`` for every frame."""

    receptive_field, causal = 1, False

    def __init__(self, pose: Tensor) -> None:
        super().__init__()
        self.register_buffer("pose", pose)

    def forward(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor:
        batch, frames = keypoints_2d.shape[:2]
        return self.pose.expand(batch, frames, *self.pose.shape)


def mean_pose_baseline() -> dict[str, float]:
    data = Human36mDataModule(synthetic_size="default")
    data.setup("test")
    mean = data.stores["train"].poses_3d[: data.stores["train"].size].mean(dim=0)  # unflipped copy only
    module = LiftingModule(MeanPose(mean), flip_test=False)
    pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False).test(module, datamodule=data)
    return averages(module)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="epochs of both trained models (quickstart: 3)")
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    options = parser.parse_args()
    cli.quiet_known_noise()
    torch.manual_seed(0)
    out = Path(options.out or tempfile.mkdtemp(prefix="poselift_study_"))

    results = {"mean pose (train mean)": mean_pose_baseline()}
    results["1 frame (widths 1,1,1)"] = fit_and_test(
        "quickstart.yaml", out, "single_frame", options.epochs,
        "--model.init_args.lifter.init_args.filter_widths", "[1, 1, 1]",
    )  # fmt: skip
    results["27 frames (quickstart)"] = fit_and_test("quickstart.yaml", out, "quickstart", options.epochs)

    print(f"\nTest protocols on the default synthetic set, action-wise means (mm); runs in {out}")
    print(f"{'model':<26}" + "".join(f"{c:>9}" for c in COLUMNS))
    for name, values in results.items():
        print(f"{name:<26}" + "".join(f"{values[c]:>9.1f}" for c in COLUMNS))
    baseline, single, temporal = results.values()
    ratio = temporal["P1"] / baseline["P1"]
    print(f"\nquickstart P1 / mean-pose P1 = {ratio:.1%} (target <= 40%): {'PASS' if ratio <= 0.4 else 'FAIL'}")
    better = temporal["P1"] < single["P1"] and temporal["MPJVE"] < single["MPJVE"]
    print(f"27 frames beat 1 frame on P1 and MPJVE: {'PASS' if better else 'FAIL'}")


if __name__ == "__main__":
    main()
