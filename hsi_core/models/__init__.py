"""The book's models, importable from one place and buildable by name.

    from hsi_core.models import HSI, HSIBaseline, CMRNet, UNISAL, MSINet, SmallCNN, build_model

Classes are imported on first use (HSI pulls in open_clip), so ``import hsi_core.models`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from hsi_core.models.registry import MODELS, build_model, model_names

_LAZY = {
    "HSI": "hsi", "HSIBaseline": "hsi", "load_hsi": "hsi", "save_hsi": "hsi",
    "CMRNet": "cmrnet", "count_parameters": "cmrnet",
    "UNISAL": "unisal", "load_unisal_weights": "unisal",
    "MSINet": "msinet", "load_msinet_weights": "msinet",
    "ImageNetClassifier": "classifier", "SmallCNN": "classifier", "resnet50": "classifier",
}

__all__ = ["MODELS", "build_model", "model_names", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"hsi_core.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hsi_core.models' has no attribute {name!r}")
