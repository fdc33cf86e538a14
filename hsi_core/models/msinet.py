"""MSI-Net (Kroner et al., Neural Networks 2020), as used by the loggabor paper.

Encoder: VGG16's 13 convolutions; the 4th pooling keeps the resolution (2x2, stride 1, "same"),
the 5th block's convolutions are dilated by 2, and the outputs after pool3, pool4 and pool5
(256 + 512 + 512 channels, stride 8) are concatenated. ASPP: a 1x1 convolution, three 3x3
convolutions dilated by 4, 8 and 12, and the image mean through a 1x1 convolution, each with 256
channels, concatenated and fused by a 1x1 convolution. Decoder: three (bilinear x2, 3x3 conv)
steps with 128, 64 and 32 channels and a 3x3 convolution to one channel; the output is min-max
normalised per image. About 24.9 M parameters.

Inputs follow the released model: RGB in [0, 255] minus the per-channel means
(103.939, 116.779, 123.68), and TensorFlow's legacy bilinear resizing (no half-pixel offset).
Module names mirror the TensorFlow variable scopes (``conv1/conv1_1/kernel`` ->
``encoder.conv1_1.weight``); ``scripts/convert_msinet_weights.py`` converts the released weights.
The released model's 46 weight variables and shapes (derived from the authors' ``model.py``) are
in ``tests/published_layouts/msinet_salicon_tf_layout.json``, with a reference output of their
graph that ours reproduces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hsi_core.models.inputs import pad_to_multiple
from hsi_core.models.weights import load_state, unwrap_checkpoint

MSINET_URL = "https://github.com/alexanderkroner/saliency (weights: python main.py test -d salicon downloads them)"
VGG_MEAN = (103.939, 116.779, 123.68)
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def tf_resize_bilinear(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``tf.image.resize_bilinear`` with ``align_corners=False, half_pixel_centers=False``:
    output pixel i samples input position ``i * in / out`` (clamped), vectorised with gathers."""
    (h, w), (oh, ow) = x.shape[-2:], size

    def axis(n_in: int, n_out: int) -> tuple[Tensor, Tensor, Tensor]:
        pos = torch.arange(n_out, device=x.device, dtype=torch.float32) * (n_in / n_out)
        lo = pos.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        return lo, hi, (pos - lo).to(x.dtype)

    y0, y1, fy = axis(h, oh)
    x0, x1, fx = axis(w, ow)
    rows = x[..., y0, :] * (1 - fy)[:, None] + x[..., y1, :] * fy[:, None]
    return rows[..., x0] * (1 - fx) + rows[..., x1] * fx


def _pool_same_stride1(x: Tensor) -> Tensor:
    """TensorFlow's 2x2 max-pooling with stride 1 and "same" padding (pads right and bottom)."""
    return F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 2, 1)


class MSINetEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        inp = 3
        for b, widths in enumerate(VGG16_BLOCKS, start=1):
            for i, width in enumerate(widths, start=1):
                dilation = 2 if b == 5 else 1
                self.add_module(f"conv{b}_{i}", nn.Conv2d(inp, width, 3, padding=dilation, dilation=dilation))
                inp = width

    def forward(self, x: Tensor) -> Tensor:
        outputs = []
        for b, widths in enumerate(VGG16_BLOCKS, start=1):
            for i in range(1, len(widths) + 1):
                x = F.relu(getattr(self, f"conv{b}_{i}")(x))
            x = F.max_pool2d(x, 2, 2) if b <= 3 else _pool_same_stride1(x)
            if b >= 3:
                outputs.append(x)
        return torch.cat(outputs, 1)  # (B, 1280, H/8, W/8)


class ASPP(nn.Module):
    def __init__(self, inp: int = 1280, width: int = 256, rates: tuple[int, ...] = (4, 8, 12)) -> None:
        super().__init__()
        self.conv1_1 = nn.Conv2d(inp, width, 1)
        for k, rate in enumerate(rates, start=2):
            self.add_module(f"conv1_{k}", nn.Conv2d(inp, width, 3, padding=rate, dilation=rate))
        self.conv1_5 = nn.Conv2d(inp, width, 1)
        self.conv2 = nn.Conv2d(5 * width, width, 1)

    def forward(self, x: Tensor) -> Tensor:
        branches = [F.relu(getattr(self, f"conv1_{k}")(x)) for k in range(1, 5)]
        context = F.relu(self.conv1_5(x.mean((2, 3), keepdim=True))).expand(-1, -1, *x.shape[-2:])
        return F.relu(self.conv2(torch.cat(branches + [context], 1)))


class MSINetDecoder(nn.Module):
    def __init__(self, inp: int = 256, widths: tuple[int, ...] = (128, 64, 32)) -> None:
        super().__init__()
        for k, width in enumerate(widths, start=1):
            self.add_module(f"conv{k}", nn.Conv2d(inp, width, 3, padding=1))
            inp = width
        self.conv4 = nn.Conv2d(inp, 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        for k in range(1, 4):
            x = tf_resize_bilinear(x, (2 * x.shape[-2], 2 * x.shape[-1]))
            x = F.relu(getattr(self, f"conv{k}")(x))
        return self.conv4(x)[:, 0]


class MSINet(nn.Module):
    """Image ``(B, 3, H, W)`` in [0, 1] -> saliency ``(B, H, W)`` in [0, 1] (min-max per image).
    Sizes that are not multiples of 8 (the authors use 240 x 320 for SALICON) are padded and cropped."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(VGG_MEAN).view(1, 3, 1, 1), persistent=False)
        self.encoder, self.aspp, self.decoder = MSINetEncoder(), ASPP(), MSINetDecoder()

    def logits(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"MSINet: expected images (B, 3, H, W), got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        padded = pad_to_multiple(images * 255.0 - self.mean, 8)
        return self.decoder(self.aspp(self.encoder(padded)))[:, :h, :w]

    def forward(self, images: Tensor) -> Tensor:
        out = self.logits(images)
        flat = out.flatten(1)
        lo, hi = flat.amin(1).view(-1, 1, 1), flat.amax(1).view(-1, 1, 1)
        return (out - lo) / (hi - lo + 1e-7)


def tf_name_to_torch(name: str) -> str | None:
    """TensorFlow variable name (``conv1/conv1_1/kernel``, ``aspp/conv2/bias``, ``decoder/conv4/kernel``)
    -> our state-dict key, or ``None`` for names that are not MSI-Net weights."""
    name = name.removesuffix(":0")
    parts = name.split("/")
    if len(parts) != 3 or parts[2] not in ("kernel", "bias"):
        return None
    scope, layer, kind = parts
    suffix = "weight" if kind == "kernel" else "bias"
    if scope.startswith("conv") and layer.startswith(scope + "_"):
        return f"encoder.{layer}.{suffix}"
    if scope in ("aspp", "decoder"):
        return f"{scope}.{layer}.{suffix}"
    return None


def state_dict_from_tf(arrays: Mapping[str, np.ndarray]) -> dict[str, Tensor]:
    """Map TensorFlow arrays (kernels HWIO) to an MSI-Net state dict (OIHW). Raises ``ValueError``
    when a weight is missing or has the wrong shape."""
    own = MSINet().state_dict()
    out: dict[str, Tensor] = {}
    for name, value in arrays.items():
        key = tf_name_to_torch(name)
        if key is None or key not in own:
            continue
        t = torch.as_tensor(np.asarray(value, dtype=np.float32))
        if t.ndim == 4:
            t = t.permute(3, 2, 0, 1)
        if tuple(t.shape) != tuple(own[key].shape):
            raise ValueError(f"MSI-Net weight {name}: shape {tuple(t.shape)} after transposition, expected {tuple(own[key].shape)}")
        out[key] = t.contiguous()
    missing = sorted(set(own) - set(out))
    if missing:
        raise ValueError(f"MSI-Net weights incomplete: {len(missing)} missing, e.g. {missing[:3]}")
    return out


def from_tf_names(checkpoint: Any, model: nn.Module | None = None) -> Mapping[str, Any]:
    """Filter function for :func:`hsi_core.models.weights.load_state`: a state dict keyed by TensorFlow
    variable names (``conv1/conv1_1/kernel``) goes through :func:`state_dict_from_tf`; one of ours passes as is."""
    state = unwrap_checkpoint(checkpoint, model)
    return state_dict_from_tf(state) if any("/" in k for k in state) else state


def read_msinet_file(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """An ``.npz`` of ``{tf variable name: array}`` (what ``scripts/convert_msinet_weights.py`` accepts) or a
    torch file (the script's output), read with ``weights_only=True``."""
    try:
        if path.suffix == ".npz":
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        return torch.load(str(path), map_location=map_location, weights_only=True)
    except Exception as error:
        raise ValueError(f"{path}: not a readable torch file or .npz ({str(error).splitlines()[0][:300]})") from error


def load_msinet_weights(model: MSINet, path: str | Path, *, map_location: str | torch.device = "cpu") -> MSINet:
    """Load a state dict written by ``scripts/convert_msinet_weights.py`` (or an ``.npz`` / torch file of the
    released TensorFlow arrays, converted on the way by :func:`state_dict_from_tf`)."""
    return load_state(model, path, filter_fn=from_tf_names, name="MSI-Net weights", expected="an MSI-Net state dict",
                      download=f"Get the released SALICON model from {MSINET_URL}, convert it with "
                               "scripts/convert_msinet_weights.py and pass the .pt file",
                      reader=lambda p: read_msinet_file(p, map_location))
