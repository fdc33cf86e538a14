"""What the networks expect of their input, defined once: ImageNet's normalisation constants and
padding to a stride multiple (used by UNISAL, MSI-Net, the ImageNet classifiers and RISE's occluder)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

#: ImageNet mean and standard deviation per RGB channel, for images in [0, 1] (torchvision's constants).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Replicate-pad ``(B, C, H, W)`` at the bottom and right to multiples of ``multiple``."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % multiple, 0, -h % multiple), mode="replicate") if (h % multiple or w % multiple) else x
