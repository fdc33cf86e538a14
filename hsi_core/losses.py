"""Training losses, built on the differentiable kernels of ``hsi_core.metrics``.

HSI paper ("HSI: Computational Model", "Loss Function", "Pretraining and Finetuning"):

- ``saliency_loss``: HSI Eq. 4, ``L = l1 KL + l2 CC + l3 NSS`` with ``(l1, l2, l3) = (1, -1, -1)``
  (HSI Eq. 5-7: KL and CC against the saliency map, NSS at the fixations), averaged over the batch.
  Lower is better: KL falls, CC and NSS rise as the prediction improves.
- ``object_probability``: HSI Eq. 3, the proxy ``P~(obj_n | x_ij)`` from the score maps: a softmax over
  the objects at every pixel times a softmax over the pixels of each object's map, up-sampled.
- ``marginal_saliency``: HSI Eq. 9 (from HSI Eq. 2), ``H(p) = sum_n p_n * P~(obj_n)``.
- ``pretrain_loss``: HSI Eq. 8 + HSI Eq. 10 = HSI Eq. 11; ``finetune_loss``: HSI Eq. 12.

Loggabor paper: ``normalized_l1_loss``, CMRNet's loss (LG Eq. 11-12), the L1 distance between the
sum-normalised prediction and ground truth, so the loss ignores each map's maximum.

Objects per image vary; batched tensors hold ``N`` slots per image and a boolean ``valid (B, N)``
mask says which are real. Padded slots never enter a softmax, a sum or a mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hsi_core.metrics import torch_cc, torch_kl_div, torch_nss

Weights = tuple[float, float, float]
PAPER_WEIGHTS: Weights = (1.0, -1.0, -1.0)


def _check_maps(pred: Tensor, gt_saliency: Tensor, gt_fixations: Tensor, where: str) -> None:
    if pred.ndim != 3 or pred.shape != gt_saliency.shape or pred.shape != gt_fixations.shape:
        raise ValueError(f"{where}: expected three (B, H, W) tensors of one shape, got prediction {tuple(pred.shape)}, "
                         f"saliency {tuple(gt_saliency.shape)}, fixations {tuple(gt_fixations.shape)}")


def saliency_loss_per_map(pred: Tensor, gt_saliency: Tensor, gt_fixations: Tensor,
                          weights: Weights = PAPER_WEIGHTS) -> Tensor:
    """HSI Eq. 4 for every map of a ``(B, H, W)`` batch: ``l1 KL(P, Q) + l2 CC(P, Q) + l3 NSS(P, F)`` -> ``(B,)``."""
    _check_maps(pred, gt_saliency, gt_fixations, "saliency_loss")
    l1, l2, l3 = weights
    return (l1 * torch_kl_div(pred, gt_saliency) + l2 * torch_cc(pred, gt_saliency)
            + l3 * torch_nss(pred, gt_fixations))


def saliency_loss(pred: Tensor, gt_saliency: Tensor, gt_fixations: Tensor,
                  weights: Weights = PAPER_WEIGHTS) -> Tensor:
    """HSI Eq. 4 (with HSI Eq. 5-7) on ``(B, H, W)`` maps, averaged over the batch; paper weights (1, -1, -1)."""
    return saliency_loss_per_map(pred, gt_saliency, gt_fixations, weights).mean()


def finetune_loss(pred: Tensor, gt_saliency: Tensor, gt_fixations: Tensor,
                  weights: Weights = PAPER_WEIGHTS) -> Tensor:
    """HSI Eq. 12: ``L(p_1, q_obj1, f_obj1)``, the prediction for the image's one label against its map."""
    return saliency_loss(pred, gt_saliency, gt_fixations, weights)


def _valid_mask(valid: Tensor | None, shape: tuple[int, int], device: torch.device) -> Tensor:
    if valid is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    if tuple(valid.shape) != tuple(shape):
        raise ValueError(f"valid mask of shape {tuple(valid.shape)} does not match (B, N) = {tuple(shape)}")
    valid = valid.to(device=device, dtype=torch.bool)
    empty = ~valid.any(1)
    if empty.any():
        raise ValueError(f"images {empty.nonzero().flatten().tolist()[:10]} of the batch have no valid object; "
                         "drop images without pseudo-labels before batching")
    return valid


def object_probability(score_maps: Tensor, out_size: tuple[int, int] | int,
                       valid: Tensor | None = None) -> Tensor:
    """HSI Eq. 3: ``P~(obj_n | x) = Up[softmax_n(a)_n * softmax_ij(a_n)_ij]`` from ``(B, N, h, w)`` score maps.

    The first softmax runs over the ``N`` objects at each position, the second over the ``h*w``
    positions of each object's map; their product is up-sampled bilinearly to ``out_size``.
    Padded objects (``valid`` False) get probability 0 and do not enter the object softmax.
    Returns ``(B, N, H, W)``.
    """
    if score_maps.ndim != 4:
        raise ValueError(f"object_probability: expected (B, N, h, w) score maps, got {tuple(score_maps.shape)}")
    b, n, h, w = score_maps.shape
    mask = _valid_mask(valid, (b, n), score_maps.device)
    masked = score_maps.masked_fill(~mask[:, :, None, None], float("-inf"))
    over_objects = torch.softmax(masked, dim=1)
    over_pixels = torch.softmax(score_maps.flatten(2), dim=2).view(b, n, h, w)
    prob = (over_objects * over_pixels).masked_fill(~mask[:, :, None, None], 0.0)
    size = (out_size, out_size) if isinstance(out_size, int) else tuple(out_size)
    return F.interpolate(prob, size=size, mode="bilinear", align_corners=False)


def marginal_saliency(conditional: Tensor, obj_prob: Tensor, valid: Tensor | None = None) -> Tensor:
    """HSI Eq. 9 (HSI Eq. 2 with the HSI Eq. 3 proxy): ``H(p) = sum_n p_n * P~(obj_n)``;
    ``(B, N, H, W)`` -> ``(B, H, W)``."""
    if conditional.shape != obj_prob.shape or conditional.ndim != 4:
        raise ValueError(f"marginal_saliency: conditional maps {tuple(conditional.shape)} and object probabilities "
                         f"{tuple(obj_prob.shape)} must both be (B, N, H, W)")
    mask = _valid_mask(valid, tuple(conditional.shape[:2]), conditional.device)
    return (conditional * obj_prob * mask[:, :, None, None].to(conditional.dtype)).sum(1)


def conditional_loss(conditional: Tensor, pseudo_saliency: Tensor, pseudo_fixations: Tensor,
                     valid: Tensor | None = None, weights: Weights = PAPER_WEIGHTS) -> Tensor:
    """HSI Eq. 8: ``L1 = 1/N sum_n L(p_n, q~_objn, f~_objn)`` per image, then the batch mean."""
    if not (conditional.shape == pseudo_saliency.shape == pseudo_fixations.shape) or conditional.ndim != 4:
        raise ValueError(f"conditional_loss: expected (B, N, H, W) prediction, pseudo saliency and pseudo fixations, "
                         f"got {tuple(conditional.shape)}, {tuple(pseudo_saliency.shape)}, {tuple(pseudo_fixations.shape)}")
    b, n, h, w = conditional.shape
    mask = _valid_mask(valid, (b, n), conditional.device)
    flat = mask.flatten()
    per_map = saliency_loss_per_map(conditional.reshape(b * n, h, w)[flat], pseudo_saliency.reshape(b * n, h, w)[flat],
                                    pseudo_fixations.reshape(b * n, h, w)[flat], weights)
    per_image = torch.zeros(b, dtype=per_map.dtype, device=per_map.device)
    per_image = per_image.index_add(0, torch.arange(b, device=mask.device).repeat_interleave(n)[flat], per_map)
    return (per_image / mask.sum(1).to(per_map.dtype)).mean()


def pretrain_loss_terms(conditional: Tensor, score_maps: Tensor, pseudo_saliency: Tensor, pseudo_fixations: Tensor,
                        saliency: Tensor, fixations: Tensor, valid: Tensor | None = None,
                        weights: Weights = PAPER_WEIGHTS) -> tuple[Tensor, Tensor]:
    """``(L1, L2)`` of HSI Eq. 8 and HSI Eq. 10: conditional maps against pseudo-labels, and the marginal map
    ``H(p)`` (HSI Eq. 9, with ``P~`` from the ``(B, N, h, w)`` score maps by HSI Eq. 3) against the full
    passive-viewing map and fixations ``(B, H, W)``."""
    l1 = conditional_loss(conditional, pseudo_saliency, pseudo_fixations, valid, weights)
    prob = object_probability(score_maps, tuple(conditional.shape[-2:]), valid)
    l2 = saliency_loss(marginal_saliency(conditional, prob, valid), saliency, fixations, weights)
    return l1, l2


def pretrain_loss(conditional: Tensor, score_maps: Tensor, pseudo_saliency: Tensor, pseudo_fixations: Tensor,
                  saliency: Tensor, fixations: Tensor, valid: Tensor | None = None,
                  weights: Weights = PAPER_WEIGHTS) -> Tensor:
    """HSI Eq. 11: ``L_pretrain = L1 + L2`` (see ``pretrain_loss_terms``)."""
    l1, l2 = pretrain_loss_terms(conditional, score_maps, pseudo_saliency, pseudo_fixations, saliency, fixations,
                                 valid, weights)
    return l1 + l2


def normalized_l1_loss(pred: Tensor, gt: Tensor, eps: float = 1e-12) -> Tensor:
    """CMRNet's loss, LG Eq. 11-12: ``sum_i |p_i - g_i|`` of sum-normalised ``(B, H, W)`` maps, batch mean."""
    p = pred.flatten(1)
    g = gt.flatten(1)
    p = p / (p.sum(1, keepdim=True) + eps)
    g = g / (g.sum(1, keepdim=True) + eps)
    return (p - g).abs().sum(1).mean()
