"""Deprecated: moved to :mod:`hsi_core.experiments.xai_benchmark` (HSI Table 4). Importing this module
warns; its names are the new module's, and the names deprecated here before the move keep warning."""

from __future__ import annotations

import warnings
from typing import Any

import torch

from hsi_core import maps as saliency_maps
from hsi_core import metrics
from hsi_core.experiments import xai_benchmark as _moved
from hsi_core.experiments.xai_benchmark import *  # noqa: F401,F403 (the moved module's public names)

warnings.warn("hsi_core.benchmark_xai moved to hsi_core.experiments.xai_benchmark; the old path goes in the "
              "next release", DeprecationWarning, stacklevel=2)


def __getattr__(name: str) -> Any:
    # names kept for one release after their move
    if name == "LOWER_IS_BETTER":
        warnings.warn("hsi_core.benchmark_xai.LOWER_IS_BETTER is deprecated; use "
                      "hsi_core.metrics.lower_is_better(metric)", DeprecationWarning, stacklevel=2)
        return {m: metrics.lower_is_better(m) for m in _moved.METRICS}
    if name == "top_fraction_fixations":
        warnings.warn("hsi_core.benchmark_xai.top_fraction_fixations is deprecated and goes in the next release: use "
                      "hsi_core.maps.top_fraction_fixations(maps, fraction, method='count')", DeprecationWarning,
                      stacklevel=2)
        return lambda m, fraction=0.05: saliency_maps.top_fraction_fixations(m, fraction, method="count")
    if name == "match_size":
        warnings.warn("hsi_core.benchmark_xai.match_size is deprecated and goes in the next release: use "
                      "hsi_core.maps.resize", DeprecationWarning, stacklevel=2)
        return lambda m, size: saliency_maps.resize(m.float() if isinstance(m, torch.Tensor) else m, size)
    if not name.startswith("__") and hasattr(_moved, name):
        return getattr(_moved, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
