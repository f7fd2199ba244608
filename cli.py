"""The ``poselift`` command: LightningCLI subcommands plus tool subcommands.

Training and evaluation (LightningCLI; compose several ``-c`` files, later ones win)::

    poselift fit -c configs/experiments/quickstart.yaml
    poselift test -c RUN/config.yaml --ckpt_path RUN/checkpoints/best.ckpt
    poselift validate ...

Lifting your own 2D detections (one command; docs/inference.md)::

    poselift predict -c RUN/config.yaml -c configs/predict/detections.yaml --ckpt_path RUN/checkpoints/best.ckpt
        --data.init_args.path my_video.json --data.init_args.width 1920 --data.init_args.height 1080
        --trainer.default_root_dir out/

Tools::

    poselift synthesize --out DIR --size default [--dataset h36m|3dhp]
    poselift synthesize --from-mocap TAKES/ --out DIR [--rig RIG.json | --random-cameras] [--mapping MAP.yaml]
    poselift import-videopose3d CHECKPOINT.bin --out MODEL.ckpt
    poselift import-motionbert CHECKPOINT.bin|.pth --out MODEL.ckpt [--num-heads 8] [--output-scale 2.18]
    poselift retrieval -c RUN/config.yaml --ckpt_path RUN/checkpoints/best.ckpt [--baseline_ckpt SUPERVISED.ckpt]
    poselift export --ckpt_path RUN/checkpoints/best.ckpt --format onnx|torchscript --out PATH [--frames N]

``fit`` ends by testing its last checkpoint and its best on validation in the same process, so one command prints
both protocol tables, labelled.
Joint counts and layouts flow from the data to the model, the receptive field from the model to the data; no
number is typed twice.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lightning.pytorch.cli import LightningCLI

import lightning_modules
from components.errors import PoseliftError, RunFolderError
from components.skeleton import layout
from datamodules.base import PoseDataModule
from lightning_modules.base import LiftingModule
from lightning_modules.checkpoints import check_architecture, read_checkpoint

LIGHTNING_CHECKPOINT_NAMES = ("best", "last", "hpc", "registry")  # resolved by Lightning, not files


JOINT_SOURCES: dict[str, tuple[str, Callable[[str], object] | None]] = {
    "input_count": ("data.init_args.input_layout", lambda name: layout(name).num_joints),
    "output_count": ("data.init_args.output_layout", lambda name: layout(name).num_joints),
    "input_layout": ("data.init_args.input_layout", None),
}
"""How a source of :attr:`LiftingModule.network_joints` is read from the data settings."""


def regimes() -> list[type[LiftingModule]]:
    """Every regime of the ``lightning_modules`` package (each module imported), base first."""
    for module in pkgutil.iter_modules(lightning_modules.__path__):
        importlib.import_module(f"lightning_modules.{module.name}")
    found, pending = [], [LiftingModule]
    while pending:
        regime = pending.pop(0)
        found.append(regime)
        pending.extend(regime.__subclasses__())
    return found


def network_joint_links() -> dict[str, str]:
    """``{model parameter path: source}`` over every regime's ``network_joints`` (one source per path)."""
    links: dict[str, str] = {}
    for regime in regimes():
        for network, parameters in regime.network_joints.items():
            for parameter, source in parameters.items():
                target = f"model.init_args.{network}.init_args.{parameter}"
                if links.setdefault(target, source) != source:
                    raise TypeError(
                        f"{regime.__name__}.network_joints: {target} follows {source}, elsewhere {links[target]}"
                    )
    return links


class PoseliftCLI(LightningCLI):
    """LightningCLI with the data <-> model links and fit-then-test."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.init_args.input_layout", "model.init_args.input_layout")
        parser.link_arguments("data.init_args.output_layout", "model.init_args.output_layout")
        for target, source in network_joint_links().items():
            setting, compute = JOINT_SOURCES[source]
            parser.link_arguments(setting, target, compute_fn=compute)
        # A video's detections are cached next to the outputs, so re-lifting with another model skips detection.
        parser.link_arguments("trainer.default_root_dir", "data.init_args.detections_dir")
        parser.link_arguments("model.receptive_field", "data.init_args.receptive_field", apply_on="instantiate")
        parser.link_arguments("model.causal", "data.init_args.causal", apply_on="instantiate")

    # -- bad input fails before the trainer writes anything (run folder, config.yaml, events, checkpoints) ------
    def before_fit(self) -> None:
        self.check_inputs()
        self.model.check_fit_inputs(resuming=bool(self.config_init[self.subcommand].get("ckpt_path")))

    def before_validate(self) -> None:
        self.check_inputs()

    def before_test(self) -> None:
        self.check_inputs()

    def before_predict(self) -> None:
        self.check_inputs()

    def check_inputs(self) -> None:
        """The run folders must be writable, a checkpoint given by path must fit the model, and the data must
        load (the readers raise on bad files here; the trainer's own ``setup`` then reuses what they read)."""
        trainer = self.trainer
        folders = [logger.save_dir for logger in trainer.loggers if getattr(logger, "save_dir", None)]
        folders += [callback.dirpath for callback in trainer.checkpoint_callbacks if callback.dirpath]
        for folder in folders or [trainer.default_root_dir]:
            self.check_writable(str(folder))
        self.check_checkpoint(self.config_init[self.subcommand])
        if self.datamodule is not None:
            self.model.check_window_lengths(self.datamodule, self.subcommand)
            self.datamodule.setup(self.subcommand)
            for split in self.needed_splits():
                self.datamodule.require_split(split)

    def needed_splits(self) -> list[str]:
        """The data splits this subcommand reads (``fit`` trains, validates unless disabled, then tests)."""
        trainer, subcommand = self.trainer, self.subcommand
        splits = {"fit": ["train"], "validate": [], "test": ["test"], "predict": ["test"]}.get(subcommand, [])
        if subcommand in ("fit", "validate") and trainer.limit_val_batches:
            splits.append("val")
        if subcommand == "fit" and not trainer.fast_dev_run:
            splits.append("test")  # after_fit tests the last and the best checkpoint
        if subcommand == "fit" and "unlabeled" in self.model.training_streams:
            splits.append("unlabeled")  # a regime that trains on unlabeled 2D too
        return splits

    @staticmethod
    def check_writable(folder: str) -> None:
        """Raise naming ``folder`` unless it is, or could be created as, a writable folder; creates nothing."""
        import os

        if "://" in folder:  # remote storage: left to fsspec
            return
        path = Path(folder).absolute()
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not existing.is_dir():
            raise RunFolderError(f"run folder {folder}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise RunFolderError(f"run folder {folder}: {existing} is not writable")

    def parse_arguments(self, parser, args) -> None:
        """Parse, then read a ``--ckpt_path`` file once, through the one checkpoint reader: LightningCLI reads its
        hyper-parameters right after parsing, and a missing or damaged file must be named first."""
        super().parse_arguments(parser, args)
        self.checkpoint, self.model_options = None, {}
        subcommand = self.config.get("subcommand") or ""
        options = self.config.get(subcommand, {})
        path = options.get("ckpt_path") if hasattr(options, "get") else None
        if path and path not in LIGHTNING_CHECKPOINT_NAMES and "://" not in str(path):
            trusted = options.get("weights_only") is False  # the user's explicit opt-in for pickled objects
            self.checkpoint = read_checkpoint(path, trust_pickle=trusted, what="--ckpt_path")
            self.model_options = given_model_options(self.config, subcommand, sys.argv[1:] if args is None else args)

    def before_instantiate_classes(self) -> None:
        """Settings given on the command line win over the hyper-parameters LightningCLI copies from
        ``--ckpt_path`` (e.g. ``--model.init_args.flip_test false``); an architecture setting that then differs
        from the checkpoint's weights is refused by name before anything runs."""
        for key, value in self.model_options.items():
            self.config[key] = value

    def check_checkpoint(self, options) -> None:
        """Compare the ``--ckpt_path`` file with the model before the trainer starts (Lightning reads it again to
        restore). ``best``/``last`` and remote paths are left to Lightning."""
        if self.checkpoint is not None:
            check_architecture(self.checkpoint, self.model, f"--ckpt_path {options.get('ckpt_path')}: checkpoint")

    def after_fit(self) -> None:
        """Test the last checkpoint, then the best on validation, in the same process; both tables are printed
        and written, labelled. The module keeps them in ``checkpoint_tables["last"]`` / ``["best"]``."""
        if self.trainer.fast_dev_run or self.trainer.interrupted:
            return
        self.model.checkpoint_tables = {}
        for key, (path, label) in fit_checkpoints(self.trainer, self.datamodule).items():
            self.model.report_label = label
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=path)
            self.model.checkpoint_tables[key] = self.model.last_tables["test"]
        self.model.report_label = ""


def given_model_options(config, subcommand: str, args: Sequence[str]) -> dict[str, object]:
    """``{config key: parsed value}`` of each ``--model...`` option on the command line (``--model.init_args.x``
    or the short ``--model.x``), read from the parsed ``config`` so values keep their types."""
    given = {}
    for arg in args:
        if not str(arg).startswith("--model."):
            continue
        name = str(arg)[2:].split("=", 1)[0]
        short = name.replace("model.", "model.init_args.", 1)
        for key in (f"{subcommand}.{name}", f"{subcommand}.{short}"):
            if key in config and not name.endswith(("class_path", "init_args")):
                given[key] = config[key]
                break
    return given


def fit_checkpoints(trainer, datamodule) -> dict[str, tuple[str | None, str]]:
    """What ``fit`` tests: ``{"last": (path, label), "best": (path, label)}``.

    ``last`` is the newest file of a checkpoint callback without a monitor (``None``: the weights in memory,
    which are the last ones when tested first); ``best`` is the best file of the first monitored callback, left
    out when nothing was monitored (e.g. validation disabled). The labels say which is which, and flag a best
    checkpoint chosen on validation frames that the test split shares.
    """
    callbacks = trainer.checkpoint_callbacks
    last = next((c.last_model_path or c.best_model_path for c in callbacks if c.monitor is None), "") or None
    chosen = {"last": (last, f"last checkpoint (epoch {trainer.current_epoch - 1})")}
    best = next((c for c in callbacks if c.monitor is not None and c.best_model_path), None)
    if best is not None:
        label = (
            f"best on validation ({best.monitor} {float(best.best_model_score):.2f}, {Path(best.best_model_path).name})"
        )
        if getattr(datamodule, "val_on_test", False):
            label += ", selected on the test subjects"
        chosen["best"] = (best.best_model_path, label)
    return chosen


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
    parser = argparse.ArgumentParser(prog="poselift synthesize", description=TOOLS["synthesize"].help)
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--dataset", default="h36m", choices=["h36m", "3dhp"], help="which dataset's formats")
    parser.add_argument("--size", default="default", help="synthetic dataset size (tiny, default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator (mocap: facings, detector noise)")
    mocap = parser.add_argument_group("real motion capture in (Human3.6M formats out; docs/datasets/mocap.md)")
    mocap.add_argument("--from-mocap", metavar="PATH", help="a BVH/TRC file, a folder <subject>/<action>.bvh, or a "
                       "YAML manifest of clips (file, subject, action, start, end)")  # fmt: skip
    mocap.add_argument("--rig", help="camera rig JSON (default: each subject's Human3.6M cameras)")
    mocap.add_argument("--random-cameras", action="store_true", help="each subject its own random rig of 4 everyday "
                       "cameras (tilt, roll, height, distance, focal length, portrait or landscape)")  # fmt: skip
    mocap.add_argument("--mapping", help="joint mapping YAML (default: a built-in one that fits the file)")
    mocap.add_argument("--units", default="auto", help="length unit of the files: auto, m, cm, mm, inch, cmu")
    mocap.add_argument("--up", default="auto", help="up axis of the files: auto, +y, +z, ...")
    mocap.add_argument("--subject", default="S1", help="subject of a single file or of files directly in PATH")
    mocap.add_argument("--min-seconds", type=float, default=1.0, help="shortest piece a clip is cut into to fit")
    mocap.add_argument("--whole-clips", action="store_true", help="each clip must fit the cameras' view whole")
    options = parser.parse_args(argv)
    if options.from_mocap:
        print(synthesize_from_mocap(options).format())
        return 0
    from datamodules.synthetic import SIZES, SIZES_3DHP, synthesize_3dhp, synthesize_h36m

    write, sizes = {"h36m": (synthesize_h36m, SIZES), "3dhp": (synthesize_3dhp, SIZES_3DHP)}[options.dataset]
    if options.size not in sizes:
        parser.error(f"--size {options.size} is not a {options.dataset} size; valid: {', '.join(sizes)}")
    print(write(options.out, options.size, options.seed).format())
    return 0


def synthesize_from_mocap(options: argparse.Namespace):
    from datamodules.camera_rig import load_rig
    from datamodules.mocap.convert import MocapOptions, convert_mocap, find_entries
    from datamodules.mocap.mapping import load_mapping

    settings = MocapOptions(
        mapping=load_mapping(options.mapping) if options.mapping else None,
        units=options.units,
        up=options.up,
        rig=load_rig(options.rig) if options.rig else None,
        min_seconds=options.min_seconds,
        split=not options.whole_clips,
        seed=options.seed,
        random_cameras=options.random_cameras,
    )
    return convert_mocap(find_entries(options.from_mocap, options.subject), options.out, settings)


def import_parser(tool: str, checkpoint_help: str) -> argparse.ArgumentParser:
    """The options every checkpoint import shares: the file, ``--out``, the layouts and the trust opt-in."""
    parser = argparse.ArgumentParser(prog=f"poselift {tool}", description=TOOLS[tool].help)
    parser.add_argument("checkpoint", help=checkpoint_help)
    parser.add_argument("--out", required=True, help="poselift checkpoint to write (.ckpt)")
    parser.add_argument("--input-layout", default="h36m", help="layout of the 2D input (e.g. coco)")
    parser.add_argument("--output-layout", default="h36m", help="layout of the 3D output")
    parser.add_argument(
        "--trust-pickle", action="store_true", help="allow pickled objects (can run code): trusted files only"
    )
    return parser


def import_motionbert(argv: Sequence[str]) -> int:
    from components.networks.motionbert import HUMAN36M_METRES_PER_UNIT
    from lightning_modules.checkpoints import import_motionbert as convert

    parser = import_parser("import-motionbert", "official .bin (model_pos) or MMPose .pth (state_dict)")
    parser.add_argument("--num-heads", type=int, default=8, help="attention heads (not stored in the weights)")
    parser.add_argument(
        "--output-scale",
        type=float,
        default=HUMAN36M_METRES_PER_UNIT,
        help="metres per normalised 2.5D output unit (default: Human3.6M's cameras at 5 m)",
    )
    options = parser.parse_args(argv)
    module = convert(
        options.checkpoint,
        options.out,
        num_heads=options.num_heads,
        output_scale=options.output_scale,
        input_layout=options.input_layout,
        output_layout=options.output_layout,
        trust_pickle=options.trust_pickle,
    )
    lifter = module.lifter
    print(
        f"wrote {options.out}: DSTformer depth {lifter.depth}, dim_feat {lifter.dim_feat}, {lifter.num_heads} heads, "
        f"clips of up to {lifter.maxlen} frames, {lifter.num_joints_in} joints x {lifter.in_features} features, "
        f"output x {lifter.output_scale} m"
    )
    return 0


def import_videopose3d(argv: Sequence[str]) -> int:
    from lightning_modules.checkpoints import import_videopose3d as convert

    parser = import_parser("import-videopose3d", "VideoPose3D .bin file (model_pos and optionally model_traj)")
    parser.add_argument("--in-features", type=int, default=2, help="features per input joint (3 with scores)")
    parser.add_argument("--causal", action="store_true", help="the checkpoint is a causal model")
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
    from components.retrieval import model_methods, retrieval_report
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
    parser.add_argument(
        "--trust-pickle", action="store_true", help="allow pickled objects (can run code): trusted files only"
    )
    parser.epilog = "Other --data.* / --model.* options override the config, e.g. --data.init_args.train_subjects=[S8]"
    options, overrides = parser.parse_known_args(argv)
    model, data = instantiate_from_config(options.config, overrides)
    if options.ckpt_path:
        model.load_state_dict(read_checkpoint(options.ckpt_path, options.trust_pickle, "--ckpt_path")["state_dict"])
    baselines = {}
    if options.baseline_ckpt:
        read_checkpoint(options.baseline_ckpt, options.trust_pickle, "--baseline_ckpt")  # refuses untrusted pickles
        baselines["supervised"] = SupervisedLifting.load_from_checkpoint(
            options.baseline_ckpt, map_location="cpu", weights_only=not options.trust_pickle
        )
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


def export(argv: Sequence[str]) -> int:
    from components.export import FORMATS, export_lifter
    from lightning_modules.checkpoints import load_lifting_module

    parser = argparse.ArgumentParser(prog="poselift export", description=TOOLS["export"].help)
    parser.add_argument("--ckpt_path", required=True, help="checkpoint of any regime (e.g. RUN/checkpoints/best.ckpt)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx (onnxruntime etc.) or torchscript")
    parser.add_argument("--out", required=True, help="file to write, e.g. lifter.onnx or lifter.pt")
    parser.add_argument("--frames", type=int, help="fix the input frame axis to N frames (default: dynamic)")
    parser.add_argument(
        "--trust-pickle", action="store_true", help="allow pickled objects (can run code): trusted files only"
    )
    options = parser.parse_args(argv)
    lifter = load_lifting_module(options.ckpt_path, options.trust_pickle).lifter
    try:
        export_lifter(lifter, options.out, options.format, options.frames)
    except ImportError as error:  # the optional export dependencies
        raise PoseliftError(str(error)) from None
    rf = lifter.receptive_field
    frames = f"T>={rf}" if options.frames is None else f"T={options.frames}"
    print(
        f"wrote {options.out} ({options.format}): {type(lifter).__name__}, receptive field {rf}, causal "
        f"{bool(getattr(lifter, 'causal', False))}; 2D (batch, {frames}, {lifter.num_joints_in}, "
        f"{getattr(lifter, 'in_features', 2)}) -> 3D (batch, T-{rf - 1}, {lifter.num_joints_out}, 3)"
    )
    return 0


TOOLS = {
    "retrieval": Tool("cross-view pose retrieval of a model's embedding against 2D and 3D baselines", retrieval),
    "synthesize": Tool(
        "write a dataset in the real formats (Human3.6M npz, MPI-INF-3DHP mat): synthetic, or from real motion "
        "capture (--from-mocap BVH/TRC)",
        synthesize,
    ),
    "import-videopose3d": Tool("convert a VideoPose3D checkpoint into a poselift checkpoint", import_videopose3d),
    "import-motionbert": Tool(
        "convert a MotionBERT pose checkpoint (official or MMPose) into a poselift checkpoint", import_motionbert
    ),
    "export": Tool("export a checkpoint's lifter to ONNX or TorchScript for deployment", export),
}


class _DropAdvertisement(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


KNOWN_NOISE = (
    # raised inside Lightning on torch 2.13
    r".*isinstance\(treespec, LeafSpec\).*",
    # regimes call plain save_hyperparameters(): under the CLI the networks are stored as class_path specs (which
    # load_from_checkpoint rebuilds); built in Python they are stored as objects. Either way is intended.
    r"Attribute '\w+' is an instance of `nn.Module` and is already saved",
    # predicting: chunks are placed by their own sequence and start ids, not by the sampler's indices, and only
    # the checkpoint's weights are needed, not the callbacks that wrote it
    r"Couldn't infer the batch indices fetched from your dataloader",
    r"Be aware that when using `ckpt_path`, callbacks used to create",
)
"""Warnings of the libraries that do not apply to poselift (filtered by the command line only, not on import)."""


def quiet_known_noise() -> None:
    """Drop the :data:`KNOWN_NOISE` warnings and Lightning's advertisement line."""
    for message in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=message)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropAdvertisement())


def main(args: Sequence[str] | None = None) -> int:
    """Run a subcommand; returns the exit status.

    poselift's own errors (``components.errors.PoseliftError``: bad input, whose messages name the file, key,
    shape or value) end the command with ``poselift <subcommand>: error: <message>`` on stderr and status 2
    instead of a traceback; ``POSELIFT_DEBUG=1`` re-raises them with the traceback (docs/errors.md). Any other
    exception (a bug, running out of memory) keeps its traceback.
    """
    import os

    argv = list(sys.argv[1:] if args is None else args)
    quiet_known_noise()
    try:
        if argv and argv[0] in TOOLS:
            return TOOLS[argv[0]].run(argv[1:])
        lightning_main(None if args is None else argv)
        return 0
    except PoseliftError as error:
        if os.environ.get("POSELIFT_DEBUG", "0") not in ("", "0"):
            raise
        command = f"poselift {argv[0]}" if argv and not argv[0].startswith("-") else "poselift"
        print(f"{command}: error: {str(error) or type(error).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
