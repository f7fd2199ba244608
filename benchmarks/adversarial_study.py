"""Adversarial (TIPS) study, seeded, on the synthetic default and on the real-motion set.

Arms, same data (2D of the training subjects only; 3D only to evaluate), same budget, same seeds:

1. teachers -> student: torso and legs generators against a 2D discriminator, then one student distilled from
   them (both stages ``--epochs`` long; the student learns from the teachers' label-free pick);
2. solo: one generator on the whole pose, the same losses;
3. mean pose: the training split's mean pose for every frame (no training);
4. constant depth: the normalised input 2D with every depth 0 (no training).

Each trained arm is reported at its label-free pick (lowest ``val/cycle_2d``, the validation split's 2D cycle
error; for the student lowest ``val/distillation_mse``, its distance to the teachers on the same 2D; no labels),
and at its last checkpoint too. Columns: P2 (the headline: Procrustes with scale, no
reflection), P2 with reflection, P3, MPJPE at the ground-truth scale (an oracle), in mm, action-wise.

Then two checks:

- **Label-free selection**: over every validation of every trained run, the Spearman rank correlation between
  the run's criterion and ``val/p2_mm`` (labeled validation data, never the test subjects), and the validation
  P2 of the validation the criterion picks against the best one and the last.
- **The depth sign** (``--diagnose SETS``, default the real-motion set): teachers trained as published (random
  views turned about the camera's y axis, no label-free part-sign calibration) against the default (views turned
  about the world's vertical, ``camera_pitch_degrees``, and the calibration); the share of test frames whose torso
  and legs depths have opposite signs (``components.adversarial.reflected_parts``).

Usage: python benchmarks/adversarial_study.py [--seeds 3] [--datasets synthetic mocap] [--epochs-synthetic 3]
       [--epochs-mocap 4] [--synthetic-downsample 8] [--width 64] [--blocks 1] [--diagnose mocap]
       [--recipe published|short] [--validations-per-epoch 4]
       [--markdown docs/benchmarks.md] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from functools import cache
from pathlib import Path

import torch
from harness import Comparison, add_study_arguments, report, run_comparison, seed_overrides, seeds_of
from runs import CONFIGS, dataset_overrides, mean_pose_baseline, table_rows, test_baseline
from scipy.stats import spearmanr
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import Tensor, nn

import cli
from components.adversarial import normalize_2d, reflected_parts
from lightning_modules.base import LiftingModule

UNCALIBRATED = "teachers, views about the camera's y axis, no sign calibration"
COLUMNS = ("P2", "P2 with reflection", "P3", "MPJPE GT scale")
RECIPES = {
    "published": {},
    # For budgets of about a thousand batches instead of the published 800 epochs: a 5x learning rate and the
    # cycle and consistency weights divided by 20 (the adversarial term 20x stronger relative to them; Adam
    # makes only the ratio matter). Chosen on the real-motion set's validation split (solo, width 128, 1000
    # batches, one seed): validation P2 106.9 mm with the published recipe, 86.5 with this one.
    "short": {"lr": "1e-3", "cycle_weight": "0.5", "consistency_weight": "0.15"},
}


def recipe_overrides(recipe: str, keys: tuple[str, ...] | None = None) -> list[str]:
    """Options setting the model arguments of ``RECIPES[recipe]`` (only ``keys`` when given)."""
    chosen = {k: v for k, v in RECIPES[recipe].items() if keys is None or k in keys}
    return [option for k, v in chosen.items() for option in (f"--model.init_args.{k}", v)]


class ConstantDepth(nn.Module):
    """A 'lifter' that returns the root-centred, max-abs normalised 2D with every depth 0: ``(B, T, J, 3)``."""

    receptive_field, causal = 1, False

    def __init__(self, root: int) -> None:
        super().__init__()
        self.root = root

    def forward(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor:
        flat, _ = normalize_2d(keypoints_2d[..., :2], self.root)
        return torch.cat([flat, torch.zeros_like(flat[..., :1])], dim=-1)


def network_size(networks: tuple[str, ...], options: argparse.Namespace) -> list[str]:
    """Options giving ``networks`` the study's width and residual blocks."""
    sizes = (("width", options.width), ("blocks", options.blocks))
    return [v for net in networks for arg, n in sizes for v in (f"--model.init_args.{net}.init_args.{arg}", str(n))]


def fit_stage(
    experiment: str, out: Path, name: str, epochs: int, *overrides: str, validations_per_epoch: int = 4
) -> cli.PoseliftCLI:
    """``poselift fit`` of an adversarial stage, validating ``validations_per_epoch`` times an epoch (each
    validation gives the label-free criterion a checkpoint to choose from)."""
    return cli.lightning_main(
        ["fit", "-c", str(CONFIGS / "experiments" / experiment), "--trainer.max_epochs", str(epochs),
         "--trainer.val_check_interval", str(1 / validations_per_epoch),
         "--trainer.logger.init_args.save_dir", str(out), "--trainer.logger.init_args.name", name, *overrides]
    )  # fmt: skip


def validation_curve(run: cli.PoseliftCLI) -> tuple[list[float], list[float]]:
    """The run's label-free criterion (what its checkpoint callback monitors: ``val/cycle_2d``, the student's
    ``val/distillation_mse``) and ``val/p2_mm`` of every validation, read back from its TensorBoard events."""
    events = EventAccumulator(run.trainer.logger.log_dir)
    events.Reload()
    cycle = {e.step: e.value for e in events.Scalars(run.trainer.checkpoint_callback.monitor)}
    p2 = {e.step: e.value for e in events.Scalars("val/p2_mm")}
    steps = sorted(cycle.keys() & p2.keys())
    return [cycle[s] for s in steps], [p2[s] for s in steps]


def sign_disagreement(module: LiftingModule, data, parts) -> float:
    """Percent of test frames whose parts' depths have opposite signs (one reflected, the other not)."""
    disagree = total = 0
    with torch.no_grad():
        for sequence in data.sequences["test"]:
            pred = module.eval().lift(torch.from_numpy(sequence.keypoints_2d)[None])[0]
            reflected = reflected_parts(pred, torch.from_numpy(sequence.poses_3d).to(pred), parts)
            torso, legs = reflected["torso"], reflected["legs"]
            disagree, total = disagree + int((torso != legs).sum()), total + len(torso)
    return 100.0 * disagree / total


def study(dataset: str, options: argparse.Namespace, out: Path) -> list[Comparison]:
    epochs = options.epochs_synthetic if dataset == "synthetic" else options.epochs_mocap
    data = dataset_overrides(dataset)
    if dataset == "synthetic":
        data += ["--data.init_args.downsample", str(options.synthetic_downsample)]
    size = network_size(("lifter",), options)
    curves: list[tuple[list[float], list[float]]] = []

    recipe = recipe_overrides(options.recipe)

    def stage(experiment: str, name: str, seed: int, *extra: str) -> cli.PoseliftCLI:
        run = fit_stage(experiment, out / dataset, f"{name}_seed{seed}", epochs, *data, *seed_overrides(seed), *size,
                        *extra, validations_per_epoch=options.validations_per_epoch)  # fmt: skip
        curves.append(validation_curve(run))
        return run

    @cache
    def trained(seed: int) -> dict[str, dict[str, float]]:
        discriminator = network_size(("discriminator",), options)
        teachers = stage("synthetic_adversarial_teachers.yaml", "teachers", seed, *discriminator, *recipe)
        student = stage(
            "synthetic_adversarial_student.yaml", "student", seed,
            *network_size(("teacher",), options), *recipe_overrides(options.recipe, ("lr",)),
            "--model.init_args.teacher_checkpoint", teachers.trainer.checkpoint_callback.best_model_path,
        )  # fmt: skip
        solo = stage("synthetic_adversarial_solo.yaml", "solo", seed, *discriminator, *recipe)
        runs = {"teachers": teachers, "teachers -> student": student, "solo": solo}
        if dataset in options.diagnose:
            runs[UNCALIBRATED] = stage(
                "synthetic_adversarial_teachers.yaml", "teachers_published_views", seed, *discriminator, *recipe,
                "--model.init_args.sign_calibration", "false", "--model.init_args.camera_pitch_degrees", "0",
            )  # fmt: skip
        results = {}
        for arm, run in runs.items():
            results[arm] = table_rows(run.model.checkpoint_tables["best"])["average"]
            results[f"{arm} (last)"] = table_rows(run.model.checkpoint_tables["last"])["average"]
            if arm.startswith("teachers,") or arm == "teachers":  # the depth sign of the label-free pick
                disagreement = sign_disagreement(run.model, run.datamodule, run.model.lifter.part_indices)
                results[arm]["torso/legs sign disagreement (%)"] = disagreement
        return results

    @cache
    def baselines() -> dict[str, dict[str, float]]:
        _, datamodule = cli.instantiate_from_config(
            str(CONFIGS / "experiments/synthetic_adversarial_teachers.yaml"), data
        )
        mean = table_rows(mean_pose_baseline(datamodule, scale_free=True).last_tables["test"])["average"]
        constant = test_baseline(ConstantDepth(datamodule.input_skeleton.root), datamodule, scale_free=True)
        return {"mean pose": mean, "constant depth": table_rows(constant.last_tables["test"])["average"]}

    arms = {arm: (lambda seed, arm=arm: trained(seed)[arm]) for arm in ("teachers -> student", "solo", "teachers")}
    arms |= {arm: (lambda seed, arm=arm: baselines()[arm]) for arm in ("mean pose", "constant depth")}
    sampled = f" (every {options.synthetic_downsample}th frame)" if dataset == "synthetic" else ""
    title = (
        f"TIPS on the {dataset} set{sampled}, width {options.width}, {options.blocks} blocks, {epochs} epochs per "
        f"stage, {options.recipe} recipe, label-free pick; test, action-wise mm"
    )
    picked = run_comparison(Comparison(title, COLUMNS, "teachers -> student"), arms, seeds_of(options))
    last_arms = {f"{arm} (last)": (lambda seed, arm=arm: trained(seed)[f"{arm} (last)"]) for arm in
                 ("teachers -> student", "solo", "teachers")}  # fmt: skip
    last = run_comparison(
        Comparison(f"The same runs at their last checkpoint ({dataset} set)", COLUMNS, "teachers -> student (last)"),
        last_arms,
        seeds_of(options),
    )
    comparisons = [picked, last]
    if dataset in options.diagnose:
        sign = Comparison(
            f"The depth sign on the {dataset} set: teachers with the published views (turned about the camera's y "
            "axis) and no sign calibration, against the default (views about the world's vertical, the label-free "
            "part-sign calibration); label-free pick, test",
            ("P2", "P2 with reflection", "torso/legs sign disagreement (%)"),
            UNCALIBRATED,
        )
        arms = {arm: (lambda seed, arm=arm: trained(seed)[arm]) for arm in (UNCALIBRATED, "teachers")}
        comparisons.append(run_comparison(sign, arms, seeds_of(options)))
    return [*comparisons, selection_check(dataset, curves)]


def selection_check(dataset: str, curves: list[tuple[list[float], list[float]]]) -> Comparison:
    """Spearman correlation of the label-free criterion with validation P2, and the P2 of what it picks."""
    check = Comparison(
        f"Label-free selection on the {dataset} set: every validation of every trained run (teachers, student, solo "
        "per seed); Spearman rank correlation of the run's criterion (val/cycle_2d; the student's "
        "val/distillation_mse) with val/p2_mm, and validation P2 (mm) of the validation the criterion picks",
        ("Spearman", "P2 of the pick", "P2 of the best epoch", "P2 of the last epoch", "pick / best - 1 (%)"),
        "runs",
        repeats="runs",
    )
    rows = []
    for cycle, p2 in curves:
        pick = min(range(len(cycle)), key=cycle.__getitem__)
        rho = float(spearmanr(cycle, p2).statistic) if len(cycle) > 2 else float("nan")
        values = (rho, p2[pick], min(p2), p2[-1], 100 * (p2[pick] / min(p2) - 1))
        rows.append(dict(zip(check.metrics, values, strict=True)))
    check.results = {"runs": rows}
    check.seeds = list(range(len(rows)))
    return check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(parser)
    parser.add_argument("--epochs-synthetic", type=int, default=1)
    parser.add_argument("--epochs-mocap", type=int, default=4)
    parser.add_argument("--synthetic-downsample", type=int, default=8, help="keep every k-th synthetic frame")
    parser.add_argument("--width", type=int, default=64, help="width of every generator and the discriminator")
    parser.add_argument("--blocks", type=int, default=1, help="residual blocks of every network")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="published", help="loss weights and rate")
    parser.add_argument("--validations-per-epoch", type=int, default=4)
    parser.add_argument(
        "--diagnose", nargs="*", default=["mocap"], help="sets on which teachers without sign calibration run too"
    )
    options = parser.parse_args()
    cli.quiet_known_noise()
    out = options.out or Path(tempfile.mkdtemp(prefix="poselift_adversarial_"))
    blocks = [c.markdown() for d in options.datasets for c in study(d, options, out)]
    report(options, "adversarial", blocks)


if __name__ == "__main__":
    main()
