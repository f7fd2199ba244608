"""Throughput of the temporal convolution lifter against this machine's float32 matrix-multiply rate.

Measures, for the 243-frame VideoPose3D model (widths 3,3,3,3,3, 1024 channels, 17 joints):

- the float32 matrix-multiply rate (square ``n x n @ n x n``, best of several), the ceiling for everything below;
- training samples/s (forward + backward + AMSGrad step, batch of 243-frame windows, 1 output frame each) for
  the strided twin and for the dilated model run on the same windows;
- inference frames/s on one long sequence (eval mode, no grad, dilated model);

each for ``TemporalConvLifter`` (channels-last matrix multiplies) and for a plain ``nn.Conv1d`` formulation
with the same state_dict. GFLOP/s counts 2 x the multiply-adds the convolutions actually execute (the dilated
model on a 243-frame window computes 14.8x more than the strided twin for the same output) and
forward + backward = 3 x forward.

Times are the best of the repetitions. Other load on a shared machine comes and goes, so the implementations take
turns within every round and the matmul rate is measured again each round; percentages are of its best value.

    python benchmarks/model_throughput.py            # full run, about 6 minutes on 2 cores
    python benchmarks/model_throughput.py --quick    # 2 repetitions, dilated training on batch 32 (about 1 minute)
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.networks.temporal_conv import TemporalConvLifter


class Conv1dReference(nn.Module):
    """The straightforward formulation: ``nn.Conv1d`` on ``(B, C, T)``, as in VideoPose3D's models.

    Same parameters and state_dict keys as ``TemporalConvLifter`` (load its state_dict); the dilated model uses
    the layers' dilation, the strided twin calls the same weights with stride = width.
    """

    def __init__(self, lifter: TemporalConvLifter) -> None:
        super().__init__()
        self.widths, self.causal, self.num_joints_out = lifter.filter_widths, lifter.causal, lifter.num_joints_out
        self.expand_bn = nn.BatchNorm1d(lifter.channels)
        self.shrink = nn.Conv1d(lifter.channels, 3 * lifter.num_joints_out, 1)
        self.expand_conv = _clone_conv(lifter.expand_conv)
        self.layers_conv = nn.ModuleList(_clone_conv(conv) for conv in lifter.layers_conv)
        self.layers_bn = nn.ModuleList(nn.BatchNorm1d(lifter.channels) for _ in lifter.layers_bn)
        self.drop = nn.Dropout(lifter.dropout)
        self.load_state_dict(lifter.state_dict())

    def forward(self, keypoints_2d: Tensor, strided: bool = False) -> Tensor:
        """``(B, T, J_in, F)`` -> ``(B, T - receptive_field + 1, J_out, 3)``."""
        batch, frames = keypoints_2d.shape[:2]
        x = keypoints_2d.reshape(batch, frames, -1).transpose(1, 2)
        x = self._layer(x, self.expand_conv, self.expand_bn, strided)
        for block, width in enumerate(self.widths[1:]):
            dilation = 1 if strided else self.layers_conv[2 * block].dilation[0]
            offset = (width - 1 if self.causal else width // 2) * dilation
            end = x.shape[2] - (width - 1) * dilation + offset
            residual = x[:, :, offset::width] if strided else x[:, :, offset:end]
            h = self._layer(x, self.layers_conv[2 * block], self.layers_bn[2 * block], strided)
            x = residual + self._layer(h, self.layers_conv[2 * block + 1], self.layers_bn[2 * block + 1], strided)
        out = self.shrink(x).transpose(1, 2)
        return out.reshape(batch, -1, self.num_joints_out, 3)

    def _layer(self, x: Tensor, conv: nn.Conv1d, bn: nn.BatchNorm1d, strided: bool) -> Tensor:
        h = F.conv1d(x, conv.weight, stride=conv.kernel_size[0]) if strided else conv(x)
        return self.drop(F.relu(bn(h)))


def _clone_conv(conv: nn.Conv1d) -> nn.Conv1d:
    return nn.Conv1d(conv.in_channels, conv.out_channels, conv.kernel_size, dilation=conv.dilation, bias=False)


def multiply_adds(lifter: TemporalConvLifter, frames: int, strided: bool) -> int:
    """Multiply-adds the convolutions execute for one window of ``frames`` input frames."""
    channels = lifter.channels
    frames = frames // lifter.filter_widths[0] if strided else frames - lifter.filter_widths[0] + 1
    total = frames * channels * lifter.num_joints_in * lifter.in_features * lifter.filter_widths[0]
    for width, dilation in zip(lifter.filter_widths[1:], lifter.dilations[1:], strict=True):
        frames = frames // width if strided else frames - (width - 1) * dilation
        total += frames * channels * channels * (width + 1)  # the width-w and the width-1 convolution
    return total + frames * channels * 3 * lifter.num_joints_out


def best_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Best wall time of ``repeats`` calls after ``warmup`` untimed ones (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(size: int, repeats: int) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / best_time(lambda: a @ b, repeats) / 1e9


def training_step(model: nn.Module, lifter: TemporalConvLifter, batch: int, strided: bool) -> Callable[[], None]:
    """One forward + backward + AMSGrad step on random receptive-field windows (MPJPE to random targets)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    inputs = torch.randn(batch, lifter.receptive_field, lifter.num_joints_in, lifter.in_features)
    targets = torch.randn(batch, 1, lifter.num_joints_out, 3)

    def step() -> None:
        model.train()
        loss = (model(inputs, strided=strided) - targets).norm(dim=-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def inference(model: nn.Module, lifter: TemporalConvLifter, frames: int) -> Callable[[], None]:
    """The dilated model on one sequence of ``frames`` input frames, eval mode, no autograd."""
    inputs = torch.randn(1, frames, lifter.num_joints_in, lifter.in_features)

    @torch.no_grad()
    def run() -> None:
        model.eval()
        model(inputs)

    return run


@dataclass
class Row:
    case: str
    implementation: str
    seconds: float
    items: int
    unit: str
    flop: float

    def format(self, peak: float) -> str:
        rate = self.flop / self.seconds / 1e9
        throughput = f"{self.items / self.seconds:,.0f} {self.unit}"
        return (
            f"| {self.case} | {self.implementation} | {self.seconds:.3f} | {throughput} | {rate:.0f} | "
            f"{100 * rate / peak:.0f}% |"
        )


def max_difference(lifter: TemporalConvLifter, reference: nn.Module) -> float:
    """Largest |lifter - reference| over a short eval-mode sequence and its strided window."""
    lifter.eval(), reference.eval()
    inputs = torch.randn(2, lifter.receptive_field + 16, lifter.num_joints_in, lifter.in_features)
    window = inputs[:, : lifter.receptive_field]
    with torch.no_grad():
        dilated = (lifter(inputs) - reference(inputs)).abs().max()
        strided = (lifter(window, strided=True) - reference(window, strided=True)).abs().max()
    return max(dilated.item(), strided.item())


def interleaved_best_times(runs: list[Callable[[], None]], repeats: int, peaks: list[float]) -> list[float]:
    """Best time of each run (seconds), the runs taking turns, with a matmul measurement into ``peaks`` each round.

    Other load on the machine comes and goes; taking turns exposes every run (and the matmul ceiling) to it alike,
    and the best times are those of the quietest moments.
    """
    for run in runs:
        run()  # warm-up: allocator, optimizer state, oneDNN primitives
    best = [math.inf] * len(runs)
    for _ in range(repeats):
        peaks.append(matmul_gflops(2048, repeats=3))
        for index, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[index] = min(best[index], time.perf_counter() - start)
    return best


CASES = ("strided", "dilated", "infer")


@dataclass
class Case:
    """One timed workload: ``make_run(model)`` returns the call to time, which processes ``items`` and ``flop``."""

    name: str
    items: int
    unit: str
    flop: float
    repeats: int
    make_run: Callable[[nn.Module], Callable[[], None]]


def cases(lifter: TemporalConvLifter, args: argparse.Namespace) -> list[Case]:
    rf, frames = lifter.receptive_field, args.sequence + lifter.receptive_field - 1
    strided_flop = 6 * args.batch * multiply_adds(lifter, rf, strided=True)
    dilated_flop = 6 * args.dilated_batch * multiply_adds(lifter, rf, strided=False)
    all_cases = [
        Case("train strided twin", args.batch, "windows/s", strided_flop, args.repeats,
             lambda model: training_step(model, lifter, args.batch, strided=True)),
        Case("train dilated", args.dilated_batch, "windows/s", dilated_flop, max(1, args.repeats // 2),
             lambda model: training_step(model, lifter, args.dilated_batch, strided=False)),
        Case(f"infer {args.sequence} frames", args.sequence, "frames/s",
             2 * multiply_adds(lifter, frames, strided=False), args.repeats,
             lambda model: inference(model, lifter, frames)),
    ]  # fmt: skip
    return [case for case, key in zip(all_cases, CASES, strict=True) if key in args.cases]


def measure(
    models: dict[str, nn.Module], lifter: TemporalConvLifter, args: argparse.Namespace
) -> tuple[list[Row], float]:
    """Time every case for every implementation; returns the rows and the best matmul rate of the run."""
    rows, peaks = [], []
    for case in cases(lifter, args):
        runs = [case.make_run(model) for model in models.values()]
        times = interleaved_best_times(runs, case.repeats, peaks)
        rows += [
            Row(case.name, name, t, case.items, case.unit, case.flop) for name, t in zip(models, times, strict=True)
        ]
    peaks.append(matmul_gflops(2048, repeats=5))
    print(
        f"float32 matmul 2048^3 on {torch.get_num_threads()} threads, measured {len(peaks)} times during the run: "
        f"{min(peaks):.0f} .. {max(peaks):.0f} GFLOP/s; percentages below are of {max(peaks):.0f}"
    )
    return rows, max(peaks)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repetitions; dilated training on batch 32")
    parser.add_argument("--batch", type=int, default=256, help="training windows per step")
    parser.add_argument("--dilated-batch", type=int, default=None, help="batch for dilated training (default --batch)")
    parser.add_argument("--sequence", type=int, default=10_000, help="output frames of the inference sequence")
    parser.add_argument("--repeats", type=int, default=None, help="timed repetitions (default 5, quick 2)")
    parser.add_argument("--skip-reference", action="store_true", help="do not time the nn.Conv1d reference")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES), help="which cases to time")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    args.repeats = args.repeats or (2 if args.quick else 5)
    args.dilated_batch = args.dilated_batch or (32 if args.quick else args.batch)
    return args


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lifter = TemporalConvLifter(filter_widths=(3, 3, 3, 3, 3), channels=1024)
    models = {"TemporalConvLifter": lifter}
    if not args.skip_reference:
        models["nn.Conv1d reference"] = Conv1dReference(lifter)
        difference = max_difference(lifter, models["nn.Conv1d reference"])
        print(f"max |lifter - reference| (eval, dilated and strided, same state_dict): {difference:.2e}")

    rows, peak = measure(models, lifter, args)
    print(
        f"243-frame model, {sum(p.numel() for p in lifter.parameters()):,} parameters; training batch {args.batch} "
        f"(dilated {args.dilated_batch}); GFLOP = 2 x executed multiply-adds, backward = 2 x forward; best of "
        f"{args.repeats} (dilated training {max(1, args.repeats // 2)})\n"
    )
    print("| case | implementation | seconds | throughput | GFLOP/s | % of matmul |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row.format(peak))


if __name__ == "__main__":
    main()
