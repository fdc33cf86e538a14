"""Atomic writes: a result appears whole or not at all."""

from __future__ import annotations

import pytest

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
