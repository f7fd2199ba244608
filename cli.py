"""poselift command line: tool subcommands.

``poselift synthesize --out DIR --size default`` writes the synthetic Human3.6M dataset in the real file
formats and prints its summary.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

TOOLS: dict[str, tuple[str, Callable[[Sequence[str]], int]]] = {}


def tool(name: str, help: str):
    """Register a tool subcommand: ``fn(argv) -> exit code``."""

    def register(fn: Callable[[Sequence[str]], int]) -> Callable[[Sequence[str]], int]:
        TOOLS[name] = (help, fn)
        return fn

    return register


@tool("synthesize", "write the synthetic Human3.6M dataset (VideoPose3D npz formats) and print its summary")
def synthesize(argv: Sequence[str]) -> int:
    from datamodules.synthetic import SIZES, synthesize_h36m

    parser = argparse.ArgumentParser(prog="poselift synthesize", description=TOOLS["synthesize"][0])
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--size", default="default", choices=sorted(SIZES), help="dataset size")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the generator")
    options = parser.parse_args(argv)
    summary = synthesize_h36m(options.out, options.size, options.seed)
    print(summary.format() if hasattr(summary, "format") else summary)
    return 0


def _usage() -> str:
    lines = ["usage: poselift <subcommand> [options]", "", "subcommands:"]
    lines += [f"  {name:<12} {help}" for name, (help, _) in TOOLS.items()]
    return "\n".join(lines)


def main(args: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if args is None else args)
    if argv and argv[0] in TOOLS:
        return TOOLS[argv[0]][1](argv[1:])
    print(_usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
    return 0 if argv and argv[0] in ("-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
