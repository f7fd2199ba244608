"""Load time and peak memory of a Human3.6M-sized dataset through the real reader and DataModule.

Writes a synthetic set the size of Human3.6M (about 1.5 million frames x 4 cameras) in the real VideoPose3D
npz formats: the recordings of the default synthetic set (generated once into the cache) are tiled under new
take names ("Walking", "Walking 1", ... "Walking 23") and written with the project's compressed npz writer.
Synthesising 1.5 million frames of motion would take about 10 minutes; tiling takes one.

Then a fresh process (so neither the writing nor this process's memory counts) imports torch and the
DataModule, reads its peak resident memory (VmHWM of /proc/self/status) as the baseline, runs
``Human36mDataModule(data_dir=...).setup("fit")`` and draws the first training batch, reading VmHWM again.
Raw bytes are the ``nbytes`` of the arrays in the files: 3D ``(T, 32, 3)`` float32 per recording and 2D
``(T, 17, 2)`` float32 per camera, all subjects (the reader loads whole files).

Usage: python benchmarks/data_scale.py [--frames 1500000] [--out DIR] [--keep] [--receptive-field 243]
       [--no-flip] [--threads N]

``--out DIR`` holding a set written before (``--keep``) is measured again without rewriting it.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GIB = 2**30


def status_bytes(field: str) -> int:
    """One memory figure of this process from /proc/self/status (``VmHWM``: peak resident, ``VmRSS``: now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # the kernel reports kB
    raise KeyError(field)


# -- writing the set (parent process) ------------------------------------------------------------------------
def _tile_actions(actions: dict, tiles: int) -> dict:
    """Action key -> recording, each action group's recordings repeated ``tiles`` times under new take names.

    Every repeat is a copy: pickle would otherwise store one array once and reference it, and the file would
    not hold the frames it claims.
    """
    from datamodules.synthetic import take_names

    groups: dict[str, list] = {}
    for key in sorted(actions):
        groups.setdefault(key.split(" ")[0], []).append(actions[key])
    tiled = {}
    for group, recordings in groups.items():
        names = take_names(group, tiles * len(recordings))
        for name, recording in zip(names, recordings * tiles, strict=True):
            tiled[name] = [v.copy() for v in recording] if isinstance(recording, list) else recording.copy()
    return tiled


def _load_pickled(path: Path, key: str):
    with np.load(path, allow_pickle=True) as archive:
        return archive[key].item()


def write_scaled_set(out_dir: Path, frames: int) -> tuple[int, int]:
    """Write ``data_3d_h36m.npz`` and ``data_2d_h36m_gt.npz`` of at least ``frames`` frames into ``out_dir``.

    Returns:
        (frames written, raw bytes of the arrays in both files).
    """
    from datamodules.human36m import default_cache_dir
    from datamodules.synthetic import FILE_3D, ensure_synthetic_h36m, file_2d
    from datamodules.synthetic.files import save_npz_files

    source = ensure_synthetic_h36m(default_cache_dir(), "default", 0)
    positions_3d = _load_pickled(source / FILE_3D, "positions_3d")
    positions_2d = _load_pickled(source / file_2d("gt"), "positions_2d")
    metadata = _load_pickled(source / file_2d("gt"), "metadata")
    default_frames = sum(len(a) for actions in positions_3d.values() for a in actions.values())
    tiles = math.ceil(frames / default_frames)
    positions_3d = {s: _tile_actions(actions, tiles) for s, actions in positions_3d.items()}
    positions_2d = {s: _tile_actions(actions, tiles) for s, actions in positions_2d.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    save_npz_files(
        out_dir,
        {FILE_3D: {"positions_3d": positions_3d}, file_2d("gt"): {"positions_2d": positions_2d, "metadata": metadata}},
    )
    return default_frames * tiles, raw_bytes(positions_3d, positions_2d)


def raw_bytes(positions_3d: dict, positions_2d: dict) -> int:
    """``nbytes`` of every 3D recording and every 2D view."""
    total = sum(a.nbytes for actions in positions_3d.values() for a in actions.values())
    return total + sum(v.nbytes for actions in positions_2d.values() for views in actions.values() for v in views)


def existing_set(out_dir: Path) -> tuple[int, int]:
    """(frames, raw bytes) of a set written before (``--out`` reused)."""
    from datamodules.synthetic import FILE_3D, file_2d

    positions_3d = _load_pickled(out_dir / FILE_3D, "positions_3d")
    positions_2d = _load_pickled(out_dir / file_2d("gt"), "positions_2d")
    frames = sum(len(a) for actions in positions_3d.values() for a in actions.values())
    return frames, raw_bytes(positions_3d, positions_2d)


# -- measuring (fresh child process) ---------------------------------------------------------------------------
def measure_loading(data_dir: str, receptive_field: int, flip: bool, threads: int | None) -> dict:
    """Baseline after imports, then setup("fit") and the first training batch: seconds and VmHWM bytes."""
    import torch

    from datamodules.human36m import Human36mDataModule

    if threads:
        torch.set_num_threads(threads)

    baseline = status_bytes("VmHWM")
    data = Human36mDataModule(data_dir=data_dir, receptive_field=receptive_field, flip_augment=flip)
    start = time.perf_counter()
    data.setup("fit")
    setup_seconds = time.perf_counter() - start
    after_setup = status_bytes("VmHWM")
    next(iter(data.train_dataloader()))
    first_batch_seconds = time.perf_counter() - start
    stores = {id(store): store for store in data.stores.values()}.values()  # val and test may share one
    tensors = [t for store in stores for t in vars(store).values() if isinstance(t, torch.Tensor)]
    return {
        "baseline": baseline,
        "setup_seconds": setup_seconds,
        "first_batch_seconds": first_batch_seconds,
        "peak_setup": after_setup,
        "peak": status_bytes("VmHWM"),
        "resident": status_bytes("VmRSS"),
        "store_bytes": sum(t.nbytes for t in tensors),
        "splits": {split: sum(len(s) for s in seqs) for split, seqs in data.sequences.items()},
        "threads": torch.get_num_threads(),
    }


def run_child(data_dir: Path, options: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--measure", str(data_dir), "--receptive-field", str(options.receptive_field)]
    if options.no_flip:
        command.append("--no-flip")
    if options.threads:
        command += ["--threads", str(options.threads)]
    result = subprocess.run(command, check=True, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(frames: int, raw: int, write_seconds: float, figures: dict, options: argparse.Namespace) -> str:
    net_peak = figures["peak"] - figures["baseline"]
    lines = [
        f"frames (3D mocap)          {frames:,} x 4 cameras, 7 subjects",
        f"camera frames per split    {', '.join(f'{k} {v:,}' for k, v in figures['splits'].items())}",
        f"raw arrays in the files    {raw / GIB:.2f} GiB (3D (T, 32, 3) + 2D 4 x (T, 17, 2), float32)",
        f"writing (not measured)     {write_seconds:.0f} s",
        f"options                    receptive field {options.receptive_field}, flip {not options.no_flip}, "
        f"{figures['threads']} torch threads",
        f"setup('fit')               {figures['setup_seconds']:.1f} s",
        f"first training batch       {figures['first_batch_seconds']:.1f} s after setup() began",
        f"baseline (python + torch)  {figures['baseline'] / GIB:.2f} GiB VmHWM",
        f"peak after setup / batch   {figures['peak_setup'] / GIB:.2f} / {figures['peak'] / GIB:.2f} GiB VmHWM",
        f"resident after batch       {figures['resident'] / GIB:.2f} GiB VmRSS",
        f"store tensors              {figures['store_bytes'] / GIB:.2f} GiB",
        f"peak - baseline            {net_peak / GIB:.2f} GiB = {net_peak / raw:.2f}x the raw arrays (target <= 2x)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1_500_000, help="at least this many 3D frames")
    parser.add_argument("--out", type=Path, help="folder for the set (default: a temporary one, deleted after)")
    parser.add_argument("--keep", action="store_true", help="keep the written set")
    parser.add_argument("--receptive-field", type=int, default=243)
    parser.add_argument("--no-flip", action="store_true", help="measure without flip augmentation")
    parser.add_argument("--threads", type=int, help="torch threads while loading (default: torch's choice)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child: load this folder, print JSON
    options = parser.parse_args()
    if options.measure:
        figures = measure_loading(options.measure, options.receptive_field, not options.no_flip, options.threads)
        print(json.dumps(figures))
        return

    out_dir = options.out or Path(tempfile.mkdtemp(prefix="poselift_scale_"))
    start = time.perf_counter()
    if (out_dir / "data_3d_h36m.npz").is_file():
        frames, raw = existing_set(out_dir)
    else:
        frames, raw = write_scaled_set(out_dir, options.frames)
    write_seconds = time.perf_counter() - start
    try:
        figures = run_child(out_dir, options)
    finally:
        if not options.keep:
            shutil.rmtree(out_dir, ignore_errors=True)
    print(report(frames, raw, write_seconds, figures, options))


if __name__ == "__main__":
    main()
