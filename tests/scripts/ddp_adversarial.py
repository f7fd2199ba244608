"""A 2-process CPU DDP fit of the adversarial regime; generator and discriminator weights must end identical.

Parameters are compared; BatchNorm running statistics are buffers that each rank computes from its own shard (they
would be synchronised by SyncBatchNorm, which needs GPUs), so they are not.

Each rank saves its weights after the fit; rank 0 compares them bit for bit and prints ``DDP ADVERSARIAL OK``
(exit code 1 otherwise). Run: ``OMP_NUM_THREADS=1 python tests/scripts/ddp_adversarial.py OUT_DIR`` with
``POSELIFT_CACHE`` set; ``tests/lightning_modules/test_ddp_fit.py`` calls it in a subprocess (Lightning's DDP
launcher re-runs this script once per extra rank).
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import DDPStrategy

from components.networks.residual_mlp import PartLifter, ResidualDiscriminator
from datamodules.human36m import Human36mDataModule
from lightning_modules.adversarial import AdversarialLifting


def main(out: Path) -> int:
    pl.seed_everything(1234)
    model = AdversarialLifting(PartLifter(width=32, blocks=1), ResidualDiscriminator(17, width=32, blocks=1))
    data = Human36mDataModule(synthetic_size="tiny", batch_size=128, flip_augment=False)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=DDPStrategy(find_unused_parameters=True),
        max_epochs=1,
        limit_train_batches=4,
        limit_val_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    initial = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer.fit(model, datamodule=data)
    if all(torch.equal(initial[k], v.detach()) for k, v in model.named_parameters()):
        print("DDP ADVERSARIAL FAILED: training changed no weight", flush=True)
        return 1
    rank = trainer.global_rank
    torch.save({k: v.detach().cpu() for k, v in model.named_parameters()}, out / f"rank{rank}.pt")
    trainer.strategy.barrier()
    if rank != 0:
        return 0
    first, second = (torch.load(out / f"rank{r}.pt") for r in (0, 1))
    differing = [key for key in first if not torch.equal(first[key], second[key])]
    if differing or first.keys() != second.keys():
        print(f"DDP ADVERSARIAL FAILED: weights differ across ranks: {differing[:5]}", flush=True)
        return 1
    print(f"DDP ADVERSARIAL OK: {len(first)} parameter tensors identical on both ranks", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
