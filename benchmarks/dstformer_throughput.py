"""Throughput of the DSTformer sequence-to-sequence lifter against this machine's float32 matrix-multiply rate.

Measures, for two ``DSTformer`` configurations (17 joints in and out):

- published: the Human3.6M setting of MotionBERT (in_features 3, dim_feat 512, dim_rep 512, depth 5, 8 heads,
  mlp_ratio 2, maxlen 243; 42,466,317 parameters) on clips of 243 frames;
- small: ``configs/model/networks/dstformer_small.yaml`` (in_features 2, dim_feat 64, dim_rep 64, depth 2,
  4 heads, mlp_ratio 2, maxlen 81) on clips of 81 frames;

each in two cases:

- training samples/s (a sample is one clip): forward + MSE loss backward + AdamW step, train mode, dropout 0;
- inference frames/s: a batch of clips, eval mode, ``torch.inference_mode``;

and the float32 matrix-multiply rate (square ``2048 x 2048 @ 2048 x 2048``), the ceiling for everything above.

FLOP are counted analytically (:func:`forward_flops`), 2 per multiply-add, for the matrix multiplies only:

- every ``nn.Linear`` on every token (tokens = ``B * T * J``): ``in_features * out_features`` multiply-adds per
  token (``joints_embed``, ``qkv``, ``proj``, ``fc1``, ``fc2``, ``ts_attn``, ``pre_logits.fc``, ``head``), except
  ``joint_map`` (present only when ``J_in != J_out``), a map over the joint axis: ``J_in * J_out`` per frame and
  coordinate;
- attention: one attention over ``N`` tokens of width ``C`` (all heads together) costs ``N * N * C`` multiply-adds
  for ``Q K^T`` and as many for ``A V``. Spatial attention is one such problem per frame (``N = J``), temporal
  attention one per joint (``N = T``), so an attention module over ``L``-long groups costs
  ``2 * tokens * L * C`` multiply-adds;
- training = 3 x forward (backward computes the input and the weight gradient of every matrix multiply). This
  slightly overstates it: the clip itself needs no gradient, so ``joints_embed``'s input-gradient product
  (``F * dim_feat`` per token) is not computed; it is 0.09% of the tiny check model's count and less on real ones.

LayerNorm, GELU, softmax, tanh, residual adds, the embeddings' adds, the layout copies around the attention, the
loss and the AdamW update are not counted: they are memory-bound work the matrix multiplies have to carry. On the
published model the attention is 6% of the forward FLOP, the Linear layers the rest. :func:`check_flop_count`
compares the count with ``torch.utils.flop_counter.FlopCounterMode`` on a tiny model (run at every start; it
takes well under a second): the forward agrees exactly, forward + backward to 0.09%. The attention has to run on
the math backend for that: ``FlopCounterMode`` has no formula for the CPU's fused attention kernel and counts 0.

Times are the best of the repetitions. Other load on a shared machine comes and goes, so training and inference
take turns within every round and the matmul rate is measured again each round (the interleaving of
``model_throughput``, whose ``matmul_gflops`` this uses); percentages are of its best value. Targets (printed, not
enforced): training at least 40% of the matmul rate, inference at least 60%.

On 2 cores one published training step takes about a minute per clip and inference about 15 s per clip, so the
published model's inference batch is 2 clips (1 with ``--quick``), the small model's 8, and the published model
gets half the repetitions and no untimed warm-up call (``--warm-up-published`` adds one, and about half again to
the run's time): the one-off costs of a first call (thread pool, allocating the AdamW state, 2 x 170 MB) are small
next to calls of 15 s to 2 minutes, though a first call also meets colder caches and page tables.

    python benchmarks/dstformer_throughput.py            # full run, about 6 minutes on 2 quiet cores
    python benchmarks/dstformer_throughput.py --quick    # published: batch 1, 1 repetition (about 2 minutes)
    python benchmarks/dstformer_throughput.py --markdown docs/benchmarks.md   # also write the block
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F
from harness import write_block
from model_throughput import matmul_gflops
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from components.networks.dstformer import AxisAttention, DSTformer

MARKDOWN_KEY = "dstformer-throughput"
MATMUL_SIZE = 2048  # the size interleaved_best_times measures each round
TRAINING_TARGET, INFERENCE_TARGET = 0.40, 0.60  # fractions of the matmul rate


@dataclass(frozen=True)
class Setting:
    """One DSTformer configuration and the workloads it is timed on.

    Attributes:
        name: the table's label.
        network: ``DSTformer`` keyword arguments.
        frames: ``T``, frames per clip (at most ``network["maxlen"]``).
        train_batch: clips per training step.
        infer_clips: clips per inference call.
        repeats: timed rounds.
        warm_up: run training and inference once, untimed, before the rounds.
    """

    name: str
    network: dict[str, float]
    frames: int
    train_batch: int
    infer_clips: int
    repeats: int
    warm_up: bool


PUBLISHED = dict(in_features=3, dim_feat=512, dim_rep=512, depth=5, num_heads=8, mlp_ratio=2, maxlen=243)
SMALL = dict(in_features=2, dim_feat=64, dim_rep=64, depth=2, num_heads=4, mlp_ratio=2, maxlen=81)


def linear_multiply_adds(model: DSTformer, batch: int, frames: int) -> int:
    """Multiply-adds of every ``nn.Linear`` of ``model`` on ``batch`` clips of ``frames`` frames.

    Every layer but ``joint_map`` runs once on every token (``batch * frames * J_in`` of them); ``joint_map`` runs
    over the joint axis, once per frame and output coordinate.
    """
    tokens = batch * frames * model.num_joints_in
    total = 0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        rows = batch * frames * 3 if name == "joint_map" else tokens
        total += rows * module.in_features * module.out_features
    return total


def attention_multiply_adds(model: DSTformer, batch: int, frames: int) -> int:
    """Multiply-adds of ``Q K^T`` and ``A V`` of every attention module on ``batch`` clips of ``frames`` frames.

    An attention over groups of ``L`` tokens of width ``C`` runs ``tokens / L`` problems of ``2 * L * L * C``
    multiply-adds each (``L = J`` over the joints of a frame, ``L = T`` over the frames of a joint).
    """
    tokens = batch * frames * model.num_joints_in
    total = 0
    for module in model.modules():
        if isinstance(module, AxisAttention):
            length = model.num_joints_in if module.over == "joints" else frames
            total += 2 * tokens * length * module.proj.in_features
    return total


def forward_flops(model: DSTformer, batch: int, frames: int) -> int:
    """FLOP of one forward pass on ``(batch, frames, J_in, F)``: 2 x the matrix multiplies' multiply-adds."""
    return 2 * (linear_multiply_adds(model, batch, frames) + attention_multiply_adds(model, batch, frames))


def counted_flops(model: DSTformer, inputs: torch.Tensor, backward: bool) -> int:
    """FLOP ``FlopCounterMode`` counts for ``model(inputs)`` (and the backward of its sum).

    On CPU, ``scaled_dot_product_attention`` runs ``_scaled_dot_product_flash_attention_for_cpu``, which
    ``FlopCounterMode`` has no formula for (it counts 0); the math backend computes the same attention through
    ``bmm``, which it counts as 2 x multiply-adds, like every ``mm``/``addmm`` of the Linear layers.
    """
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        out = model(inputs)
        if backward:
            out.sum().backward()
    return counter.get_total_flops()


def check_flop_count() -> tuple[int, int, int, int]:
    """Analytic vs counted FLOP of a tiny model (5 joints in, 4 out: ``joint_map`` too; 2 layers, 9 frames).

    Returns ``(analytic forward, counted forward, 3 x analytic forward, counted forward + backward)``.
    """
    torch.manual_seed(0)
    model = DSTformer(5, 4, in_features=3, dim_feat=16, dim_rep=8, depth=2, num_heads=2, mlp_ratio=2, maxlen=9)
    inputs = torch.randn(2, 9, 5, 3)
    analytic = forward_flops(model, 2, 9)
    return analytic, counted_flops(model, inputs, False), 3 * analytic, counted_flops(model, inputs, True)


def best_times_in_turns(runs: list[Callable[[], None]], repeats: int, peaks: list[float], warm_up: bool) -> list[float]:
    """Best time of each run (seconds), the runs taking turns, with a matmul measurement into ``peaks`` each round.

    Load from other jobs comes and goes; taking turns exposes every run (and the matmul ceiling) to it alike, and
    the best times are those of the quietest moments. ``warm_up`` first calls every run once, untimed.
    """
    if warm_up:
        for run in runs:
            run()  # allocator, AdamW state, oneDNN primitives
    best = [math.inf] * len(runs)
    for _ in range(repeats):
        peaks.append(matmul_gflops(MATMUL_SIZE, repeats=3))
        for index, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def training_step(model: DSTformer, batch: int, frames: int) -> Callable[[], None]:
    """One forward + MSE backward + AdamW step on ``batch`` random clips of ``frames`` frames (random targets)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    inputs = torch.randn(batch, frames, model.num_joints_in, model.in_features)
    targets = torch.randn(batch, frames, model.num_joints_out, 3)

    def step() -> None:
        model.train()
        loss = F.mse_loss(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def inference(model: DSTformer, clips: int, frames: int) -> Callable[[], None]:
    """``model`` on ``clips`` random clips of ``frames`` frames at once, eval mode, inference mode."""
    inputs = torch.randn(clips, frames, model.num_joints_in, model.in_features)

    @torch.inference_mode()
    def run() -> None:
        model.eval()
        model(inputs)

    return run


@dataclass
class Row:
    """One timed workload: ``items`` (clips or frames) and ``flop`` per call of ``seconds``."""

    setting: str
    case: str
    batch: int
    seconds: float
    items: int
    unit: str
    flop: int
    target: float

    def format(self, peak: float) -> str:
        """A markdown table row; ``peak`` is the matmul rate (GFLOP/s) the percentage is of."""
        rate = self.flop / self.seconds / 1e9
        share = rate / peak
        verdict = "met" if share >= self.target else "not met"
        return (
            f"| {self.setting} | {self.case} | {self.batch} | {self.seconds:.2f} | "
            f"{_three_digits(self.items / self.seconds)} {self.unit} | {rate:.1f} | {100 * share:.0f}% | "
            f">= {100 * self.target:.0f}%: {verdict} |"
        )


def _three_digits(value: float) -> str:
    """``value`` with at least 3 significant digits (``0.0115``, ``3.78``, ``377``, ``1,234``)."""
    digits = 2 - math.floor(math.log10(value)) if value > 0 else 0
    return f"{value:,.{max(0, digits)}f}"


def measure_setting(setting: Setting, peaks: list[float]) -> tuple[list[Row], str]:
    """Time training and inference of ``setting``, taking turns; matmul rates are appended to ``peaks``.

    Returns the two rows and a line on the model (parameters, forward GFLOP per clip, repetitions).
    """
    torch.manual_seed(0)
    model = DSTformer(**setting.network)
    frames = setting.frames
    runs = [training_step(model, setting.train_batch, frames), inference(model, setting.infer_clips, frames)]
    train_time, infer_time = best_times_in_turns(runs, setting.repeats, peaks, setting.warm_up)
    per_clip = forward_flops(model, 1, frames)
    warm_up = "after an untimed warm-up call" if setting.warm_up else "no warm-up call"
    about = (
        f"{setting.name}: {sum(p.numel() for p in model.parameters()):,} parameters, {per_clip / 1e9:.1f} GFLOP "
        f"forward per clip, best of {setting.repeats} ({warm_up})"
    )
    rows = [
        Row(setting.name, "training", setting.train_batch, train_time, setting.train_batch, "samples/s",
            3 * per_clip * setting.train_batch, TRAINING_TARGET),
        Row(setting.name, "inference", setting.infer_clips, infer_time, setting.infer_clips * frames, "frames/s",
            per_clip * setting.infer_clips, INFERENCE_TARGET),
    ]  # fmt: skip
    return rows, about


def settings(args: argparse.Namespace) -> list[Setting]:
    published_repeats = max(1, args.repeats // 2)  # a published training step takes a minute per clip on 2 cores
    all_settings = {
        "published": Setting(
            "published (H36M, 243 frames)", PUBLISHED, 243, args.published_batch, args.published_clips,
            published_repeats, args.warm_up_published,
        ),
        "small": Setting("small (81 frames)", SMALL, 81, args.small_batch, args.small_clips, args.repeats, True),
    }  # fmt: skip
    return [all_settings[name] for name in args.settings]


def flop_check_line() -> str:
    analytic, counted, analytic_train, counted_train = check_flop_count()
    return (
        f"FLOP check on a tiny model (FlopCounterMode, math attention): forward {analytic:,} analytic vs "
        f"{counted:,} counted ({analytic / counted - 1:+.2%}); forward + backward {analytic_train:,} (3 x forward) "
        f"vs {counted_train:,} counted ({analytic_train / counted_train - 1:+.2%})."
    )


def table(rows: list[Row], peaks: list[float], abouts: list[str]) -> str:
    """The report: the matmul rate, the models (``abouts``, from :func:`measure_setting`) and every row."""
    peak = max(peaks)
    lines = [
        f"float32 matmul {MATMUL_SIZE}^3 on {torch.get_num_threads()} threads (torch {torch.__version__}), measured "
        f"{len(peaks)} times during the run: {min(peaks):.1f} .. {peak:.1f} GFLOP/s; percentages are of {peak:.1f}. "
        f"GFLOP = 2 x the matrix multiplies' multiply-adds (Linear layers + attention), training = 3 x forward.",
        "",
        "; ".join(abouts) + ".",
        "",
        "| model | case | batch (clips) | seconds | throughput | GFLOP/s | % of matmul | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + [row.format(peak) for row in rows]) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repetitions (published 1), published batch 1")
    parser.add_argument("--published-batch", type=int, default=None, help="published training clips (2, quick 1)")
    parser.add_argument("--published-clips", type=int, default=None, help="published inference clips (2, quick 1)")
    parser.add_argument("--small-batch", type=int, default=32, help="small model's training clips per step")
    parser.add_argument("--small-clips", type=int, default=8, help="small model's inference clips per call")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 4, quick 2; published half)")
    parser.add_argument("--settings", nargs="+", choices=("published", "small"), default=["published", "small"])
    parser.add_argument("--warm-up-published", action="store_true", help="one untimed call of each published run first")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--markdown", type=Path, help=f"write the report into this file's {MARKDOWN_KEY} block")
    args = parser.parse_args()
    args.repeats = args.repeats or (2 if args.quick else 4)
    args.published_batch = args.published_batch or (1 if args.quick else 2)
    args.published_clips = args.published_clips or (1 if args.quick else 2)
    return args


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    command = " ".join(["python", *(shlex.quote(arg) for arg in sys.argv)])
    check = flop_check_line()
    print(check, flush=True)
    rows, peaks, abouts = [], [], []
    for setting in settings(args):
        setting_rows, about = measure_setting(setting, peaks)
        rows, abouts = rows + setting_rows, abouts + [about]
        print(f"timed {setting.name}", flush=True)
    peaks.append(matmul_gflops(MATMUL_SIZE, repeats=5))
    text = f"Measured by `{command}` on {date.today().isoformat()}.\n\n{table(rows, peaks, abouts)}\n{check}\n"
    print("\n" + text)
    if args.markdown is not None:
        write_block(args.markdown, MARKDOWN_KEY, text)
        print(f"wrote the {MARKDOWN_KEY!r} block of {args.markdown}")


if __name__ == "__main__":
    main()
