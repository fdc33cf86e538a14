"""Atomic writes: a result appears whole or not at all. The streamed json reader: values as ``json.loads``
gives them, errors that name the file."""

from __future__ import annotations

import pytest

from hsi_core import io
from hsi_core.io import atomic_open, atomic_write_bytes


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    target = tmp_path / "sub" / "rows.csv"
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as handle:
            handle.write("half a result")
            raise RuntimeError("killed mid-write")
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_an_old_file_stays_until_the_new_one_is_complete(tmp_path):
    target = atomic_write_bytes(tmp_path / "a.bin", b"old")
    with atomic_open(target, "wb") as handle:
        handle.write(b"new")
        assert target.read_bytes() == b"old"  # readers still see the old version
    assert target.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1


def test_json_stream_yields_array_elements_one_by_one_and_names_the_file_on_errors(tmp_path, monkeypatch):
    """Catches: a streamed array given whole (``kind`` never "item"), a number cut by a chunk's end read as its
    first part ("2" of "2.5", "-1" of "-1e-3": the reader before this test raised on such valid files), and an
    error message without the file's name."""
    import json

    path = tmp_path / "big.json"
    content = {"a": [1, {"b": "x"}, 2.5, -1e-3], "n": 1234567, "empty": []}
    path.write_text(json.dumps(content))
    for chunk in (1, 5, 1 << 20):
        seen = list(io.iter_json_members(path, stream=("a", "empty"), chunk_chars=chunk))
        assert seen == [("a", "start", None), ("a", "item", 1), ("a", "item", {"b": "x"}), ("a", "item", 2.5), ("a", "item", -1e-3),
                        ("n", "value", 1234567), ("empty", "start", None)]
    path.write_text(json.dumps(content)[:-8])
    with pytest.raises(ValueError, match=r"big\.json: broken json"):
        list(io.iter_json_members(path, chunk_chars=4))
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"big\.json: expected a json object"):
        list(io.iter_json_members(path))
    monkeypatch.setattr(io, "JSON_MAX_VALUE_CHARS", 16)
    path.write_text(json.dumps({"long": "y" * 100}))
    with pytest.raises(ValueError, match=r"big\.json: broken json .*single value over"):
        list(io.iter_json_members(path, chunk_chars=8))
    with pytest.raises(FileNotFoundError, match="absent.json"):
        list(io.iter_json_members(tmp_path / "absent.json"))
