"""Image classifiers whose decisions the XAI methods explain (HSI paper, "HSI-Generated Human Saliency Map").

* ``resnet50(weights)``: torchvision's ResNet-50 with an ImageNet state dict read from a LOCAL file (nothing is
  downloaded). The paper's model is IMAGENET1K_V2 (its "95.434 % Top-5"; V1 has 92.862 %): ``RESNET50_HELP``. ``ImageNetClassifier`` wraps it so that it takes the project's
  ``[0, 1]`` RGB images and applies the ImageNet mean/std itself.
* ``SmallCNN``: a four-block CNN, trained on the demo world's glyphs by
  ``hsi_core.experiments.small_cnn.train_small_cnn`` (a model module does not import the training loop),
  so that at demo scale the explanations explain a real decision; ``load_small_cnn`` reloads it.

Every classifier here exposes ``cam_layer`` (the last convolutional block, where Grad-CAM looks) and
``class_names``; ``hsi_core.xai`` uses both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hsi_core.models.inputs import IMAGENET_MEAN, IMAGENET_STD
from hsi_core.models.weights import apply_state, load_state, read_checkpoint, strip_prefixes, unwrap_checkpoint

#: The paper's classifier: "ResNet-50 ... 95.434 % Top-5" is torchvision's IMAGENET1K_V2 (top-1 80.858 %,
#: top-5 95.434 %); IMAGENET1K_V1 is top-5 92.862 %. Explaining another network changes Table 4.
RESNET50_WEIGHTS = {"IMAGENET1K_V2": ("resnet50-11ad3fa6.pth", 95.434), "IMAGENET1K_V1": ("resnet50-0676ba61.pth", 92.862)}
RESNET50_HELP = (
    "Download torchvision's ImageNet ResNet-50 weights IMAGENET1K_V2 "
    "(https://download.pytorch.org/models/resnet50-11ad3fa6.pth): the paper's classifier, whose '95.434 % "
    "Top-5' is V2's published accuracy (IMAGENET1K_V1, resnet50-0676ba61.pth, has 92.862 % and explains a "
    "different network, so Table 4 changes). Get it on a machine with network access, put it anywhere "
    "(e.g. weights/resnet50-11ad3fa6.pth in the repository) and pass its path as weights= / --resnet-weights."
)


class ImageNetClassifier(nn.Module):
    """A torchvision classifier taking ``[0, 1]`` RGB images ``(B, 3, H, W)``; normalises with the ImageNet
    mean/std, returns logits ``(B, 1000)``. ``cam_layer`` is ``layer4`` (the last convolutional block)."""

    def __init__(self, net: nn.Module, class_names: Sequence[str] | None = None, weights_source: str = "") -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.class_names = list(class_names) if class_names is not None else None
        self.weights_source = weights_source

    @property
    def cam_layer(self) -> nn.Module:
        return self.net.layer4

    def forward(self, images: Tensor) -> Tensor:
        return self.net((images - self.mean.to(images.dtype)) / self.std.to(images.dtype))


def resnet50(weights: str | Path, device: str | torch.device = "cpu",
             class_names: Sequence[str] | None = None) -> ImageNetClassifier:
    """torchvision ResNet-50 with an ImageNet state dict from the local file ``weights`` (eval mode).

    ``FileNotFoundError`` (saying where to get the file) when it is missing; ``ValueError`` when it is not
    a ResNet-50 state dict.
    """
    from torchvision.models import resnet50 as tv_resnet50

    path = Path(weights)
    net = load_state(tv_resnet50(weights=None), path, filter_fn=strip_prefixes("module.", "net."),
                     name="ResNet-50 weights", expected="a torchvision ResNet-50 ImageNet state dict",
                     download=RESNET50_HELP)
    return ImageNetClassifier(net, class_names, str(path)).to(device).eval()


# ----------------------------------------------------------------------------- demo classifier
def _block(cin: int, cout: int) -> nn.Sequential:
    # nn.ReLU modules (not functional calls, not in place) so that captum's Guided Backprop can hook them
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class SmallCNN(nn.Module):
    """Four conv blocks (three 2x2 max-pools), global average pooling, a linear layer.

    Takes ``[0, 1]`` RGB images of any size; they are resized to ``input_size`` inside (so a model trained on
    64x64 glyphs explains 224x224 images; the maps are up-sampled back by the XAI methods).
    ``cam_layer`` is the last block (``features[-1]``, ``input_size / 8`` cells a side).
    """

    def __init__(self, n_classes: int = 20, width: int = 32, input_size: int = 96,
                 class_names: Sequence[str] | None = None) -> None:
        super().__init__()
        if n_classes < 2 or width < 1 or input_size < 16:
            raise ValueError(f"SmallCNN: need n_classes >= 2, width >= 1, input_size >= 16; got "
                             f"{n_classes}, {width}, {input_size}")
        w = width
        self.features = nn.Sequential(
            _block(3, w), nn.MaxPool2d(2), _block(w, 2 * w), nn.MaxPool2d(2),
            _block(2 * w, 4 * w), nn.MaxPool2d(2), _block(4 * w, 4 * w),
        )
        self.head = nn.Linear(4 * w, n_classes)
        self.input_size = input_size
        self.n_classes = n_classes
        self.width = width
        self.class_names = list(class_names) if class_names is not None else None

    @property
    def cam_layer(self) -> nn.Module:
        return self.features[-1]

    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"SmallCNN: expected (B, 3, H, W) images, got {tuple(images.shape)}")
        x = images
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=False)
        x = self.features(x - 0.5)
        return self.head(x.mean(dim=(2, 3)))

    def config(self) -> dict[str, Any]:
        return {"n_classes": self.n_classes, "width": self.width, "input_size": self.input_size,
                "class_names": self.class_names}


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, targets: Tensor, device: str | torch.device = "cpu",
             batch_size: int = 64) -> float:
    """Top-1 accuracy of ``model`` on ``images (N, 3, H, W)`` in [0, 1]."""
    model.eval().to(device)
    preds = torch.cat([model(images[i:i + batch_size].to(device)).argmax(1).cpu()
                       for i in range(0, len(images), batch_size)])
    return float((preds == targets.cpu()).float().mean())


def load_small_cnn(path: str | Path, device: str | torch.device = "cpu") -> SmallCNN:
    """A ``SmallCNN`` from a ``fit`` checkpoint (``last.pt``/``best.pt``) written by
    ``hsi_core.experiments.small_cnn.train_small_cnn``."""
    ckpt = read_checkpoint(path, name="SmallCNN checkpoint", weights_only=False,
                           download="Train one with hsi_core.experiments.small_cnn.train_small_cnn")
    meta = ckpt.get("meta", {}) if isinstance(ckpt, dict) else {}
    model = SmallCNN(meta.get("n_classes", 20), meta.get("width", 32), meta.get("input_size", 96),
                     class_names=meta.get("class_names"))
    apply_state(model, ckpt, source=path, filter_fn=unwrap_checkpoint, expected="a SmallCNN training checkpoint")
    return model.to(device).eval()


def __getattr__(name: str) -> Any:
    if name == "train_small_cnn":  # moved: a model module does not import the training loop
        import warnings

        warnings.warn("hsi_core.models.classifier.train_small_cnn moved to hsi_core.experiments.small_cnn",
                      DeprecationWarning, stacklevel=2)
        from hsi_core.experiments.small_cnn import train_small_cnn

        return train_small_cnn
    raise AttributeError(f"module 'hsi_core.models.classifier' has no attribute {name!r}")
