"""hsi_core.maps: the one min-max, resize and top-fraction of the library, each against a value computed
another way (by hand, PIL, numpy's sort)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hsi_core import maps


def test_minmax_spans_zero_to_one_per_map_and_a_flat_map_is_zero():
    """Catches: normalising over the whole batch instead of per map; an eps added to the range (the max would be
    1 - eps/range, visible at a range of 1e-9); NaN for a flat map; numpy in giving a tensor out."""
    x = np.stack([np.arange(12.0).reshape(3, 4), 5.0 + 1e-9 * np.arange(12.0).reshape(3, 4), np.full((3, 4), 2.0)])
    out = maps.minmax(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_allclose(out[0], np.arange(12.0).reshape(3, 4) / 11, rtol=0, atol=1e-15)
    assert out[1].min() == 0.0 and out[1].max() == 1.0  # a tiny range is still stretched to [0, 1] with eps=0
    assert (out[2] == 0).all()


def test_minmax_eps_floors_the_range_and_keeps_dtype_and_gradient():
    """Catches: eps added instead of used as a floor (a range of 1 would give 1 / (1 + eps) < 1), eps applied
    to a flat map as NaN/inf, a float64 tensor cast to float32, and a non-differentiable implementation."""
    t = torch.tensor([[[0.0, 1.0], [2.0, 4.0]], [[1.0, 1.0 + 1e-6], [1.0, 1.0]]], dtype=torch.float64, requires_grad=True)
    out = maps.minmax(t, eps=0.5)
    assert out.dtype == torch.float64
    assert out[0].max().item() == 1.0  # range 4 >= eps: divided by the range itself
    torch.testing.assert_close(out[1], torch.tensor([[0.0, 2e-6], [0.0, 0.0]], dtype=torch.float64))  # range 1e-6 < eps: / eps
    assert (maps.minmax(torch.ones(2, 3), eps=1e-12) == 0).all()
    out.sum().backward()
    assert t.grad is not None and torch.isfinite(t.grad).all()


def test_resize_is_bilinear_with_half_pixel_centres():
    """Catches ``align_corners=True`` (row 0 would be 0, 1/3, 2/3, 1), antialiasing on by default (the 8 -> 2
    down-sampling would not be 1.5, 5.5) or ignored when asked for (the triangle filter's value, by hand)."""
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    up = maps.resize(x, (4, 4))
    assert up.dtype == torch.float32
    # half-pixel centres: output pixel 0 sits at input coordinate -0.25 (clamped to 0), pixel 1 at 0.25
    expected_row0 = torch.tensor([0.0, 0.25, 0.75, 1.0])
    torch.testing.assert_close(up[0], expected_row0)
    torch.testing.assert_close(up[:, 0], expected_row0 * 2)
    line = torch.arange(8.0).view(1, 8).expand(2, 8)
    torch.testing.assert_close(maps.resize(line, (2, 2))[0], torch.tensor([1.5, 5.5]))  # pixels 1-2 and 5-6 only
    # antialias: a triangle of half-width 4 (the scale) centred at 2.0, weights 1 - |j + 0.5 - 2| / 4 on pixels
    # 0..5 (0.625, 0.875, 0.875, 0.625, 0.375, 0.125), renormalised: 6.625 / 3.5; the other output by symmetry
    wide = maps.resize(line, (2, 2), antialias=True)[0]
    torch.testing.assert_close(wide, torch.tensor([6.625 / 3.5, 7 - 6.625 / 3.5]))


def test_resize_batches_keep_leading_dims_and_same_size_is_unchanged():
    """Catches a resize that mixes maps of a batch, drops leading dimensions or copies an already-sized map."""
    t = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    out = maps.resize(t, (10, 14))
    assert out.shape == (2, 3, 10, 14) and out.dtype == torch.float64
    torch.testing.assert_close(out[1, 2], maps.resize(t[1, 2], (10, 14)))
    assert maps.resize(t, (5, 7)) is t
    with pytest.raises(ValueError, match="positive"):
        maps.resize(t, (0, 3))


def test_top_fraction_count_takes_exactly_k_highest_pixels():
    """Catches k computed with floor instead of round (0.068 * 100 = 6.8: 6 instead of 7),
    the lowest pixels taken instead of the highest, and a count shared over the batch."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 10, 10, generator=g)
    mask = maps.top_fraction_fixations(x, 0.068, method="count")
    assert mask.sum((1, 2)).tolist() == [7, 7, 7]
    for m, v in zip(mask, x):
        assert v[m].min() > v[~m].max()
    assert maps.top_fraction_fixations(x, 1e-4, method="count").sum((1, 2)).tolist() == [1, 1, 1]  # at least one


def test_top_fraction_quantile_keeps_ties_and_never_zero_pixels():
    """Catches: a count instead of the quantile (the plateau of 10 tied maxima would be cut to 2), and a missing
    floor (a map that is zero beyond 3 pixels would mark all its zero pixels at the 0.9 quantile)."""
    plateau = torch.zeros(10, 10)
    plateau[0] = 1.0  # 10 % of the pixels tied at the maximum
    assert maps.top_fraction_fixations(plateau, 0.02, method="quantile").sum() == 10
    assert maps.top_fraction_fixations(plateau, 0.02, method="count").sum() == 2
    sparse = torch.zeros(10, 10)
    sparse[0, :3] = torch.tensor([0.5, 0.7, 0.9])
    assert maps.top_fraction_fixations(sparse, 0.1, method="quantile").sum() == 3
    # the threshold against numpy's linear-interpolation quantile of a generic map
    x = torch.rand(12, 16, generator=torch.Generator().manual_seed(1))
    q = np.quantile(x.numpy(), 0.95)
    assert torch.equal(maps.top_fraction_fixations(x, 0.05, method="quantile"), x >= max(float(q), 1e-6))


def test_top_fraction_needs_a_named_method_and_a_fraction_in_zero_one():
    with pytest.raises(TypeError):
        maps.top_fraction_fixations(torch.rand(4, 4), 0.1)  # method is required: the two readings differ
    with pytest.raises(ValueError, match="method"):
        maps.top_fraction_fixations(torch.rand(4, 4), 0.1, method="topk")
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        maps.top_fraction_fixations(torch.rand(4, 4), 1.0, method="count")
