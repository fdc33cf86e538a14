"""One weights loader (hsi_core.models.weights): the steps and their errors, once for every model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hsi_core.models import weights
from hsi_core.models.weights import keep_model_keys, load_state, strip_prefixes, unwrap_checkpoint


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 1, 1))


def test_missing_file_names_it_and_says_what_to_download(tmp_path):
    """Catches a loader that calls torch.load on an absent path (a bare torch error without the
    download hint) or drops the hint."""
    with pytest.raises(FileNotFoundError, match=r"Sequential weights not found at .*absent\.pt\. Get it at example\.org"):
        load_state(_net(), tmp_path / "absent.pt", download="Get it at example.org")


def test_wrong_keys_name_the_file_what_was_expected_and_the_keys(tmp_path):
    """Catches a loader that loads non-strictly (silently partial weights) and one whose message omits
    the file, the expected content or the keys; shapes are checked even when not strict."""
    state = _net().state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["2.bias"]
    torch.save(state, tmp_path / "keys.pt")
    with pytest.raises(ValueError) as info:
        load_state(_net(), tmp_path / "keys.pt", expected="a test net")
    message = str(info.value)
    assert "keys.pt: not a test net" in message
    assert "1 keys missing" in message and "2.bias" in message
    assert "1 unexpected keys" in message and "extra.weight" in message
    loaded = load_state(_net(), tmp_path / "keys.pt", strict=False)   # not strict: the keys it has
    assert torch.equal(loaded[0].weight, state["0.weight"])
    state = _net().state_dict()
    state["0.weight"] = torch.zeros(4, 3, 5, 5)
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match=r"shape mismatch, e\.g\. 0\.weight: file \(4, 3, 5, 5\), model \(4, 3, 3, 3\)"):
        load_state(_net(), tmp_path / "shape.pt", strict=False)


def test_filter_fn_is_applied_and_its_errors_name_the_file(tmp_path):
    """Catches a loader that ignores filter_fn (the wrapped, prefixed keys would not load) or reports a
    filter's ValueError without the file."""
    source = _net()
    with torch.no_grad():
        source[2].weight.fill_(0.25)
    torch.save({"model": {"module." + k: v for k, v in source.state_dict().items()}, "epoch": 3}, tmp_path / "ckpt.pt")
    loaded = load_state(_net(), tmp_path / "ckpt.pt", filter_fn=strip_prefixes("module."))
    assert torch.equal(loaded[2].weight, source[2].weight)
    seen = []

    def refuse(checkpoint, model):
        seen.append(type(model).__name__)
        raise ValueError("the reason")

    with pytest.raises(ValueError, match=r"ckpt\.pt: not a Sequential state dict: the reason"):
        load_state(_net(), tmp_path / "ckpt.pt", filter_fn=refuse)
    assert seen == ["Sequential"]   # the filter receives the model


def test_filters_unwrap_strip_and_subset():
    """Catches filters that unwrap the wrong entry or keep keys the model lacks."""
    state = _net().state_dict()
    for key in weights.WRAPPER_KEYS:
        assert unwrap_checkpoint({key: state, "meta": {}}) is state
    assert unwrap_checkpoint(state) is state
    with pytest.raises(ValueError, match="expected a dict"):
        unwrap_checkpoint([1, 2])
    assert set(keep_model_keys({"model_state_dict": {**state, "rnn.weight": torch.zeros(1)}}, _net())) == set(state)


def test_unreadable_file_is_a_value_error_naming_it(tmp_path):
    """Catches a loader that lets torch's unpickling error through without the path."""
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"junk\.pt: not a readable torch file"):
        load_state(_net(), tmp_path / "junk.pt")
