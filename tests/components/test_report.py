import csv
import json
import math

import pytest

from components.atomic import write_text_atomic
from components.report import group_table


def test_group_table_drops_empty_groups_and_averages_the_rest():
    table = group_table(
        "test_protocols", "test (mm)", "action", ["Eating", "Posing", "Walking"],
        {"P1": [40.0, math.nan, 20.0], "MPJVE": [2.0, math.nan, 4.0]}, "average",
    )  # fmt: skip
    assert table.rows == (("Eating", (40.0, 2.0)), ("Walking", (20.0, 4.0)), ("average", (30.0, 3.0)))
    text = table.format()
    assert text.splitlines()[1].split() == ["action", "P1", "MPJVE"]
    assert text.splitlines()[-1].split() == ["average", "30.0", "3.0"]


def test_write_produces_matching_csv_and_json(tmp_path):
    table = group_table("t", "title", "action", ["A", "B"], {"P1": [1.23456, 2.0]}, "average")
    csv_path, json_path = table.write(tmp_path)
    rows = list(csv.reader(csv_path.open()))
    assert rows == [["action", "P1"], ["A", "1.2346"], ["B", "2.0000"], ["average", "1.6173"]]
    assert json.loads(json_path.read_text())["rows"]["average"] == {"P1": 1.6173}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json"]  # no temporary files left


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")

    with pytest.raises(TypeError):
        write_text_atomic(target, 12345)  # not text: fails while writing
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]
