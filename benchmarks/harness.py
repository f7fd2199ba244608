"""Seeded comparisons, shared by every study script that trains.

Each arm of a comparison runs once per seed, with the same seeds for every arm (seed-major, so an interrupted
study leaves complete pairs). A study reports each arm's mean ± standard deviation over seeds and, for every
arm against the reference arm, the paired difference (same seed) with its 95% Student-t interval. Tables are
printed and, with ``--markdown FILE``, written by the script into a marked block of that file (e.g.
``docs/benchmarks.md``), so that no figure is typed by hand.
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from scipy import stats

from components.atomic import write_text_atomic

Metrics = dict[str, float]


def add_study_arguments(parser: argparse.ArgumentParser, datasets: Sequence[str] = ("synthetic", "mocap")) -> None:
    """``--seeds``, ``--datasets``, ``--markdown`` and ``--out``: the options every study shares."""
    add_seed_arguments(parser)
    parser.add_argument(
        "--datasets", nargs="+", default=list(datasets), choices=list(datasets), help="study sets to run on"
    )
    parser.add_argument("--markdown", type=Path, help="write the tables into this markdown file's study block")
    parser.add_argument("--out", type=Path, help="run folder (default: a temporary one)")


def add_seed_arguments(parser: argparse.ArgumentParser) -> None:
    """``--seeds`` and ``--first-seed`` (read back by :func:`seeds_of`)."""
    parser.add_argument("--seeds", type=int, default=3, help="seeds per arm (the same seeds for every arm)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed + 1, ...")


def seed_overrides(seed: int) -> list[str]:
    """CLI options that seed a run: weights, dropout and the data samplers' shuffles."""
    return ["--seed_everything", str(seed), "--data.init_args.seed", str(seed)]


@dataclass
class Comparison:
    """Results of several arms over the same seeds.

    Attributes:
        title: the table's heading, e.g. ``"Back-projection vs supervised only (real-motion set)"``.
        metrics: columns, e.g. ``("P1", "P3")``; lower is better unless listed in ``higher_is_better``.
        reference: the arm every other arm is paired against.
        seeds: the seeds, in order.
        results: arm -> one metrics dict per seed (in ``seeds`` order).
    """

    title: str
    metrics: tuple[str, ...]
    reference: str
    seeds: list[int] = field(default_factory=list)
    results: dict[str, list[Metrics]] = field(default_factory=dict)
    higher_is_better: tuple[str, ...] = ()
    repeats: str = "seeds"  # what the results of an arm are over (seeds, or e.g. runs)

    def values(self, arm: str, metric: str) -> list[float]:
        return [run[metric] for run in self.results[arm]]

    def mean_std(self, arm: str, metric: str) -> tuple[float, float]:
        values = np.asarray(self.values(arm, metric), dtype=np.float64)
        return float(values.mean()), (float(values.std(ddof=1)) if len(values) > 1 else float("nan"))

    def paired(self, arm: str, metric: str) -> tuple[float, float, float]:
        """Mean of ``arm - reference`` over seeds and its 95% Student-t interval ``(mean, low, high)``."""
        pairs = zip(self.values(arm, metric), self.values(self.reference, metric), strict=True)
        differences = np.asarray([a - b for a, b in pairs], dtype=np.float64)
        mean = float(differences.mean())
        if len(differences) < 2:
            return mean, float("nan"), float("nan")
        half = stats.t.ppf(0.975, len(differences) - 1) * differences.std(ddof=1) / math.sqrt(len(differences))
        return mean, float(mean - half), float(mean + half)

    def relative(self, arm: str, metric: str) -> float:
        """The mean paired difference relative to the reference's mean (``-0.1``: 10% lower)."""
        return self.paired(arm, metric)[0] / self.mean_std(self.reference, metric)[0]

    def verdict(self, arm: str, metric: str) -> str:
        """``better``/``worse`` when the 95% interval excludes 0, else ``no significant difference``."""
        _, low, high = self.paired(arm, metric)
        if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 <= high:
            return "no significant difference"
        lower = high < 0
        return "better" if lower != (metric in self.higher_is_better) else "worse"

    def markdown(self) -> str:
        """Two tables: mean ± std per arm, then the paired differences against the reference arm."""
        seeds = ", ".join(map(str, self.seeds)) if self.repeats == "seeds" else str(len(self.seeds))
        lines = [f"**{self.title}** ({self.repeats} {seeds}; mean ± std)", ""]
        lines += ["| arm | " + " | ".join(self.metrics) + " |", "|---" * (len(self.metrics) + 1) + "|"]
        for arm in self.results:
            cells = [_mean_std(*self.mean_std(arm, metric)) for metric in self.metrics]
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
        others = [arm for arm in self.results if arm != self.reference]
        if others:
            lines += ["", f"Paired difference against **{self.reference}** (same seed), mean [95% interval]:", ""]
            lines += ["| arm | " + " | ".join(self.metrics) + " |", "|---" * (len(self.metrics) + 1) + "|"]
            for arm in others:
                cells = [self._paired_cell(arm, metric) for metric in self.metrics]
                lines.append(f"| {arm} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def _paired_cell(self, arm: str, metric: str) -> str:
        mean, low, high = self.paired(arm, metric)
        interval = f" [{low:+.1f}, {high:+.1f}]" if math.isfinite(low) else ""
        return f"{mean:+.1f}{interval} ({self.relative(arm, metric):+.1%}, {self.verdict(arm, metric)})"


def _mean_std(mean: float, std: float) -> str:
    return f"{mean:.1f} ± {std:.1f}" if math.isfinite(std) else f"{mean:.1f}"


def run_comparison(
    comparison: Comparison, arms: dict[str, Callable[[int], Metrics]], seeds: Sequence[int]
) -> Comparison:
    """Run every arm for every seed, seed-major, filling ``comparison``; prints each result as it comes."""
    comparison.seeds = list(seeds)
    comparison.results = {arm: [] for arm in arms}
    for seed in seeds:
        for arm, run in arms.items():
            values = run(seed)
            comparison.results[arm].append({metric: float(values[metric]) for metric in comparison.metrics})
            shown = ", ".join(f"{metric} {values[metric]:.1f}" for metric in comparison.metrics)
            print(f"[{comparison.title}] seed {seed}, {arm}: {shown}", flush=True)
    return comparison


def seeds_of(options: argparse.Namespace) -> list[int]:
    return list(range(options.first_seed, options.first_seed + options.seeds))


def write_block(path: Path, key: str, text: str) -> None:
    """Replace the block ``<!-- study:key -->`` ... ``<!-- /study:key -->`` of ``path`` with ``text`` (appended
    at the end when the file has no such block), atomically."""
    begin, end = f"<!-- study:{key} -->", f"<!-- /study:{key} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    current = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    updated = pattern.sub(lambda _: block, current) if pattern.search(current) else current.rstrip() + f"\n\n{block}\n"
    write_text_atomic(path, updated)


def report(options: argparse.Namespace, key: str, blocks: Sequence[str]) -> None:
    """Print the study's tables and, with ``--markdown``, write them (headed by the command that measured them)
    into the file's ``key`` block."""
    command = " ".join(["python", *(shlex.quote(arg) for arg in sys.argv)])
    text = f"Measured by `{command}` on {date.today().isoformat()}.\n\n" + "\n".join(blocks)
    print("\n" + text)
    if options.markdown is not None:
        key = "-".join([key, *options.datasets])  # one block per study and set(s), so sets can run separately
        write_block(options.markdown, key, text)
        print(f"wrote the {key!r} block of {options.markdown}")
