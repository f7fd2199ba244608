"""Check that the 3DHP PCK / AUC metrics give their single-process values under 2-process gloo DDP.

Two processes (spawn, gloo, file rendezvous) get uneven shards of one deterministic data set with groups,
update in uneven batches, and compare ``compute()`` and ``group_means()`` with the values of one process that
saw everything. The states are integer counts in float64, so the values must be equal. Prints one line per
metric and rank, then ``DDP PCK OK``; exits non-zero on any difference or error.
Run: ``OMP_NUM_THREADS=1 python tests/scripts/ddp_pck.py``; ``tests/components/test_pck.py`` calls it in a
subprocess because DDP must not start inside the pytest process.
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

from components.pck import Auc3D, GroupedCorrectJoints, Pck3D
from components.skeleton import MPI_INF_3DHP_17

WORLD_SIZE = 2
NUM_SEQUENCES, FRAMES = 19, 5
NUM_GROUPS = 7  # the data use groups 0-5 only, so group 6 checks an empty group
SHARDS = ((0, 6), (6, NUM_SEQUENCES))
BATCH_SIZES = ((4, 2), (3, 9, 1))

Results = dict[str, tuple[float, list[float]]]


def make_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``pred`` and ``target`` ``(sequences, frames, 17, 3)`` metres with errors around 0-0.2 m; ``group``."""
    gen = torch.Generator().manual_seed(7)
    shape = (NUM_SEQUENCES, FRAMES, MPI_INF_3DHP_17.num_joints, 3)
    target = 0.3 * torch.randn(shape, generator=gen, dtype=torch.float64)
    pred = target + 0.07 * torch.randn(shape, generator=gen, dtype=torch.float64)
    group = torch.randint(0, NUM_GROUPS - 1, (NUM_SEQUENCES,), generator=gen)
    return pred, target, group


def make_metrics(**kwargs) -> dict[str, GroupedCorrectJoints]:
    common = {"num_groups": NUM_GROUPS, **kwargs}
    return {
        "PCK": Pck3D(**common),
        "PCK groups": Pck3D(reduction="groups", **common),
        "PCK 100mm all": Pck3D(0.1, joints=MPI_INF_3DHP_17.joint_names, **common),
        "AUC": Auc3D(**common),
        "AUC groups": Auc3D(reduction="groups", **common),
    }


def evaluate(metrics: dict[str, GroupedCorrectJoints], data, batch_sizes) -> Results:
    """Update every metric batch by batch, then ``compute()`` and ``group_means()`` (collective under DDP)."""
    pred, target, group = data
    for index in torch.split(torch.arange(len(pred)), list(batch_sizes)):
        for metric in metrics.values():
            metric.update(pred[index], target[index], group[index])
    return {name: (metric.compute().item(), metric.group_means().tolist()) for name, metric in metrics.items()}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def compare(rank: int, got: Results, expected: Results) -> list[str]:
    failures = []
    for name, (value, means) in got.items():
        ref_value, ref_means = expected[name]
        ok = _same(value, ref_value) and all(_same(a, b) for a, b in zip(means, ref_means, strict=True))
        print(f"rank {rank} {name:14s} ddp={value:.15f} single={ref_value:.15f} {'ok' if ok else 'DIFFERS'}")
        if not ok:
            failures.append(f"{name}: ddp {value} {means} vs single {ref_value} {ref_means}")
    return failures


def worker(rank: int, rendezvous: str, expected: Results) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=rendezvous, rank=rank, world_size=WORLD_SIZE, timeout=timedelta(seconds=60)
    )
    try:
        start, stop = SHARDS[rank]
        shard = tuple(x[start:stop] for x in make_data())
        failures = compare(rank, evaluate(make_metrics(), shard, BATCH_SIZES[rank]), expected)
        # Sanity: a shard alone must give other values, else the comparison above proves nothing.
        local = evaluate(make_metrics(sync_on_compute=False), shard, BATCH_SIZES[rank])
        if _same(local["AUC"][0], expected["AUC"][0]):
            failures.append("the shard alone already gives the full-data AUC")
        dist.barrier()
    finally:
        dist.destroy_process_group()
    if failures:
        raise RuntimeError(f"rank {rank}: " + "; ".join(failures))


def main() -> int:
    torch.set_num_threads(1)
    assert all(sum(sizes) == stop - start for sizes, (start, stop) in zip(BATCH_SIZES, SHARDS, strict=True))
    expected = evaluate(make_metrics(), make_data(), (NUM_SEQUENCES,))
    with tempfile.TemporaryDirectory() as folder:
        rendezvous = f"file://{Path(folder) / 'rendezvous'}"
        try:
            mp.start_processes(worker, args=(rendezvous, expected), nprocs=WORLD_SIZE, start_method="spawn")
        except (mp.ProcessRaisedException, mp.ProcessExitedException) as error:
            print(f"DDP PCK FAILED: {error}", flush=True)
            return 1
    print("DDP PCK OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
