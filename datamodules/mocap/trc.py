"""TRC marker trajectories (the OpenSim / Motion Analysis text format).

Layout (tab separated)::

    PathFileType  4  (X/Y/Z)  walk.trc
    DataRate  CameraRate  NumFrames  NumMarkers  Units  OrigDataRate  OrigDataStartFrame  OrigNumFrames
    60.00     60.00       900        41          mm     60.00         1                   900
    Frame#  Time  R.ASIS  <tab>  <tab>  L.ASIS ...
                  X1  Y1  Z1  X2  Y2  Z2 ...
    1  0.000  596.88  1044.68  118.56 ...

Missing samples are empty fields or NaN. Only the markers a mapping uses must be complete: a gap in one of them
is an error naming the marker and the line (fill gaps in the capture software first).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.file_checks import read_text
from datamodules.mocap.errors import MocapFormatError

UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}


@dataclass(frozen=True)
class TrcMarkers:
    """A TRC file's markers: ``positions`` ``(T, M, 3)`` float64 in ``units`` (NaN where missing)."""

    path: Path
    names: tuple[str, ...]
    rate: float
    units: str
    positions: np.ndarray
    first_data_line: int

    def __len__(self) -> int:
        return len(self.positions)

    def marker(self, name: str) -> np.ndarray:
        """``(T, 3)`` positions of one marker; an error names the marker and line of its first gap."""
        values = self.positions[:, self.names.index(name)]
        missing = ~np.isfinite(values).all(axis=-1)
        if missing.any():
            frame = int(np.argmax(missing))
            raise MocapFormatError(
                f"{self.path}, line {self.first_data_line + frame}: marker {name!r} is missing in "
                f"{int(missing.sum())} of {len(values)} frames (first at frame {frame}); fill the gaps first"
            )
        return values


def read_trc(path: str | Path) -> TrcMarkers:
    """Read a TRC file; errors name the file and line (:class:`MocapFormatError`)."""
    path = Path(path)
    lines = read_text(path, MocapFormatError).splitlines()
    if len(lines) < 5 or not lines[0].startswith("PathFileType"):
        raise MocapFormatError(f"{path}, line 1: not a TRC file (expected 'PathFileType' and 4 header lines)")
    settings = dict(zip(lines[1].split("\t"), lines[2].split("\t"), strict=False))
    try:
        rate, count = float(settings["DataRate"]), int(settings["NumMarkers"])
        units = settings["Units"].strip()
    except (KeyError, ValueError):
        raise MocapFormatError(f"{path}, line 3: DataRate, NumMarkers and Units must be given ({settings})") from None
    if units not in UNITS:
        raise MocapFormatError(f"{path}, line 3: unknown Units {units!r} (known: {sorted(UNITS)})")
    if not rate > 0:
        raise MocapFormatError(f"{path}, line 3: DataRate must be positive, got {rate}")
    names = tuple(name.strip() for name in lines[3].split("\t")[2:] if name.strip())
    if len(names) != count:
        raise MocapFormatError(f"{path}, line 4: {len(names)} marker names for NumMarkers {count}")
    first = 6 if len(lines) > 5 and not lines[5].strip() else 5  # a blank line often follows the XYZ header
    positions = _rows(path, lines[first:], first + 1, count)
    return TrcMarkers(path, names, rate, units, positions, first + 1)


def _rows(path: Path, lines: list[str], first_line: int, count: int) -> np.ndarray:
    """Data rows -> ``(T, count, 3)``; empty fields become NaN, short rows are padded with NaN.

    One vectorised parse of the whole table; only a file it rejects is walked line by line, to name the line.
    """
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    if not lines:
        raise MocapFormatError(f"{path}, line {first_line}: no data rows")
    width = 2 + 3 * count
    padded = [_pad(line.rstrip("\r"), width) for line in lines]
    try:
        table = np.loadtxt(io.StringIO("\n".join(padded)), delimiter="\t", ndmin=2, dtype=np.float64)
    except ValueError:
        table = None
    if table is None or table.shape[1] != width:
        _raise_bad_row(path, padded, first_line, width)
    return table[:, 2:].reshape(len(table), count, 3)


def _pad(line: str, width: int) -> str:
    """Empty fields -> ``nan``, missing trailing fields appended as ``nan``."""
    fields = [field if field.strip() else "nan" for field in line.split("\t")]
    return "\t".join(fields + ["nan"] * (width - len(fields)))


def _raise_bad_row(path: Path, rows: list[str], first_line: int, width: int) -> None:
    for number, row in enumerate(rows, first_line):
        fields = row.split("\t")
        if len(fields) != width:
            raise MocapFormatError(f"{path}, line {number}: {len(fields)} fields, expected {width}")
        for field in fields:
            try:
                float(field)
            except ValueError:
                raise MocapFormatError(f"{path}, line {number}: {field!r} is not a number") from None
    raise MocapFormatError(f"{path}, line {first_line}: the data rows cannot be read")
