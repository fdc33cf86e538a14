"""Training losses, built on the differentiable kernels of ``hsi_core.metrics``.

- ``saliency_loss``: HSI Eq. 4, ``L = l1 KL + l2 CC + l3 NSS`` with ``(l1, l2, l3) = (1, -1, -1)``
  (Eq. 5-7: KL and CC against the saliency map, NSS at the fixations), averaged over the batch.
- ``normalized_l1_loss``: CMRNet's loss (loggabor paper, Eq. 11-12), the L1 distance between the
  sum-normalised prediction and ground truth, so the loss ignores each map's maximum.
"""

from __future__ import annotations

from torch import Tensor

from hsi_core.metrics import torch_cc, torch_kl_div, torch_nss


def saliency_loss(pred: Tensor, saliency: Tensor, fixations: Tensor,
                  weights: tuple[float, float, float] = (1.0, -1.0, -1.0)) -> Tensor:
    """HSI Eq. 4 on ``(B, H, W)`` maps."""
    l1, l2, l3 = weights
    return (l1 * torch_kl_div(pred, saliency) + l2 * torch_cc(pred, saliency) + l3 * torch_nss(pred, fixations)).mean()


def normalized_l1_loss(pred: Tensor, gt: Tensor, eps: float = 1e-12) -> Tensor:
    """CMRNet Eq. 11-12: ``sum_i |p_i - g_i|`` of sum-normalised ``(B, H, W)`` maps, batch mean."""
    p = pred.flatten(1)
    g = gt.flatten(1)
    p = p / (p.sum(1, keepdim=True) + eps)
    g = g / (g.sum(1, keepdim=True) + eps)
    return (p - g).abs().sum(1).mean()
