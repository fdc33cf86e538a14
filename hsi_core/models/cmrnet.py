"""CMRNet (loggabor paper, Section III): three Cross-concatenated Multi-scale Residual blocks with
max-pooling between them, a dilated inception module, and a small decoder with bicubic up-sampling.

Our reading (the paper gives no channel widths): a 3x3 stem 3->64; CMR(64), pool, CMR(64), pool,
CMR(64); the DIM maps 64 -> Cd with a 1x1 convolution, then sums three dilated 3x3 convolutions at
rates 4, 8, 16, each followed by its own ReLU (``dim_relu="branch"``, default: the paper cites DINet,
Yang et al. 2019, for the DIM, and DINet's code applies the activation inside each dilated branch
before the sum; ``dim_relu="sum"`` is one ReLU after the sum, the first version of this module); the
decoder is two 3x3 Cd convolutions, a 3x3 convolution to one channel, a sigmoid
and bicubic x4 up-sampling. Cd = 80 gives about 2.44 M parameters (the paper: about 2.5 M).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class CMRBlock(nn.Module):
    """LG Eq. 5-10: 3x3 and 5x5 paths, cross-concatenated twice, 1x1 fusion 4C -> C, local residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = channels
        self.t1 = nn.Conv2d(c, c, 3, padding=1)
        self.f1 = nn.Conv2d(c, c, 5, padding=2)
        self.t2 = nn.Conv2d(2 * c, 2 * c, 3, padding=1)
        self.f2 = nn.Conv2d(2 * c, 2 * c, 5, padding=2)
        self.fuse = nn.Conv2d(4 * c, c, 1)

    def forward(self, m: Tensor) -> Tensor:
        t1, f1 = F.relu(self.t1(m)), F.relu(self.f1(m))  # LG Eq. 5, 6
        both = torch.cat([t1, f1], 1)
        t2, f2 = F.relu(self.t2(both)), F.relu(self.f2(both))  # LG Eq. 7, 8
        return self.fuse(torch.cat([t2, f2], 1)) + m  # LG Eq. 9, 10


DIM_RELU = ("branch", "sum")


class DilatedInception(nn.Module):
    """Three parallel dilated 3x3 convolutions (rates 4, 8, 16), summed; ``relu``: ``"branch"`` (a
    ReLU per branch, then the sum: DINet's code) or ``"sum"`` (one ReLU of the sum)."""

    def __init__(self, in_channels: int, channels: int, rates: tuple[int, ...] = (4, 8, 16), *,
                 relu: str = "branch") -> None:
        super().__init__()
        if relu not in DIM_RELU:
            raise ValueError(f"DilatedInception: relu must be one of {DIM_RELU}, got {relu!r}")
        self.relu = relu
        self.reduce = nn.Conv2d(in_channels, channels, 1)
        self.branches = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=r, dilation=r) for r in rates)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.reduce(x))
        if self.relu == "branch":
            return sum(F.relu(branch(x)) for branch in self.branches)
        return F.relu(sum(branch(x) for branch in self.branches))


class CMRNet(nn.Module):
    """Image ``(B, 3, H, W)`` in [0, 1] -> saliency ``(B, H, W)`` in (0, 1) (H, W multiples of 4)."""

    #: Block outputs the log-gabor explanation rebuilds besides the convolutions: M_n after each
    #: residual add (LG Eq. 10) and the DIM's output (``hsi_core.loggabor.default_layer_names``).
    explained_blocks = ("block1", "block2", "block3", "dim")

    def __init__(self, width: int = 64, dim_channels: int = 80, *, dim_relu: str = "branch") -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.block1, self.block2, self.block3 = CMRBlock(width), CMRBlock(width), CMRBlock(width)
        self.dim = DilatedInception(width, dim_channels, relu=dim_relu)
        self.decode1 = nn.Conv2d(dim_channels, dim_channels, 3, padding=1)
        self.decode2 = nn.Conv2d(dim_channels, dim_channels, 3, padding=1)
        self.head = nn.Conv2d(dim_channels, 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        x = F.relu(self.stem(x))
        x = F.max_pool2d(self.block1(x), 2)
        x = F.max_pool2d(self.block2(x), 2)
        x = self.dim(self.block3(x))
        x = F.relu(self.decode2(F.relu(self.decode1(x))))
        x = torch.sigmoid(self.head(x))
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False).clamp(0, 1)[:, 0]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
