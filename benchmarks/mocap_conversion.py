"""Speed of ``poselift synthesize --from-mocap`` on one hour of 120 fps BVH, on one core.

The input is real motion: LAFAN1 take A of the real-motion set (:mod:`real_motion`), its channels interpolated
from 30 to 120 fps (angles unwrapped first) and repeated to one hour (~432,000 frames; each repetition starts
where the last one ended), written as one BVH. The
timed command is the whole conversion: parsing, forward kinematics, resampling to 50 fps, placement in view of
the Human3.6M cameras, projection, detector noise and writing the files. Target: under 60 s.

Usage: python benchmarks/mocap_conversion.py [--minutes 60] [--fps 120] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from real_motion import fetch_takes

from datamodules.human36m import default_cache_dir
from datamodules.mocap.bvh import ROTATIONS, format_bvh, read_bvh
from datamodules.mocap.convert import convert_mocap, find_entries


def long_take(minutes: float, fps: float, out: Path) -> int:
    """Write the one-hour BVH; returns its frame count."""
    take = read_bvh(fetch_takes(default_cache_dir() / "downloads" / "bvhtools")["LafanA"])
    skeleton, motion = take.skeleton, take.motion.copy()
    rotations = [i for j, names in enumerate(skeleton.channels) for k, name in enumerate(names)
                 if name in ROTATIONS for i in [skeleton.first_channel[j] + k]]  # fmt: skip
    motion[:, rotations] = np.rad2deg(np.unwrap(np.deg2rad(motion[:, rotations]), axis=0))
    times = np.arange(int((len(motion) - 1) * take.frame_time * fps)) / fps / take.frame_time
    lower = np.minimum(times.astype(np.int64), len(motion) - 2)
    weight = (times - lower)[:, None]
    dense = motion[lower] * (1 - weight) + motion[lower + 1] * weight
    frames = int(minutes * 60 * fps)
    repeated = dense[np.arange(frames) % len(dense)]
    # each repetition goes on from where the last one ended (no teleport of the root at the seams)
    positions = [skeleton.first_channel[0] + k for k, name in enumerate(skeleton.channels[0]) if "position" in name]
    repeated[:, positions] += (np.arange(frames) // len(dense))[:, None] * (dense[-1, positions] - dense[0, positions])
    out.write_text(format_bvh(skeleton, 1 / fps, repeated))
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=120.0)
    parser.add_argument("--work", type=Path, help="folder for the BVH and the output (default: a temporary one)")
    options = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    work = options.work or Path(tempfile.mkdtemp(prefix="poselift_mocap_"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / "hour.bvh"
    frames = long_take(options.minutes, options.fps, source)
    size = source.stat().st_size / 2**20
    print(f"input: {source} ({frames} frames at {options.fps:g} fps, {size:.0f} MiB)")
    start = time.perf_counter()
    summary = convert_mocap(find_entries(source), work / "out")
    elapsed = time.perf_counter() - start
    print(summary.format())
    verdict = "PASS" if elapsed < 60 else "FAIL"
    print(f"\nconverted {frames} frames ({options.minutes:g} min at {options.fps:g} fps) in {elapsed:.1f} s on one "
          f"core ({frames / elapsed:,.0f} input frames/s); target < 60 s: {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
