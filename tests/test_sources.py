"""hsi_core.sources: one choice of data for every chapter, and splits that are never empty."""

from __future__ import annotations

import pytest

from hsi_core import sources


def test_hidden_samples_give_the_demo_world(monkeypatch, demo_world):
    monkeypatch.setenv("HSI_SHARED_DATA", "off")
    data = sources.free_viewing("auto", demo_root=demo_world)
    assert data.is_demo and data.root == demo_world
    # SALICON train + val + the scanpath stimuli: enough for the chapters' splits (the #10 IndexError)
    assert len(data.records) >= 48 and "synthetic" in data.summary()
    assert sources.shared_subset("nus-scene") is None


def test_real_samples_are_chosen_when_present(shared_root):
    data = sources.free_viewing("auto")
    assert not data.is_demo and data.name == "NUS Scene" and len(data.records) == 500


def test_split_is_disjoint_seeded_and_shrinks_instead_of_emptying():
    records = list(range(10))
    train, test = sources.split_records(records, 96, 12, seed=0)
    assert len(test) >= 1 and len(train) + len(test) == 10 and not set(train) & set(test)
    assert (train, test) == sources.split_records(records, 96, 12, seed=0)
    train, test = sources.split_records(records, 6, 3, seed=1)
    assert (len(train), len(test)) == (6, 3)
    with pytest.raises(ValueError, match="at least 2"):
        sources.split_records([1], 1, 1)
    with pytest.raises(ValueError, match="n_test=0"):
        sources.split_records(records, 5, 0)


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent"):
        sources.shared_subset("mit1003-subset", tmp_path / "absent")
