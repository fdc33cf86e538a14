"""Old import paths keep working for one release, each with a DeprecationWarning that names the new home.
Catches: an old name removed (AttributeError / ImportError), one that no longer warns, or one that warns but
gives something other than the new definition."""

from __future__ import annotations

import pytest

from hsi_core import datasets


def test_demo_hsb_classes_warns_and_is_the_datasets_tuple():
    from hsi_core import demo

    with pytest.warns(DeprecationWarning, match="hsi_core.datasets"):
        old = demo.HSB_CLASSES
    assert old is datasets.HSB_CLASSES and len(old) == 20
    with pytest.warns(DeprecationWarning):
        from hsi_core.demo import HSB_CLASSES  # noqa: F401
    with pytest.raises(AttributeError):
        demo.NOT_A_NAME


def test_moved_map_helpers_warn_and_give_the_same_numbers():
    """Each old helper warns and equals its hsi_core.maps replacement with the caller's old semantics (eps 1e-12
    floor for baselines/loggabor, float32 for resize_map and match_size, a top-k count for the benchmark)."""
    import numpy as np
    import torch

    import warnings

    from hsi_core import baselines, loggabor, maps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from hsi_core import benchmark_xai as bx

    x = torch.rand(2, 6, 8, dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match="hsi_core.maps.minmax"):
        assert torch.equal(baselines.minmax(x), maps.minmax(x, eps=1e-12))
    with pytest.warns(DeprecationWarning, match="hsi_core.maps.minmax"):
        assert torch.equal(loggabor.minmax(x), maps.minmax(x, eps=1e-12))
    with pytest.warns(DeprecationWarning, match="hsi_core.maps.resize"):
        assert torch.equal(loggabor.resize(x, (3, 4)), maps.resize(x, (3, 4)))
    with pytest.warns(DeprecationWarning, match="hsi_core.maps.resize"):
        old = bx.match_size(x, (3, 4))
    assert old.dtype == torch.float32 and torch.equal(old, maps.resize(x.float(), (3, 4)))
    with pytest.warns(DeprecationWarning, match="method='count'"):
        assert torch.equal(bx.top_fraction_fixations(x, 0.1), maps.top_fraction_fixations(x, 0.1, method="count"))
    with pytest.warns(DeprecationWarning, match="hsi_core.maps.resize"):
        old = datasets.resize_map(x[0].numpy(), (3, 4))
    assert old.dtype == torch.float32 and torch.equal(old, maps.resize(np.float32(x[0].numpy()), (3, 4)))
    with pytest.warns(DeprecationWarning):
        from hsi_core.datasets import resize_map  # noqa: F401
    for module in (baselines, loggabor, bx, datasets):
        with pytest.raises(AttributeError):
            module.not_a_name


def test_layer_filter_summary_warns_that_eq3_weights_are_not_mixing_weights():
    import torch
    import torch.nn as nn

    from hsi_core import loggabor

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU()).eval()
    result = loggabor.reconstruct(net, torch.rand(1, 1, 16, 16), scales=(1.0,))
    with pytest.warns(DeprecationWarning, match="filter_choice_shares"):
        rows = loggabor.layer_filter_summary(result)
    assert len(rows) == len(result.batched)


def test_benchmark_xai_moved_to_experiments_and_the_old_path_warns():
    """Catches: the old import path removed, silent, or giving other objects than the new module's."""
    import importlib

    from hsi_core.experiments import xai_benchmark

    with pytest.warns(DeprecationWarning, match="hsi_core.experiments.xai_benchmark"):
        import hsi_core.benchmark_xai as old

        importlib.reload(old)
    for name in ("table4", "run_benchmark", "extended_ranking", "XAIBenchmarkConfig", "METRICS", "PAPER_TABLE4"):
        assert getattr(old, name) is getattr(xai_benchmark, name), name
