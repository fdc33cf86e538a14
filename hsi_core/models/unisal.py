"""UNISAL, static-image path (Droste, Jiao & Noble, ECCV 2020), as used by the loggabor paper.

A MobileNetV2 encoder (outputs at strides 32, 16 and 8), 16 learned Gaussian prior maps
concatenated to the deepest features, a decoder of inverted-residual blocks with two bilinear x2
up-samplings and skip connections, a 1x1 "adaptation" convolution, a 41x41 smoothing convolution
and a spatial softmax. For static images the recurrent (ConvGRU) part is bypassed, so it is left
out here; only the SALICON-specific BatchNorm, adaptation, smoothing and Gaussian parameters are
kept. With these parts the model has about 3.19 M parameters (LG Table IV gives 15.5,
which matches the size of the checkpoint in MB, not the parameter count).

Module and parameter names follow the published ``weights_best.pth`` (e.g.
``cnn.features.3.conv.0.weight``, ``upsampling_2.inv_res.conv.1.bn_SALICON.running_mean``,
``coarse_gaussians_salicon``), so :func:`load_unisal_weights` loads the authors' file; its keys
for the video sources and the RNN are ignored. The file's 835 keys and shapes, derived from the
authors' ``unisal/model.py``, are in ``tests/published_layouts/unisal_weights_best_layout.json``
with a reference output of their model that ours reproduces. Without weights the model trains
with our loop.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import product
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hsi_core.models.inputs import IMAGENET_MEAN, IMAGENET_STD, pad_to_multiple
from hsi_core.models.weights import keep_model_keys, load_state

UNISAL_URL = "https://github.com/rdroste/unisal (training_runs/pretrained_unisal/weights_best.pth)"
#: MobileNetV2 stages: expansion t, channels c, repeats n, stride s.
MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class SourceBN(nn.Module):
    """The SALICON member of UNISAL's domain-specific BatchNorm (key ``bn_SALICON``)."""

    def __init__(self, channels: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.bn_SALICON = nn.BatchNorm2d(channels, momentum=momentum)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn_SALICON(x)


def _bn(channels: int, source_bn: bool, momentum: float = 0.1) -> nn.Module:
    return SourceBN(channels) if source_bn else nn.BatchNorm2d(channels, momentum=momentum)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: (1x1 expand) -> 3x3 depthwise -> 1x1 linear, residual when shapes match.
    ``stride`` is recorded but applied by the caller (UNISAL keeps the full-resolution output of a
    stage's first block as a skip feature, then subsamples)."""

    def __init__(self, inp: int, oup: int, stride: int, expand: int, *, source_bn: bool = False,
                 momentum: float = 0.1) -> None:
        super().__init__()
        self.stride = stride
        self.use_res = stride == 1 and inp == oup
        hidden = round(inp * expand)
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(inp, hidden, 1, bias=False), _bn(hidden, source_bn, momentum), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False), _bn(hidden, source_bn, momentum),
                   nn.ReLU6(), nn.Conv2d(hidden, oup, 1, bias=False), _bn(oup, source_bn, momentum)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 features (``features.0`` .. ``features.18``) returning strides 32, 16 and 8."""

    def __init__(self, last_channel: int = 1280) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6())]
        channels = 32
        for t, c, n, s in MOBILENET_V2:
            for i in range(n):
                layers.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                channels = c
        layers.append(nn.Sequential(nn.Conv2d(channels, last_channel, 1, bias=False), nn.BatchNorm2d(last_channel), nn.ReLU6()))
        self.features = nn.Sequential(*layers)
        self.out_channels, self.skip_2x_channels, self.skip_4x_channels = last_channel, 160, 64
        # indices of the first block of the 64- and 160-channel stages: their (pre-stride) outputs are the skips
        self._skip_4x, self._skip_2x = 7, 14

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        skip_4x = skip_2x = x
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index == self._skip_4x:
                skip_4x = x
            elif index == self._skip_2x:
                skip_2x = x
            if index > 0 and getattr(layer, "stride", 1) != 1:
                x = x[..., ::2, ::2]  # the stage's stride, applied after keeping the skip feature
        return x, skip_2x, skip_4x


def _conv1x1_bn(inp: int, oup: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 1, bias=False), SourceBN(oup), nn.ReLU6())


def _skip(inp: int, oup: int, drop: float) -> nn.Sequential:
    hidden = 2 * inp
    return nn.Sequential(OrderedDict([("expansion", _conv1x1_bn(inp, hidden)), ("dropout", nn.Dropout2d(drop)),
                                      ("reduction", nn.Sequential(nn.Conv2d(hidden, oup, 1), SourceBN(oup)))]))


def initial_gaussians() -> Tensor:
    """UNISAL's 16 hand-placed priors ``(16, 2, 2)``: per prior, (y, x) x (mean, log std)."""
    means = list(product([0.25, 0.5, 0.75], repeat=2)) + [(0.5, 0.25), (0.5, 0.5), (0.5, 0.75)] \
        + [(0.25, 0.5), (0.5, 0.5), (0.75, 0.5)] + [(0.5, 0.5)]
    log_std = [(-1.5, -1.5)] * 9 + [(0.0, -1.5)] * 3 + [(-1.5, 0.0)] * 3 + [(0.0, 0.0)]
    return torch.stack([torch.tensor(means), torch.tensor(log_std)], -1)


def gaussian_prior_maps(params: Tensor, size: tuple[int, int], scaling: float = 6.0) -> Tensor:
    """``(G, 2, 2)`` parameters -> ``(G, h, w)`` separable Gaussian maps on a [0, 1] grid, times ``scaling``."""
    ys = torch.linspace(0, 1, size[0], dtype=params.dtype, device=params.device)
    xs = torch.linspace(0, 1, size[1], dtype=params.dtype, device=params.device)
    mu, std = params[..., 0], params[..., 1].exp()  # (G, 2)
    gy = torch.exp(-0.5 * ((ys[None] - mu[:, :1]) / std[:, :1]) ** 2)
    gx = torch.exp(-0.5 * ((xs[None] - mu[:, 1:]) / std[:, 1:]) ** 2)
    return scaling * gy[:, :, None] * gx[:, None, :]


class UNISAL(nn.Module):
    """Image ``(B, 3, H, W)`` in [0, 1] -> saliency ``(B, H, W)``: the predicted fixation density
    scaled to maximum 1 (``log_density`` gives UNISAL's log-softmax output). Other sizes than
    multiples of 32 (SALICON: 288 x 384) are padded, and the output cropped back.

    **Explainable map** (``explained_output``, for ``hsi_core.loggabor``): ``"density"`` (default)
    rebuilds the saliency map itself, after the output nonlinearity (the density exp(log-softmax),
    captured at ``saliency_map``), so the explanation lives in the same space as the map it explains;
    ``"logits"`` stops at the smoothed logits before the log-softmax (the first version). Settable on
    an instance; the weights are the same."""

    EXPLAINED_OUTPUTS = ("density", "logits")

    def __init__(self, smoothing_ksize: int = 41, drop: float = 0.6, *, explained_output: str = "density") -> None:
        super().__init__()
        if explained_output not in self.EXPLAINED_OUTPUTS:
            raise ValueError(f"UNISAL: explained_output must be one of {self.EXPLAINED_OUTPUTS}, got {explained_output!r}")
        self.explained_output = explained_output
        self.saliency_map = nn.Identity()  # the output as a capturable layer (no weights)
        self.smoothing_ksize = smoothing_ksize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.cnn = MobileNetV2Encoder()
        self.coarse_gaussians_salicon = nn.Parameter(initial_gaussians())
        n_gauss = self.coarse_gaussians_salicon.shape[0]
        self.post_cnn = nn.Sequential(OrderedDict(
            [("inv_res", InvertedResidual(self.cnn.out_channels + n_gauss, 256, 1, 1, momentum=0.01))]))
        self.skip_2x = _skip(self.cnn.skip_2x_channels, 128, drop)
        self.upsampling_2 = nn.Sequential(OrderedDict(
            [("inv_res", InvertedResidual(256 + 128, 128, 1, 2, source_bn=True))]))
        self.skip_4x = _skip(self.cnn.skip_4x_channels, 64, drop)
        self.post_upsampling_2 = nn.Sequential(OrderedDict(
            [("inv_res", InvertedResidual(128 + 64, 64, 1, 2, source_bn=True))]))
        self.adaptation_salicon = nn.Sequential(nn.Conv2d(64, 1, 1))
        self.smoothing_salicon = nn.Conv2d(1, 1, smoothing_ksize, bias=False)
        with torch.no_grad():  # initialised as a normalised Gaussian, as the authors do
            g = gaussian_prior_maps(torch.tensor([[[0.5, -2.0], [0.5, -2.0]]]), (smoothing_ksize,) * 2, 1.0)[0]
            self.smoothing_salicon.weight.copy_((g / g.sum()).view(1, 1, smoothing_ksize, smoothing_ksize))

    def log_density(self, images: Tensor) -> Tensor:
        """UNISAL's output: a log-softmax over pixels, ``(B, H, W)``."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"UNISAL: expected images (B, 3, H, W), got {tuple(images.shape)}")
        size = images.shape[-2:]
        padded = pad_to_multiple((images - self.mean) / self.std, 32)
        deep, skip_2x, skip_4x = self.cnn(padded)
        priors = gaussian_prior_maps(self.coarse_gaussians_salicon, tuple(deep.shape[-2:]))
        x = self.post_cnn(torch.cat([deep, priors.expand(deep.shape[0], -1, -1, -1).to(deep.dtype)], 1))
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = torch.cat([x, self.skip_2x(skip_2x)], 1)
        x = F.interpolate(self.upsampling_2(x), scale_factor=2, mode="bilinear", align_corners=False)
        x = self.post_upsampling_2(torch.cat([x, self.skip_4x(skip_4x)], 1))
        x = F.interpolate(self.adaptation_salicon(x), size=padded.shape[-2:], mode="nearest")[..., : size[0], : size[1]]
        x = self.smoothing_salicon(F.pad(x, [self.smoothing_ksize // 2] * 4, mode="replicate"))[:, 0]
        return torch.log_softmax(x.flatten(1), 1).view_as(x)

    @property
    def explained_blocks(self) -> tuple[str, ...]:
        """Layers besides the convolutions that ``loggabor.default_layer_names`` captures."""
        if self.explained_output not in self.EXPLAINED_OUTPUTS:
            raise ValueError(f"UNISAL: explained_output must be one of {self.EXPLAINED_OUTPUTS}, "
                             f"got {self.explained_output!r}")
        return ("saliency_map",) if self.explained_output == "density" else ()

    def forward(self, images: Tensor) -> Tensor:
        log_p = self.log_density(images)
        return self.saliency_map(torch.exp(log_p - log_p.flatten(1).amax(1).view(-1, 1, 1)).unsqueeze(1))[:, 0]


def load_unisal_weights(model: UNISAL, path: str | Path, *, map_location: str | torch.device = "cpu") -> UNISAL:
    """Load the authors' ``weights_best.pth`` (or a checkpoint dict with ``model_state_dict``)
    into ``model``. Every parameter of the static path must be present; the RNN's and the video
    sources' keys are ignored (``weights.keep_model_keys``). Raises ``FileNotFoundError`` saying where
    to get the file, ``ValueError`` listing missing or mis-shaped keys."""
    return load_state(model, path, filter_fn=keep_model_keys, name="UNISAL weights", expected="a UNISAL state dict",
                      download=f"Download weights_best.pth from {UNISAL_URL} and pass its local path",
                      map_location=map_location)
