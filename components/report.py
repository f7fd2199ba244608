"""Result tables: per-group errors in millimetres, printed, and written atomically as CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from components.atomic import write_text_atomic


@dataclass(frozen=True)
class ResultTable:
    """Rows of named columns; the last row is the summary (e.g. the action-wise mean).

    Attributes:
        name: file stem, e.g. ``"test_protocols"``.
        title: e.g. ``"test: all subjects (mm)"``.
        row_label: header of the first column, e.g. ``"action"``.
        columns: metric names, e.g. ``("P1", "P2", "P3", "MPJVE")``.
        rows: ``(label, values)`` pairs; a value is NaN where a row has no data.
    """

    name: str
    title: str
    row_label: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[float, ...]], ...]

    def format(self) -> str:
        """Fixed-width text, one decimal, the summary row set off by a rule."""
        width = max([len(self.row_label), *(len(label) for label, _ in self.rows)])
        columns = [max(9, len(c) + 2) for c in self.columns]  # long names keep a gap to their neighbour
        header = f"{self.row_label:<{width}}" + "".join(f"{c:>{w}}" for c, w in zip(self.columns, columns, strict=True))
        lines = [self.title, header, "-" * len(header)]
        for i, (label, values) in enumerate(self.rows):
            if i == len(self.rows) - 1 and len(self.rows) > 1:
                lines.append("-" * len(header))
            cells = "".join(f"{_fmt(v):>{w}}" for v, w in zip(values, columns, strict=True))
            lines.append(f"{label:<{width}}" + cells)
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": {label: dict(zip(self.columns, _json_values(values), strict=True)) for label, values in self.rows},
        }

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([self.row_label, *self.columns])
        for label, values in self.rows:
            writer.writerow([label, *(f"{v:.4f}" if math.isfinite(v) else "" for v in values)])
        return buffer.getvalue()

    def write(self, folder: str | Path) -> tuple[Path, Path]:
        """Write ``<name>.csv`` and ``<name>.json`` into ``folder`` atomically; returns both paths."""
        folder = Path(folder)
        csv_path, json_path = folder / f"{self.name}.csv", folder / f"{self.name}.json"
        write_text_atomic(csv_path, self.to_csv())
        write_text_atomic(json_path, json.dumps(self.as_dict(), indent=2) + "\n")
        return csv_path, json_path


def _fmt(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "-"


def _json_values(values: Sequence[float]) -> list[float | None]:
    return [round(v, 4) if math.isfinite(v) else None for v in values]


def group_table(
    name: str,
    title: str,
    row_label: str,
    group_names: Sequence[str],
    columns: Mapping[str, Sequence[float]],
    summary: str,
) -> ResultTable:
    """A table whose rows are groups plus a summary row holding the unweighted mean over non-empty groups.

    Args:
        columns: metric name -> per-group values (same order as ``group_names``), NaN for empty groups.
        summary: label of the last row, e.g. ``"average"``.
    """
    names = tuple(columns)
    per_group = [tuple(float(columns[c][i]) for c in names) for i in range(len(group_names))]
    rows = [(g, v) for g, v in zip(group_names, per_group, strict=True) if any(math.isfinite(x) for x in v)]
    means = tuple(_nanmean([v[i] for _, v in rows]) for i in range(len(names)))
    return ResultTable(name, title, row_label, names, tuple(rows) + ((summary, means),))


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")
