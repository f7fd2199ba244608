"""Check that the grouped metrics give their single-process values under 2-process gloo DDP.

Two processes (spawn, gloo, file rendezvous) get uneven shards of one deterministic data set with groups,
update in uneven batches, and compare ``compute()`` and ``group_means()`` with the values of one process
that saw everything: the pose errors (MPJPE, P-MPJPE, N-MPJPE, MPJVE) within 1e-9, and the 3DHP PCK / AUC
exactly (their states are integer counts in float64). Prints one line per metric and rank, then
``DDP METRICS OK``; exits non-zero on any difference or error.
Run: ``OMP_NUM_THREADS=1 python tests/scripts/ddp_metrics.py``.

It runs as its own program because DDP must not start inside the pytest process
(reference/lightning_stack.md 4(b)); ``tests/components/test_metrics.py`` calls it in a subprocess.
"""

from __future__ import annotations

import math
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torchmetrics import Metric

from components.metrics import MPJPE, MPJVE, NMPJPE, PMPJPE
from components.pck import Auc3D, Pck3D
from components.skeleton import MPI_INF_3DHP_17

WORLD_SIZE = 2
NUM_SEQUENCES, FRAMES, JOINTS = 23, 6, MPI_INF_3DHP_17.num_joints
NUM_GROUPS = 5  # the data use groups 0-3 only, so group 4 checks the handling of an empty group
TOLERANCE = 1e-9  # pose errors; PCK / AUC must match exactly
EXACT = ("PCK", "AUC")
# Uneven on purpose: 7 and 16 sequences, each shard updated in uneven batches.
SHARDS = ((0, 7), (7, NUM_SEQUENCES))
BATCH_SIZES = ((3, 4), (5, 1, 10))

Results = dict[str, tuple[float, list[float]]]


def make_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fixed ``pred`` and ``target`` ``(sequences, frames, joints, 3)`` in metres, ``group (sequences,)``."""
    gen = torch.Generator().manual_seed(1234)
    shape = (NUM_SEQUENCES, FRAMES, JOINTS, 3)
    target = 0.3 * torch.randn(shape, generator=gen, dtype=torch.float64)
    pred = 1.1 * target + 0.07 * torch.randn(shape, generator=gen, dtype=torch.float64)
    group = torch.randint(0, NUM_GROUPS - 1, (NUM_SEQUENCES,), generator=gen)
    return pred, target, group


def make_metrics(**kwargs) -> dict[str, Metric]:
    common = {"num_groups": NUM_GROUPS, **kwargs}
    return {
        "MPJPE": MPJPE(**common),
        "MPJPE frames": MPJPE(reduction="frames", **common),
        "PMPJPE": PMPJPE(**common),
        "PMPJPE reflection": PMPJPE(allow_reflection=True, **common),
        "NMPJPE": NMPJPE(**common),
        "MPJVE": MPJVE(**common),
        "PCK": Pck3D(**common),
        "PCK groups": Pck3D(reduction="groups", **common),
        "PCK 100mm all": Pck3D(0.1, joints=MPI_INF_3DHP_17.joint_names, **common),
        "AUC": Auc3D(**common),
        "AUC groups": Auc3D(reduction="groups", **common),
    }


def evaluate(metrics: dict[str, Metric], data, batch_sizes) -> Results:
    """Update every metric batch by batch, then ``compute()`` and ``group_means()`` (collective under DDP)."""
    pred, target, group = data
    for index in torch.split(torch.arange(len(pred)), list(batch_sizes)):
        for metric in metrics.values():
            metric.update(pred[index], target[index], group[index])
    return {name: (metric.compute().item(), metric.group_means().tolist()) for name, metric in metrics.items()}


def _same(a: float, b: float, exact: bool = False) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b or (not exact and abs(a - b) < TOLERANCE)


def compare(rank: int, got: Results, expected: Results) -> list[str]:
    """Print one line per metric; return the names whose values differ."""
    failures = []
    for name, (value, means) in got.items():
        ref_value, ref_means = expected[name]
        exact = name.startswith(EXACT)
        ok = _same(value, ref_value, exact) and all(_same(a, b, exact) for a, b in zip(means, ref_means, strict=True))
        print(
            f"rank {rank} {name:18s} ddp={value:.15f} single={ref_value:.15f} {'ok' if ok else 'DIFFERS'}",
            flush=True,
        )
        if not ok:
            failures.append(f"{name}: ddp {value} {means} vs single {ref_value} {ref_means}")
    return failures


def worker(rank: int, rendezvous: str, expected: Results) -> None:
    torch.set_num_threads(1)
    # A short timeout turns a rank stuck in a collective into an error instead of a hang.
    dist.init_process_group(
        "gloo",
        init_method=rendezvous,
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=timedelta(seconds=60),
    )
    try:
        start, stop = SHARDS[rank]
        shard = tuple(x[start:stop] for x in make_data())
        failures = compare(rank, evaluate(make_metrics(), shard, BATCH_SIZES[rank]), expected)
        # Sanity: a shard alone must give other values, else the comparison above proves nothing.
        local = evaluate(make_metrics(sync_on_compute=False), shard, BATCH_SIZES[rank])
        for name in ("MPJPE", "AUC"):
            if _same(local[name][0], expected[name][0]):
                failures.append(f"the shard alone already gives the full-data {name}")
        dist.barrier()
    finally:
        dist.destroy_process_group()
    if failures:
        raise RuntimeError(f"rank {rank}: " + "; ".join(failures))


def main() -> int:
    torch.set_num_threads(1)
    assert sum(stop - start for start, stop in SHARDS) == NUM_SEQUENCES
    assert all(sum(sizes) == stop - start for sizes, (start, stop) in zip(BATCH_SIZES, SHARDS, strict=True))
    expected = evaluate(make_metrics(), make_data(), (NUM_SEQUENCES,))
    # A file rendezvous cannot race with other processes for a TCP port, as a "free" port can.
    with tempfile.TemporaryDirectory() as folder:
        rendezvous = f"file://{Path(folder) / 'rendezvous'}"
        try:
            mp.start_processes(worker, args=(rendezvous, expected), nprocs=WORLD_SIZE, start_method="spawn")
        except (mp.ProcessRaisedException, mp.ProcessExitedException) as error:
            print(f"DDP METRICS FAILED: {error}", flush=True)
            return 1
    print("DDP METRICS OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
