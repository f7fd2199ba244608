"""Can a discriminator tell real 2D poses from the true poses seen from the adversarial regime's random views?

The adversarial regime (TIPS) asks a 2D discriminator to accept the lifted pose seen from a random view. If the
discriminator can tell real 2D poses from the *true* 3D poses seen from those views, the adversarial term pushes
the generators away from the truth, whatever their budget. This script trains a discriminator (the regime's
:class:`ResidualDiscriminator` and loss) on real 2D of the training split against true training poses (their
depth, in the units of :func:`normalize_2d`) seen from random views, and reports its held-out ROC AUC on the
validation split: 50% means it cannot tell them apart.

Views compared, same data, seeds and budget:

- **no turn**: the true pose seen by its own camera, orthographically (what is left is the perspective of the
  real 2D, which the orthographic projection of the regime does not have);
- **about the camera's y axis**: the published TIPS views (azimuth ±160°, elevation ±10°, about the camera axes);
- **about the world's vertical**: the same angles about the vertical of a camera pitched down by
  ``--pitch`` degrees (``camera_pitch_degrees``; Human3.6M's cameras 12.7);
- **perspective**: the same views projected in perspective from each pose's true camera distance (on the optical
  axis), instead of orthographically.

Usage: python benchmarks/adversarial_views.py [--seeds 3] [--datasets synthetic mocap] [--steps 400]
       [--width 256] [--pitch 12.7] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from harness import Comparison, add_study_arguments, report, run_comparison, seeds_of
from runs import CONFIGS, dataset_overrides
from scipy.stats import mannwhitneyu
from torch import Tensor

import cli
from components.adversarial import discriminator_loss, normalize_2d, project, random_rotations, rotate
from components.networks.residual_mlp import ResidualDiscriminator

REFERENCE = "about the camera's y axis"
VIEWS = {  # azimuth, elevation, about the world's vertical, perspective
    "no turn": (0.0, 0.0, False, False),
    REFERENCE: (160.0, 10.0, False, False),
    "about the world's vertical": (160.0, 10.0, True, False),
    "no turn, perspective": (0.0, 0.0, False, True),
    "about the world's vertical, perspective": (160.0, 10.0, True, True),
}


def split_frames(datamodule, split: str) -> tuple[Tensor, Tensor, Tensor]:
    """Normalised real 2D ``(N, J, 2)``, the true root-relative poses in the same units ``(N, J, 3)`` and each
    pose's camera distance in those units ``(N, 1, 1)``.

    The true pose is divided by the largest absolute x or y of its own root-relative coordinates: the scale that
    :func:`normalize_2d` gives an orthographic view of it, so depths share the 2D's unit as in the regime.
    """
    root = datamodule.input_skeleton.root
    sequences = datamodule.sequences[split]
    keypoints = torch.from_numpy(np.concatenate([s.keypoints_2d[..., :2] for s in sequences])).float()
    poses = torch.from_numpy(np.concatenate([s.poses_3d for s in sequences])).float()
    poses = poses - poses[:, root : root + 1]
    _, scale = normalize_2d(poses[..., :2], root)  # the scale of the pose's own orthographic view
    distance = torch.from_numpy(np.concatenate([s.trajectory[..., 2:] for s in sequences])).float() / scale
    return normalize_2d(keypoints, root)[0], poses / scale, distance


def seen_from(
    poses: Tensor, distance: Tensor, views: tuple, pitch: float, generator: torch.Generator, root: int
) -> Tensor:
    """``(N, J, 2)``: ``poses`` turned by random views and projected, orthographically as the regime's fakes or
    in perspective from their true camera ``distance`` ``(N, 1, 1)`` (on the optical axis), then normalised as
    the real 2D are (root-relative, max-abs 1)."""
    azimuth, elevation, about_vertical, perspective = views
    rotation = random_rotations(
        len(poses), azimuth, elevation, generator=generator, camera_pitch_degrees=pitch if about_vertical else 0.0
    )
    turned = rotate(poses, rotation)
    seen = project(turned, "perspective", distance) if perspective else project(turned)
    return normalize_2d(seen, root)[0]  # scaled as the real 2D are: only the pose's shape tells them apart


def held_out_auc(options: argparse.Namespace, data, views: tuple[float, float, bool], seed: int) -> dict[str, float]:
    """Train a discriminator on training frames for ``options.steps`` batches; its ROC AUC (%) on validation."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    root, (real, poses, distance), (val_real, val_poses, val_distance) = data
    discriminator = ResidualDiscriminator(real.shape[1], width=options.width, blocks=1)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4)
    for _ in range(options.steps):
        real_batch = real[torch.randint(len(real), (options.batch,), generator=generator)]
        drawn = torch.randint(len(poses), (options.batch,), generator=generator)
        fake_batch = seen_from(poses[drawn], distance[drawn], views, options.pitch, generator, root)
        loss = discriminator_loss(discriminator(real_batch), discriminator(fake_batch), generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    discriminator.eval()
    with torch.no_grad():
        scores_real = discriminator(val_real)
        views_of_val = seen_from(
            val_poses, val_distance, views, options.pitch, torch.Generator().manual_seed(seed), root
        )
        scores_fake = discriminator(views_of_val)
    u = mannwhitneyu(scores_real.numpy(), scores_fake.numpy()).statistic
    return {"AUC (%)": 100.0 * u / (len(scores_real) * len(scores_fake))}


def study(dataset: str, options: argparse.Namespace) -> Comparison:
    _, datamodule = cli.instantiate_from_config(
        str(CONFIGS / "experiments/synthetic_adversarial_teachers.yaml"), dataset_overrides(dataset)
    )
    datamodule.setup("fit")
    data = (datamodule.input_skeleton.root, split_frames(datamodule, "train"), split_frames(datamodule, "val"))
    arms = {name: (lambda seed, v=v: held_out_auc(options, data, v, seed)) for name, v in VIEWS.items()}
    title = (
        f"A discriminator against true poses seen from random views, {dataset} set: held-out ROC AUC on the "
        f"validation split (50% = cannot tell them from real 2D), width {options.width}, {options.steps} batches "
        f"of {options.batch}, pitch {options.pitch}°"
    )
    return run_comparison(Comparison(title, ("AUC (%)",), REFERENCE), arms, seeds_of(options))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(parser)
    parser.add_argument("--steps", type=int, default=400, help="discriminator batches")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--pitch", type=float, default=12.7, help="the cameras' downward pitch, degrees")
    options = parser.parse_args()
    cli.quiet_known_noise()
    report(options, "adversarial_views", [study(d, options).markdown() for d in options.datasets])


if __name__ == "__main__":
    main()
