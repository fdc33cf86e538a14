import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from hsi_core import fixations


def test_fixation_map_places_points_as_x_y():
    m = fixations.fixation_map([[3, 1], [0, 0]], (4, 5))
    assert m.dtype == bool and m.shape == (4, 5)
    assert m[1, 3] and m[0, 0] and m.sum() == 2


def test_fixation_map_out_of_bounds():
    """One tolerance (BORDER_TOLERANCE_PX) by default: within it a point is clipped onto the border,
    beyond it the error says how far out the first point lies. Catches a default tolerance of 0
    (real NUS Scene has points up to 0.93 px out) or clipping however far out."""
    tol = fixations.BORDER_TOLERANCE_PX
    assert tol == 8.0
    assert fixations.fixation_map([[4 + tol, 1]], (4, 5))[1, 4]  # rounded x = 12: 8 px out, kept
    with pytest.raises(ValueError, match=r"x=13.0, y=1.0, 9.0 px out"):
        fixations.fixation_map([[4 + tol + 1, 1]], (4, 5))
    with pytest.raises(ValueError, match="outside"):
        fixations.fixation_map([[5.4, 1]], (4, 5), tolerance=0.0)
    assert fixations.fixation_map([[5.4, 1]], (4, 5), tolerance=1.0)[1, 4]  # slight overshoot is clipped
    assert fixations.fixation_map([[50, -3]], (4, 5), clip=True)[0, 4]


def test_coordinates_rounded_or_truncated():
    """Our default rounds to the nearest pixel centre; pysaliency truncates (``int(x)``)."""
    pts = [[2.6, 1.4], [0.7, 2.9]]
    assert np.argwhere(fixations.fixation_map(pts, (4, 5))).tolist() == [[1, 3], [3, 1]]
    assert np.argwhere(fixations.fixation_map(pts, (4, 5), coordinates="truncate")).tolist() == [[1, 2], [2, 0]]
    with pytest.raises(ValueError, match="coordinates"):
        fixations.fixation_map(pts, (4, 5), coordinates="floor")


def test_one_tolerance_for_loaders_and_scorers():
    from hsi_core import datasets

    assert datasets.BORDER_TOLERANCE_PX == fixations.BORDER_TOLERANCE_PX


@pytest.mark.parametrize("points", [np.zeros((0, 2)), [[1.0, np.nan]], [[1, 2, 3]]])
def test_fixation_map_bad_points(points):
    with pytest.raises(ValueError):
        fixations.fixation_map(points, (4, 5))


def test_saliency_map_matches_scipy_and_batches():
    rng = np.random.default_rng(0)
    fix = rng.random((2, 40, 50)) > 0.98
    ours = fixations.saliency_map(fix, sigma=3.0)
    for i in range(2):
        expected = gaussian_filter(fix[i].astype(np.float64), 3.0, mode="constant", truncate=4.0)
        np.testing.assert_allclose(ours[i], expected / expected.max(), atol=1e-5)
    as_torch = fixations.saliency_map(torch.from_numpy(fix), sigma=3.0)
    assert isinstance(as_torch, torch.Tensor) and torch.allclose(as_torch, torch.from_numpy(ours), atol=1e-6)


def test_saliency_map_empty_raises():
    with pytest.raises(ValueError, match="empty"):
        fixations.saliency_map(np.zeros((5, 5)), sigma=2.0)


def test_hsb_geometry_gives_21_pixels_for_half_a_degree():
    # HSI paper, Figure 5: SD of 0.5 dva = 21 pixels (1024 px over 255 mm at 60 cm).
    assert fixations.sigma_from_dva(0.5) == pytest.approx(21.0, abs=0.1)
    # and the 400-px-wide image frame spans about 9.5 dva (paper: 9.51)
    assert 400 / fixations.pixels_per_degree(1024, 255.0, 600.0) == pytest.approx(9.51, abs=0.05)


def test_split_half_separates_viewers():
    viewers = [np.array([[i, i]]) for i in range(6)]
    predictor, target = fixations.split_half(viewers, (10, 10), sigma=1.0, seed=0)
    assert target.sum() == 3
    assert predictor[target].max() < 1.0  # half B's points are not half A's
    with pytest.raises(ValueError):
        fixations.split_half([np.array([[1, 1]])], (10, 10), sigma=1.0)


def test_gaussian_kernel_is_scipys_truncated_gaussian():
    """The public kernel (used by gaussian_blur and pseudo_labels' band matrices) against scipy's filter of a
    delta, at sigmas where our radius ``ceil(truncate * sigma)`` equals scipy's ``int(truncate * sigma + 0.5)`` (elsewhere
    ours has one more tap each side, a documented difference). Catches a radius without ``truncate``, a kernel not
    normalised to 1, or sigma read as the variance."""
    import numpy as np
    from scipy.ndimage import gaussian_filter1d

    from hsi_core.fixations import gaussian_kernel

    for sigma in (0.7, 2.0, 5.2):
        k = gaussian_kernel(sigma, 4.0, torch.float64)
        r = (len(k) - 1) // 2
        assert r == max(1, int(np.ceil(4.0 * sigma)))
        delta = np.zeros(4 * r + 1)
        delta[2 * r] = 1.0
        ref = gaussian_filter1d(delta, sigma, mode="constant", truncate=4.0)[r: 3 * r + 1]
        np.testing.assert_allclose(k.numpy(), ref, rtol=1e-10, atol=1e-15)
