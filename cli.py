"""The ``poselift`` command: LightningCLI subcommands plus tool subcommands.

Training and evaluation (LightningCLI; compose several ``-c`` files, later ones win)::

    poselift fit -c configs/experiments/quickstart.yaml
    poselift test -c RUN/config.yaml --ckpt_path RUN/checkpoints/best.ckpt
    poselift validate / predict ...

Tools::

    poselift synthesize --out DIR --size default [--dataset h36m|3dhp]
    poselift import-videopose3d CHECKPOINT.bin --out MODEL.ckpt
    poselift retrieval -c RUN/config.yaml --ckpt_path RUN/checkpoints/best.ckpt [--baseline_ckpt SUPERVISED.ckpt]

``fit`` ends by testing its best checkpoint in the same process, so one command prints the protocol table.
Joint counts and layouts flow from the data to the model, the receptive field from the model to the data; no
number is typed twice.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lightning.pytorch.cli import LightningCLI

from components.skeleton import layout
from datamodules.base import PoseDataModule
from lightning_modules.base import LiftingModule


def joint_count(layout_name: str) -> int:
    return layout(layout_name).num_joints


class PoseliftCLI(LightningCLI):
    """LightningCLI with the data <-> model links and fit-then-test."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.init_args.input_layout", "model.init_args.input_layout")
        parser.link_arguments("data.init_args.output_layout", "model.init_args.output_layout")
        parser.link_arguments(
            "data.init_args.input_layout", "model.init_args.lifter.init_args.num_joints_in", compute_fn=joint_count
        )
        parser.link_arguments(
            "data.init_args.output_layout", "model.init_args.lifter.init_args.num_joints_out", compute_fn=joint_count
        )
        parser.link_arguments(
            "data.init_args.input_layout",
            "model.init_args.trajectory_model.init_args.num_joints_in",
            compute_fn=joint_count,
        )
        # adversarial regime: the discriminator judges input-layout 2D poses; part lifters take a layout by name
        parser.link_arguments(
            "data.init_args.input_layout", "model.init_args.discriminator.init_args.num_joints", compute_fn=joint_count
        )
        for network in ("lifter", "teacher"):
            parser.link_arguments("data.init_args.input_layout", f"model.init_args.{network}.init_args.layout")
        parser.link_arguments("model.receptive_field", "data.init_args.receptive_field", apply_on="instantiate")
        parser.link_arguments("model.causal", "data.init_args.causal", apply_on="instantiate")
        parser.link_arguments("model.multiview_batches", "data.init_args.multiview", apply_on="instantiate")

    def after_fit(self) -> None:
        """Test the best checkpoint (or the final weights when none was kept) in the same process."""
        if self.trainer.fast_dev_run or self.trainer.interrupted:
            return
        callback = self.trainer.checkpoint_callback
        best = callback.best_model_path if callback is not None else ""
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)


def lightning_main(args: Sequence[str] | None = None) -> PoseliftCLI:
    return PoseliftCLI(
        LiftingModule,
        PoseDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"default_env": True},
        args=args,
    )


@dataclass(frozen=True)
class Tool:
    help: str
    run: Callable[[Sequence[str]], int]


def synthesize(argv: Sequence[str]) -> int:
    from datamodules.synthetic import SIZES, SIZES_3DHP, synthesize_3dhp, synthesize_h36m

    writers = {"h36m": (synthesize_h36m, SIZES), "3dhp": (synthesize_3dhp, SIZES_3DHP)}
    parser = argparse.ArgumentParser(prog="poselift synthesize", description=TOOLS["synthesize"].help)
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--dataset", default="h36m", choices=list(writers), help="which dataset's formats")
    parser.add_argument("--size", default="default", choices=sorted({*SIZES, *SIZES_3DHP}), help="dataset size")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator")
    options = parser.parse_args(argv)
    write, sizes = writers[options.dataset]
    if options.size not in sizes:
        parser.error(f"--size {options.size} is not a {options.dataset} size; valid: {', '.join(sizes)}")
    print(write(options.out, options.size, options.seed).format())
    return 0


def import_videopose3d(argv: Sequence[str]) -> int:
    from lightning_modules.checkpoints import import_videopose3d as convert

    parser = argparse.ArgumentParser(prog="poselift import-videopose3d", description=TOOLS["import-videopose3d"].help)
    parser.add_argument("checkpoint", help="VideoPose3D .bin file (model_pos and optionally model_traj)")
    parser.add_argument("--out", required=True, help="poselift checkpoint to write (.ckpt)")
    parser.add_argument("--in-features", type=int, default=2, help="features per input joint (3 with scores)")
    parser.add_argument("--causal", action="store_true", help="the checkpoint is a causal model")
    parser.add_argument("--input-layout", default="h36m", help="layout of the 2D input (e.g. coco)")
    parser.add_argument("--output-layout", default="h36m", help="layout of the 3D output")
    parser.add_argument(
        "--trust-pickle", action="store_true", help="allow pickled objects (can run code): trusted files only"
    )
    options = parser.parse_args(argv)
    module = convert(
        options.checkpoint,
        options.out,
        in_features=options.in_features,
        causal=options.causal,
        input_layout=options.input_layout,
        output_layout=options.output_layout,
        trust_pickle=options.trust_pickle,
    )
    lifter = module.lifter
    print(
        f"wrote {options.out}: receptive field {lifter.receptive_field}, {lifter.channels} channels, "
        f"{lifter.num_joints_in} -> {lifter.num_joints_out} joints, trajectory model: "
        f"{'yes' if module.trajectory_model is not None else 'no'}"
    )
    return 0


def instantiate_from_config(config: str, overrides: Sequence[str] = ()) -> tuple[LiftingModule, PoseDataModule]:
    """The model and datamodule of a config file (an experiment, or a run's saved ``config.yaml``), with
    LightningCLI-style ``overrides`` such as ``--data.init_args.train_subjects=[S8]``."""
    import yaml

    settings = yaml.safe_load(Path(config).read_text())
    subcommand_only = {"ckpt_path", "weights_only"}  # saved in a run's config.yaml; not options of the classes
    if isinstance(settings, dict) and subcommand_only & set(settings):
        config = yaml.safe_dump({key: value for key, value in settings.items() if key not in subcommand_only})
    run = PoseliftCLI(
        LiftingModule, PoseDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False,
        args=["-c", config, "--trainer.logger", "false", *overrides],
    )  # fmt: skip
    return run.model, run.datamodule


def retrieval(argv: Sequence[str]) -> int:
    import torch

    from lightning_modules.retrieval import model_methods, retrieval_report
    from lightning_modules.supervised import SupervisedLifting

    parser = argparse.ArgumentParser(prog="poselift retrieval", description=TOOLS["retrieval"].help)
    parser.add_argument("-c", "--config", required=True, help="the run's config (model and data), e.g. RUN/config.yaml")
    parser.add_argument("--ckpt_path", help="weights of the model (default: the config's fresh weights)")
    parser.add_argument("--baseline_ckpt", help="a supervised lifter whose 3D output is a further baseline row")
    parser.add_argument("--split", default="test", help="the datamodule split whose synchronized views are used")
    parser.add_argument("--query_camera", type=int, default=0, help="view index of the queries in each recording")
    parser.add_argument("--stride", type=int, default=10, help="keep every k-th frame")
    parser.add_argument("--threshold", type=float, default=0.1, help="NP-MPJPE at most this is a hit")
    parser.add_argument("--out", help="folder for the CSV/JSON table (default: next to --ckpt_path)")
    parser.epilog = "Other --data.* / --model.* options override the config, e.g. --data.init_args.train_subjects=[S8]"
    options, overrides = parser.parse_known_args(argv)
    model, data = instantiate_from_config(options.config, overrides)
    if options.ckpt_path:
        model.load_state_dict(torch.load(options.ckpt_path, map_location="cpu", weights_only=False)["state_dict"])
    baselines = {}
    if options.baseline_ckpt:
        baselines["supervised"] = SupervisedLifting.load_from_checkpoint(options.baseline_ckpt, map_location="cpu")
    data.setup("test")
    table = retrieval_report(
        data.synchronized_views(options.split),
        model_methods(model.eval(), baselines),
        data.output_skeleton,
        f"{options.split}_retrieval",
        options.query_camera,
        options.stride,
        options.threshold,
    )
    print(table.format())
    out = options.out or (Path(options.ckpt_path).parent if options.ckpt_path else None)
    if out is not None:
        table.write(Path(out))
    return 0


TOOLS = {
    "retrieval": Tool("cross-view pose retrieval of a model's embedding against 2D and 3D baselines", retrieval),
    "synthesize": Tool("write a synthetic dataset in the real formats (Human3.6M npz, MPI-INF-3DHP mat)", synthesize),
    "import-videopose3d": Tool("convert a VideoPose3D checkpoint into a poselift checkpoint", import_videopose3d),
}


class _DropAdvertisement(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def quiet_known_noise() -> None:
    """Drop a deprecation warning raised inside Lightning on torch 2.13 and Lightning's advertisement line."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropAdvertisement())


def main(args: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if args is None else args)
    quiet_known_noise()
    if argv and argv[0] in TOOLS:
        try:
            return TOOLS[argv[0]].run(argv[1:])
        except (OSError, KeyError, ValueError, RuntimeError) as error:
            print(f"poselift {argv[0]}: error: {error}", file=sys.stderr)
            return 2
    lightning_main(None if args is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
