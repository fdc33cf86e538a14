"""HSI losses (HSI Eq. 3-12) and CMRNet's loss against hand computation on tiny tensors."""

import math

import pytest
import torch

from hsi_core import losses
from hsi_core.metrics import torch_cc, torch_kl_div, torch_nss


def _maps(b=3, h=8, w=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(b, h, w, generator=g)
    fix = torch.rand(b, h, w, generator=g) > 0.8
    pred = torch.rand(b, h, w, generator=g)
    return pred, gt, fix


def test_saliency_loss_is_weighted_sum_of_metrics():
    pred, gt, fix = _maps()
    expected = (torch_kl_div(pred, gt) - torch_cc(pred, gt) - torch_nss(pred, fix)).mean()
    assert torch.allclose(losses.saliency_loss(pred, gt, fix), expected)
    only_kl = losses.saliency_loss(pred, gt, fix, weights=(1.0, 0.0, 0.0))
    assert torch.allclose(only_kl, torch_kl_div(pred, gt).mean())


def test_saliency_loss_sign_convention_and_gradient():
    pred, gt, fix = _maps()
    # A perfect prediction (the ground truth itself) must score a lower loss than a random map.
    assert losses.saliency_loss(gt, gt, fix) < losses.saliency_loss(pred, gt, fix)
    p = pred.clone().requires_grad_(True)
    loss = losses.saliency_loss(p, gt, fix)
    loss.backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    # One gradient step lowers the loss (gradient flows in the right direction).
    with torch.no_grad():
        stepped = (p - 0.05 * p.grad / p.grad.abs().max()).clamp_min(1e-4)
    assert losses.saliency_loss(stepped, gt, fix) < loss


def test_saliency_loss_rejects_shape_mismatch():
    pred, gt, fix = _maps()
    with pytest.raises(ValueError, match="shape"):
        losses.saliency_loss(pred, gt[:, :4], fix)


def test_object_probability_matches_hand_computation():
    a = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]], [[1.0, 0.0], [0.0, 1.0]]]])  # (1, 2, 2, 2)
    prob = losses.object_probability(a, (2, 2))
    for n in range(2):
        for i in range(2):
            for j in range(2):
                over_obj = math.exp(a[0, n, i, j]) / sum(math.exp(a[0, t, i, j]) for t in range(2))
                over_pix = math.exp(a[0, n, i, j]) / sum(math.exp(v) for v in a[0, n].flatten().tolist())
                assert prob[0, n, i, j].item() == pytest.approx(over_obj * over_pix, rel=1e-6)
    up = losses.object_probability(a, 8)
    assert up.shape == (1, 2, 8, 8)
    # Bilinear up-sampling (align_corners=False): the corner pixels of the 8x8 map equal the 2x2 corners.
    assert torch.allclose(up[..., 0, 0], prob[..., 0, 0]) and torch.allclose(up[..., -1, -1], prob[..., -1, -1])


def test_object_probability_ignores_padded_objects():
    a = torch.randn(2, 3, 4, 4)
    valid = torch.tensor([[True, True, False], [True, False, False]])
    prob = losses.object_probability(a, (4, 4), valid)
    assert (prob[0, 2] == 0).all() and (prob[1, 1:] == 0).all()
    assert torch.allclose(prob[:1, :2], losses.object_probability(a[:1, :2], (4, 4)))
    # One object: the object softmax is 1, the product is the pixel softmax.
    assert torch.allclose(prob[1, 0], torch.softmax(a[1, 0].flatten(), 0).view(4, 4))
    with pytest.raises(ValueError, match="no valid object"):
        losses.object_probability(a, (4, 4), torch.tensor([[True, False, False], [False, False, False]]))


def test_marginal_saliency_eq9():
    cond = torch.rand(2, 3, 5, 5)
    prob = torch.rand(2, 3, 5, 5)
    expected = cond[:, 0] * prob[:, 0] + cond[:, 1] * prob[:, 1] + cond[:, 2] * prob[:, 2]
    assert torch.allclose(losses.marginal_saliency(cond, prob), expected)
    valid = torch.tensor([[True, True, False], [True, False, False]])
    masked = losses.marginal_saliency(cond, prob, valid)
    assert torch.allclose(masked[1], cond[1, 0] * prob[1, 0])


def test_pretrain_loss_is_l1_plus_l2_and_masks_objects():
    g = torch.Generator().manual_seed(1)
    b, n, h, w = 2, 3, 8, 8
    cond = torch.rand(b, n, h, w, generator=g).requires_grad_(True)
    scores = torch.randn(b, n, 2, 2, generator=g).requires_grad_(True)
    q = torch.rand(b, n, h, w, generator=g)
    f = torch.rand(b, n, h, w, generator=g) > 0.7
    qpv, fpv = torch.rand(b, h, w, generator=g), torch.rand(b, h, w, generator=g) > 0.7
    valid = torch.tensor([[True, True, True], [True, False, False]])
    l1, l2 = losses.pretrain_loss_terms(cond, scores, q, f, qpv, fpv, valid)
    # HSI Eq. 8 by hand: per image, the mean over its valid objects; then the batch mean.
    img0 = sum(losses.saliency_loss(cond[0, k:k + 1], q[0, k:k + 1], f[0, k:k + 1]) for k in range(3)) / 3
    img1 = losses.saliency_loss(cond[1, :1], q[1, :1], f[1, :1])
    assert torch.allclose(l1, (img0 + img1) / 2)
    prob = losses.object_probability(scores, (h, w), valid)
    assert torch.allclose(l2, losses.saliency_loss(losses.marginal_saliency(cond, prob, valid), qpv, fpv))
    total = losses.pretrain_loss(cond, scores, q, f, qpv, fpv, valid)
    assert torch.allclose(total, l1 + l2)
    total.backward()
    assert cond.grad.abs().sum() > 0 and scores.grad.abs().sum() > 0
    assert (cond.grad[1, 1:] == 0).all()   # padded objects get no gradient


def test_finetune_loss_is_eq4_on_the_label_map():
    pred, gt, fix = _maps(seed=3)
    assert torch.allclose(losses.finetune_loss(pred, gt, fix), losses.saliency_loss(pred, gt, fix))


def test_normalized_l1_loss():
    pred, gt, _ = _maps(seed=4)
    assert losses.normalized_l1_loss(gt, 5 * gt) == pytest.approx(0.0, abs=1e-6)
    p, g = pred / pred.sum((1, 2), keepdim=True), gt / gt.sum((1, 2), keepdim=True)
    assert losses.normalized_l1_loss(pred, gt).item() == pytest.approx((p - g).abs().sum((1, 2)).mean().item(), rel=1e-5)
