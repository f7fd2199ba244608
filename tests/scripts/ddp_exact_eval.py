"""Test metrics under 2-process DDP equal the single-process ones on an odd number of evaluation chunks.

``python tests/scripts/ddp_exact_eval.py REGIME ddp OUT`` fits a small model of ``REGIME`` (``supervised``,
``seq2seq``: a DSTformer evaluated in clips of at most its ``maxlen``, or ``adversarial``) for a few steps on 2 CPU
processes (gloo), saves ``OUT/model.ckpt``, tests it on the same 2 processes and writes the test metrics (every
logged ``test/*`` value and every cell of the protocol tables) to ``OUT/ddp.json``. ``... REGIME single OUT``
tests ``OUT/model.ckpt`` in one process into ``OUT/single.json``. ``tests/lightning_modules/test_ddp_fit.py``
runs both and compares them. The chunk length is chosen so that the test split has an odd number of chunks: the
default ``DistributedSampler`` would evaluate one of them twice.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.strategies import DDPStrategy

from components.networks.dstformer import DSTformer
from components.networks.residual_mlp import PartLifter, ResidualDiscriminator
from components.networks.temporal_conv import TemporalConvLifter
from datamodules.human36m import Human36mDataModule
from datamodules.windows import EvaluationChunks
from lightning_modules.adversarial import AdversarialLifting
from lightning_modules.supervised import SupervisedLifting

REGIMES = {
    "supervised": (
        SupervisedLifting,
        lambda: SupervisedLifting(TemporalConvLifter(17, 17, filter_widths=(3, 3), channels=32)),
    ),
    "seq2seq": (
        SupervisedLifting,
        lambda: SupervisedLifting(DSTformer(in_features=2, dim_feat=16, dim_rep=16, depth=1, num_heads=4, maxlen=150)),
    ),
    "adversarial": (
        AdversarialLifting,
        lambda: AdversarialLifting(PartLifter(width=32, blocks=1), ResidualDiscriminator(17, width=32, blocks=1)),
    ),
}


def odd_data(receptive_field: int, longest: int | None = None) -> Human36mDataModule:
    """Tiny synthetic Human3.6M whose test split has an odd number of evaluation steps (three cameras: four
    would make every count even); when the lifter bounds its clips to ``longest`` frames, chunks of at most that
    many, 8 chunks of a length per step."""
    lengths = (None, *range(200, 20, -1)) if longest is None else range(longest, 20, -1)
    batch_chunks = 1 if longest is None else 8
    for chunk_length in lengths:
        options = dict(
            synthetic_size="tiny", cameras=[0, 1, 2], batch_size=128, flip_augment=False, eval_batch_size=batch_chunks
        )
        data = Human36mDataModule(**options, eval_chunk_length=chunk_length)
        data.set_timing(receptive_field, causal=False)
        data.setup("test")
        if len(EvaluationChunks(data.stores["test"], chunk_length, batch_chunks)) % 2:
            data = Human36mDataModule(**options, eval_chunk_length=chunk_length)
            data.set_timing(receptive_field, causal=False)
            return data
    raise RuntimeError("no chunk length gives an odd number of test chunks")


def metrics(module: pl.LightningModule, trainer: pl.Trainer) -> dict[str, float]:
    values = {name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("test/")}
    for table in module.last_tables["test"]:
        for label, row in table.rows:
            for column, value in zip(table.columns, row, strict=True):
                values[f"{table.name}/{label}/{column}"] = float(value)
    return values


def trainer(devices: int, **options) -> pl.Trainer:
    strategy = DDPStrategy(find_unused_parameters=True) if devices > 1 else "auto"
    return pl.Trainer(
        accelerator="cpu", devices=devices, strategy=strategy, logger=False, enable_progress_bar=False,
        enable_model_summary=False, **options,
    )  # fmt: skip


def main(regime: str, mode: str, out: Path) -> int:
    pl.seed_everything(1234)
    module_class, build = REGIMES[regime]
    if mode == "ddp":
        module = build()
        data = odd_data(module.receptive_field, getattr(module.lifter, "max_frames", None))
        fitter = trainer(2, max_epochs=1, limit_train_batches=3, limit_val_batches=0, enable_checkpointing=False)
        fitter.fit(module, datamodule=data)
        fitter.save_checkpoint(out / "model.ckpt")
        tester = fitter
    else:
        module = module_class.load_from_checkpoint(out / "model.ckpt", map_location="cpu", weights_only=False)
        data = odd_data(module.receptive_field, getattr(module.lifter, "max_frames", None))
        tester = trainer(1)
    tester.test(module, datamodule=data)
    if tester.is_global_zero:
        chunks = len(EvaluationChunks(data.stores["test"], data.eval_chunk_length, data.eval_batch_size))
        record = {"world_size": tester.world_size, "chunks": chunks, "metrics": metrics(module, tester)}
        (out / f"{mode}.json").write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
