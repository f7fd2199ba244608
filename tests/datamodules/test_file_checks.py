"""The shared text and JSON readers: every failure names the file and raises the reader's own error class."""

import re

import pytest

from components.errors import InputError
from datamodules.camera_rig import CameraRigError, load_rig
from datamodules.file_checks import read_json, read_text
from datamodules.mocap.bvh import read_bvh
from datamodules.mocap.errors import MocapFormatError
from datamodules.mocap.trc import read_trc


def test_read_text_and_json_name_the_file(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"a": [1, 2]}', encoding="utf-8")
    assert read_text(good) == '{"a": [1, 2]}'
    assert read_json(good) == {"a": [1, 2]}
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(InputError, match=r"latin\.json: not UTF-8 text \(byte 7: invalid continuation byte\)"):
        read_text(latin)
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": ', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.json: not valid JSON \(Expecting value: line 1 column 7"):
        read_json(broken)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(InputError, match=r"deep\.json: not valid JSON \(nested too deeply\)"):
        read_json(deep)
    with pytest.raises(InputError, match=r"absent\.json: cannot read \(No such file or directory\)"):
        read_text(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("name", "reader", "error"),
    [
        ("take.bvh", read_bvh, MocapFormatError),
        ("take.trc", read_trc, MocapFormatError),
        ("rig.json", load_rig, CameraRigError),
    ],
)
def test_readers_raise_their_own_error_for_bytes_that_are_not_utf8(tmp_path, name, reader, error):
    path = tmp_path / name
    path.write_bytes(b"HIERARCHY\n\xff\xfe")
    with pytest.raises(error, match=re.escape(f"{name}: not UTF-8 text (byte 10: invalid start byte)")):
        reader(path)
