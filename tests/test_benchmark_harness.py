"""The study harness: paired differences with Student-t intervals, and tables written into a marked block."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from harness import Comparison, run_comparison, write_block  # noqa: E402


def test_paired_difference_and_its_interval():
    comparison = Comparison("t", ("P1",), "base", seeds=[0, 1, 2])
    comparison.results = {"base": [{"P1": 10.0}, {"P1": 12.0}, {"P1": 14.0}],
                          "new": [{"P1": 9.0}, {"P1": 10.0}, {"P1": 13.0}]}  # fmt: skip
    # differences -1, -2, -1: mean -4/3, sd 1/sqrt(3), t(0.975, 2) = 4.302653
    mean, low, high = comparison.paired("new", "P1")
    half = 4.302653 * (1 / 3**0.5) / 3**0.5
    assert mean == pytest.approx(-4 / 3) and (low, high) == pytest.approx((-4 / 3 - half, -4 / 3 + half), abs=1e-5)
    assert comparison.mean_std("base", "P1") == pytest.approx((12.0, 2.0))
    assert comparison.relative("new", "P1") == pytest.approx(-4 / 3 / 12)
    assert comparison.verdict("new", "P1") == "no significant difference"  # [-2.77, +0.10] holds 0
    text = comparison.markdown()
    assert "| new | 10.7 ± 2.1 |" in text and "| new | -1.3 [-2.8, +0.1] (-11.1%, no significant difference) |" in text


def test_verdict_needs_an_interval_that_excludes_zero():
    comparison = Comparison("t", ("P1", "Hit@1"), "a", seeds=[0, 1, 2], higher_is_better=("Hit@1",))
    b = [{"P1": 11, "Hit@1": 60}, {"P1": 9, "Hit@1": 61}, {"P1": 10.5, "Hit@1": 59}]
    comparison.results = {"a": [{"P1": 10, "Hit@1": 50}] * 3, "b": b}
    assert comparison.verdict("b", "P1") == "no significant difference"
    assert comparison.verdict("b", "Hit@1") == "better"  # higher is better here


def test_run_comparison_is_seed_major_and_write_block_replaces_its_own_block(tmp_path):
    order = []

    def arm(name: str, factor: int):
        return lambda seed: order.append((name, seed)) or {"P1": factor * seed}

    arms = {"a": arm("a", 1), "b": arm("b", 2)}
    comparison = run_comparison(Comparison("t", ("P1",), "a"), arms, [0, 1])
    assert order == [("a", 0), ("b", 0), ("a", 1), ("b", 1)] and comparison.values("b", "P1") == [0, 2]
    path = tmp_path / "doc.md"
    path.write_text("# Doc\n\n<!-- study:x -->\nold\n<!-- /study:x -->\n\ntail\n")
    write_block(path, "x", "new table")
    write_block(path, "y", "another")
    block_x = "<!-- study:x -->\nnew table\n<!-- /study:x -->"
    block_y = "<!-- study:y -->\nanother\n<!-- /study:y -->"
    assert path.read_text() == f"# Doc\n\n{block_x}\n\ntail\n\n{block_y}\n"
