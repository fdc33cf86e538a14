"""Every model of the book by name: one registry used by the chapters, the evaluation and the CLI.

    from hsi_core.models import build_model, model_names
    net = build_model("UNISAL", weights="weights_best.pth")   # the authors' file, loaded and checked
    net = build_model("CMRNet")                                # randomly initialised

``weights`` is always a local path (nothing downloads); a missing file raises ``FileNotFoundError``
saying where the file is published. Without weights a model is randomly initialised, and callers
report that beside every number (the chapters do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import nn

from hsi_core.models.weights import load_state, unwrap_checkpoint


@dataclass(frozen=True)
class ModelEntry:
    name: str
    paper: str  #: which paper uses it, and for what
    build: Callable[..., nn.Module]  #: ``(weights: path | None, **options) -> model``
    weights: str  #: what ``weights`` is and where it is published


def _hsi(kind: str) -> Callable[..., nn.Module]:
    def build(weights: str | Path | None = None, **options: Any) -> nn.Module:
        from hsi_core.models import hsi

        if weights is not None:
            unknown = set(options) - {"device", "clip_weights", "labels"}
            if unknown:
                raise ValueError(f"{kind}: with weights, the checkpoint sets {sorted(unknown)}; "
                                 "only device, clip_weights and labels can be given")
            return hsi.load_hsi(weights, device=options.get("device"), clip_weights=options.get("clip_weights"),
                                labels=options.get("labels"))
        cls = hsi.HSI if kind == "HSI" else hsi.HSIBaseline
        clip = options.pop("clip_weights", None)
        return cls(clip, **options)

    return build


def _cmrnet(weights: str | Path | None = None, **options: Any) -> nn.Module:
    from hsi_core.models.cmrnet import CMRNet

    model = CMRNet(**options)
    if weights is not None:
        load_state(model, weights, filter_fn=unwrap_checkpoint, name="CMRNet weights", expected="a CMRNet state dict",
                   download="Train one with notebook 07 (hsi_core.training.fit); the paper's weights are not published")
    return model


def _unisal(weights: str | Path | None = None, **options: Any) -> nn.Module:
    from hsi_core.models.unisal import UNISAL, load_unisal_weights

    model = UNISAL(**options)
    return load_unisal_weights(model, weights) if weights is not None else model


def _msinet(weights: str | Path | None = None, **options: Any) -> nn.Module:
    from hsi_core.models.msinet import MSINet, load_msinet_weights

    model = MSINet(**options)
    return load_msinet_weights(model, weights) if weights is not None else model


def _resnet50(weights: str | Path | None = None, **options: Any) -> nn.Module:
    from hsi_core.models import classifier

    if weights is None:
        raise ValueError(f"ResNet-50 needs its ImageNet weights (a local path). {classifier.RESNET50_HELP}")
    return classifier.resnet50(weights, **options)


def _small_cnn(weights: str | Path | None = None, **options: Any) -> nn.Module:
    from hsi_core.models import classifier

    if weights is not None:
        return classifier.load_small_cnn(weights, **options)
    return classifier.SmallCNN(**options)


MODELS: dict[str, ModelEntry] = {e.name: e for e in (
    ModelEntry("HSI", "HSI paper: the human saliency imitator (Figure 7)", _hsi("HSI"),
               "a checkpoint of ours (hsi_core.models.hsi.save_hsi); option clip_weights: OpenAI CLIP RN50"),
    ModelEntry("HSIBaseline", "HSI paper: the image-only baseline of Tables 2-3", _hsi("HSIBaseline"),
               "a checkpoint of ours; option clip_weights: OpenAI CLIP RN50"),
    ModelEntry("CMRNet", "log-gabor paper: CMRNet (Section III)", _cmrnet,
               "a state dict or training checkpoint of ours (not published by the authors)"),
    ModelEntry("UNISAL", "log-gabor paper: UNISAL, static-image path", _unisal,
               "the authors' weights_best.pth (github.com/rdroste/unisal)"),
    ModelEntry("MSI-Net", "log-gabor paper: MSI-Net", _msinet,
               "the output of scripts/convert_msinet_weights.py on the authors' release"),
    ModelEntry("ResNet-50", "HSI paper: the classifier explained in Table 4", _resnet50,
               "torchvision resnet50 IMAGENET1K_V2 state dict (the paper's 95.434 % top-5)"),
    ModelEntry("SmallCNN", "demo scale: the classifier explained on the demo world", _small_cnn,
               "a checkpoint of ours (hsi_core.experiments.small_cnn.train_small_cnn)"),
)}


def model_names() -> list[str]:
    """The names :func:`build_model` knows."""
    return list(MODELS)


def build_model(name: str, weights: str | Path | None = None, **options: Any) -> nn.Module:
    """The model called ``name``, with local ``weights`` or randomly initialised (``weights=None``);
    ``options`` go to its constructor (e.g. ``clip_weights=``, ``labels=`` for HSI). With an HSI checkpoint,
    ``labels=`` are the labels the model must explain (``hsi_core.models.hsi.load_hsi``).

    Args:
        name: a name of ``MODELS`` (``model_names()``).
        weights: a local checkpoint, or ``None`` for random initialisation.
        **options: keywords for the model's constructor.

    Returns:
        The model, an ``nn.Module``.

    Raises:
        ValueError: ``name`` is unknown.
        FileNotFoundError: ``weights`` does not exist (saying what to download and where).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; one of {model_names()}")
    return MODELS[name].build(weights, **options)
