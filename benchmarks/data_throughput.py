"""Training-window throughput of the data pipeline and the memory it takes to load a split.

Measures, on the default synthetic Human3.6M set (generated once into the cache if missing):
- peak resident memory of loading the data and building the training store;
- training windows per second through the real DataLoader path (receptive field 243, 17 joints,
  batch 1024, flip augmentation on), in this one process.

Usage: python benchmarks/data_throughput.py [--size default] [--receptive-field 243] [--batch-size 1024]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from datamodules.human36m import Human36mDataModule


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(loader, seconds: float) -> tuple[int, float]:
    """Consume batches for about ``seconds`` (after one warm-up batch); return (windows, elapsed)."""
    iterator = iter(loader)
    next(iterator)
    windows, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            continue
        windows += len(batch)
    return windows, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="default", help="synthetic dataset size")
    parser.add_argument("--receptive-field", type=int, default=243)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time")
    options = parser.parse_args()

    data = Human36mDataModule(
        synthetic_size=options.size,
        batch_size=options.batch_size,
        receptive_field=options.receptive_field,
        flip_augment=True,
    )
    data.prepare_data()
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    data.setup("fit")
    load_seconds = time.perf_counter() - start
    rss_after = peak_rss_mib()
    loader = data.train_dataloader()
    windows, elapsed = measure(loader, options.seconds)
    store = data.stores["train"]

    print(data.describe())
    print()
    print(f"torch threads              {torch.get_num_threads()}")
    print(f"train windows per epoch    {len(loader.dataset):,} (flip doubles them)")
    print(
        f"2D store                   {tuple(store.keypoints.shape)} float32, {store.keypoints.nbytes / 2**20:.0f} MiB"
    )
    print(f"load + build time          {load_seconds:.1f} s")
    print(f"peak RSS before / after    {rss_before:.0f} / {rss_after:.0f} MiB")
    print(
        f"throughput                 {windows / elapsed:,.0f} windows/s "
        f"(receptive field {options.receptive_field}, batch {options.batch_size}, flip on, {windows:,} windows)"
    )


if __name__ == "__main__":
    main()
