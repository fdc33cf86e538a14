import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from hsi_core import loggabor


def test_bank_has_80_filters_with_the_papers_parameters():
    specs = loggabor.bank_specs()
    assert len(specs) == 80
    assert sorted({round(s.wavelength, 4) for s in specs}) == [2.0, 3.0, 4.5, 6.75]
    assert sorted({round(s.sigma_ratio, 4) for s in specs}) == [0.5, 0.75, 1.125, 1.6875]
    assert len({round(s.orientation, 4) for s in specs}) == 5
    bank = loggabor.filter_bank((64, 64), pad=0)
    assert bank.shape == (80, 64, 64)


def test_bank_keywords_and_table_agree():
    bank = loggabor.filter_bank((32, 32), n_orient=3, n_scales=2, sigma_pairs=2, pad=0)
    assert bank.shape == (12, 32, 32)
    table = loggabor.filter_table(loggabor.bank_specs(3, 2, n_bandwidths=2))
    assert len(table) == 12 and table[5]["orientation (deg)"] == pytest.approx(60.0)
    assert torch.equal(bank, loggabor.filter_bank((32, 32), loggabor.bank_specs(3, 2, n_bandwidths=2), pad=0))
    with pytest.raises(ValueError, match="min_wavelength"):
        loggabor.bank_specs(min_wavelength=1.0)


def test_each_filter_peaks_at_its_orientation_and_frequency():
    size = 128
    bank = loggabor.filter_bank((size, size), pad=0)
    fy = torch.fft.fftfreq(size).view(-1, 1).expand(size, size)
    fx = torch.fft.fftfreq(size).view(1, -1).expand(size, size)
    for spec, g in zip(loggabor.bank_specs(), bank):
        # the finest filters (2 px, 0.5 cycles/px on the Nyquist edge) are tested too: half their
        # passband is off the grid, but their peak and mean orientation stay where they should
        peak = torch.argmax(g)
        rho = math.hypot(fx.flatten()[peak], fy.flatten()[peak])
        assert abs(rho - 1 / spec.wavelength) <= 1.5 / size, spec
        # orientation: the response-weighted circular mean of the frequency angle (the angular
        # Gaussian is symmetric about theta0; the argmax alone is at the mercy of the grid)
        angle = torch.atan2(-fy, fx)
        mean = math.atan2(float((g * torch.sin(angle)).sum()), float((g * torch.cos(angle)).sum()))
        assert abs(math.atan2(math.sin(mean - spec.orientation), math.cos(mean - spec.orientation))) < 0.06, spec


def test_bandwidths_in_octaves_are_the_documented_ones():
    octaves = [loggabor.radial_bandwidth_octaves(r) for r in (0.5, 0.75, 1.125, 1.6875)]
    assert octaves == pytest.approx([2.355, 0.977, 0.400, 1.777], abs=2e-3)
    assert loggabor.radial_bandwidth_octaves(0.5) == pytest.approx(loggabor.radial_bandwidth_octaves(2.0))
    table = loggabor.filter_table()
    assert {round(r["radial bandwidth (octaves)"], 3) for r in table} == {round(o, 3) for o in octaves}


def test_bank_matches_phasepacks_construction():
    """The radial part on phasepack's frequency grid with its log-gabor formula (Kovesi), and a
    Gaussian of phasepack's wrapped angular distance, for all 80 filters (phasepack's own angular
    spread is a raised cosine and it adds a low-pass; neither is the paper's bank)."""
    import warnings

    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filtergrid = pytest.importorskip("phasepack.filtergrid").filtergrid
    rows, cols = 48, 64
    radius, u1, u2 = filtergrid(rows, cols)
    radius = np.broadcast_to(radius, (rows, cols)).copy()
    radius[0, 0] = 1.0
    theta = np.arctan2(-np.broadcast_to(u2, (rows, cols)), np.broadcast_to(u1, (rows, cols)))
    ours = loggabor.filter_bank((rows, cols), pad=0).double().numpy()
    for g, spec in enumerate(loggabor.bank_specs()):
        radial = np.exp(-np.log(radius * spec.wavelength) ** 2 / (2 * np.log(spec.sigma_ratio) ** 2))
        ds = np.sin(theta) * np.cos(spec.orientation) - np.cos(theta) * np.sin(spec.orientation)
        dc = np.cos(theta) * np.cos(spec.orientation) + np.sin(theta) * np.sin(spec.orientation)
        reference = radial * np.exp(-np.arctan2(ds, dc) ** 2 / (2 * spec.sigma_theta**2))
        reference[0, 0] = 0.0
        assert np.abs(ours[g] - reference).max() < 1e-5, spec


def test_padding_stops_wrap_around():
    image = torch.zeros(1, 64, 64)
    image[:, :, :4] = 1.0  # a bright bar on the left border only
    wrapped = loggabor.energy(image, pad=0)
    padded = loggabor.energy(image)
    # by FFT the right border sees the left border's bar; with a reflected border it does not
    assert float(wrapped[..., -3:].max()) > 0.1
    assert float(padded[..., -3:].max()) < 0.1 * float(wrapped[..., -3:].max())
    # away from the borders of a textured image both readings agree closely
    torch.manual_seed(0)
    texture = torch.rand(1, 64, 64)
    centre = (..., slice(24, 40), slice(24, 40))
    diff = loggabor.energy(texture, pad=0)[centre] - loggabor.energy(texture)[centre]
    assert float(diff.abs().max()) < 0.05 * float(loggabor.energy(texture)[centre].max())


def test_zero_response_at_dc():
    bank = loggabor.filter_bank((32, 48), pad=0)
    assert torch.all(bank[:, 0, 0] == 0)
    flat = torch.full((1, 32, 48), 0.7)
    assert loggabor.energy(flat, bank, pad=0).abs().max() < 1e-5
    assert loggabor.energy(flat).abs().max() < 1e-5


def test_even_and_odd_parts_are_in_quadrature():
    size = 64
    spec = loggabor.FilterSpec(orientation=0.0, wavelength=8.0, sigma_ratio=0.55, sigma_theta=0.4)
    bank = loggabor.filter_bank((size, size), [spec], pad=0)
    x = torch.arange(size, dtype=torch.float32)
    grating = torch.cos(2 * math.pi * x / 8.0).view(1, -1).expand(size, size)[None]
    response = loggabor.responses(grating, bank)[0, 0]
    even, odd = response.real, response.imag
    assert torch.allclose(even.norm(), odd.norm(), rtol=0.02)
    assert abs(float((even * odd).sum())) < 0.02 * float(even.norm() * odd.norm())
    # the energy of a grating is flat: no ripple at the grating's own frequency
    energy = response.abs()
    assert float(energy.std() / energy.mean()) < 0.02


class EnergyNet(nn.Module):
    """A toy network whose activations are exactly log-gabor energies of its input."""

    def __init__(self, picks):
        super().__init__()
        self.picks = picks
        self.layer = nn.Identity()

    def forward(self, x):
        return self.layer(loggabor.energy(x)[:, self.picks])


def test_reconstruction_is_near_exact_when_activations_are_energies():
    torch.manual_seed(0)
    image = torch.rand(1, 1, 64, 64)
    image = torch.nn.functional.avg_pool2d(image, 3, 1, 1)
    net = EnergyNet([3, 17, 42, 77])
    # at the maps' own scale, with the paper's plain inverse MAEs, the reconstruction is exact up to float error
    assert loggabor.reconstruct(net, image[0], ["layer"], scales=(1.0,), weight_floor=0).layers[0].mae.max() < 1e-4
    # the default floor (1 % of the map's block variance) keeps the exact candidate first and dominant
    floored = loggabor.reconstruct(net, image[0], ["layer"], scales=(1.0,)).layers[0]
    assert floored.chosen[:, 0, 0].tolist() == [3, 17, 42, 77] and float(floored.weights[:, 0, 0].min()) > 0.5
    # the five-scale fusion adds only resampling blur, far below a random convolution's error
    exact = loggabor.reconstruct(net, image[0], ["layer"])
    conv = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU())
    torch.nn.init.normal_(conv[0].weight)
    other = loggabor.reconstruct(conv, image[0], ["0"])
    assert exact.layers[0].mae.mean() < 0.06
    assert exact.layers[0].mae.mean() < 0.4 * other.layers[0].mae.mean()
    # the exactly matching filter wins at the original scale
    scale_one = loggabor.SCALES.index(1.0)
    assert exact.layers[0].chosen[:, scale_one, 0].tolist() == [3, 17, 42, 77]


def test_runs_layer_by_layer_on_a_torchvision_cnn():
    import torchvision

    model = torchvision.models.get_model("resnet18", weights=None).eval()
    names = ["conv1", "layer1.0.conv1", "layer2.0.conv1"]
    result = loggabor.reconstruct(model, torch.rand(3, 96, 96), names, mode="chain")
    assert [layer.name for layer in result.layers] == names
    assert result.saliency.shape == (1, 96, 96) and torch.isfinite(result.saliency).all()
    # layers after the first choose among the 10 kept maps' energies
    assert len(result.layers[1].candidate_specs) == 10 * 80
    batch = torch.rand(2, 3, 96, 96)
    maps = loggabor.explainable_saliency(model, batch, names[:2])
    assert maps.shape == (2, 96, 96)
    # each image of a batch is explained on its own: the same as explaining it alone
    alone = loggabor.explainable_saliency(model, batch[1], names[:2])
    assert torch.allclose(maps[1], alone[0], atol=1e-5)
    assert not torch.allclose(maps[0], maps[1], atol=1e-3)


def test_bad_layer_name_and_tiny_map():
    with pytest.raises(ValueError, match="no modules named"):
        loggabor.capture_activations(nn.Conv2d(1, 1, 3), torch.rand(1, 1, 8, 8), ["nope"])
    with pytest.raises(ValueError, match="smaller than one"):
        loggabor.reconstruct_maps(torch.rand(2, 1, 1), torch.rand(80, 1, 1))


# --- tie-tolerant choices (reconstruct.smallest_with_ties) -------------------------------------


def test_ties_within_rtol_are_taken_in_index_order():
    # the 3rd smallest is 1.0 (index 4); 1.0004 (index 1) and 1.0008 (index 2) lie within 1e-3 of it
    values = torch.tensor([0.5, 1.0004, 1.0008, 0.2, 1.0, 3.0])
    idx, left_out = loggabor.smallest_with_ties(values, 3, rtol=1e-3)
    # the surely smaller ones first (by value), then the tied ones by index: 1, not the smallest 4
    assert idx.tolist() == [3, 0, 1] and int(left_out) == 2
    # the same choice at any magnitude (the tolerance is relative, not absolute)
    for scale in (1e-6, 1e6):
        assert loggabor.smallest_with_ties(values * scale, 3, rtol=1e-3)[0].tolist() == [3, 0, 1]
    # outside the tolerance the order is by value again, and nothing is reported as left out
    idx, left_out = loggabor.smallest_with_ties(values, 3, rtol=1e-5)
    assert idx.tolist() == [3, 0, 4] and int(left_out) == 0
    # rtol=0: a plain topk
    assert loggabor.smallest_with_ties(values, 3, rtol=0)[0].tolist() == [3, 0, 4]


def test_a_strictly_smaller_value_is_always_chosen():
    # a value below the tie window is chosen even when it comes last and everything else is tied
    values = torch.tensor([[1.0, 1.0001, 1.0002, 1.0003, 0.9]])
    idx, left_out = loggabor.smallest_with_ties(values, 2, rtol=1e-3)
    assert idx.tolist() == [[4, 0]] and left_out.tolist() == [3]
    # k=1: the unique minimum, never a tied neighbour with a smaller index
    assert loggabor.smallest_with_ties(torch.tensor([1.0, 0.5, 2.0]), 1)[0].tolist() == [1]
    # batched rows are independent
    rows = torch.tensor([[0.3, 0.1, 1.0], [1.0, 1.0, 0.1]])
    assert loggabor.smallest_with_ties(rows, 2)[0].tolist() == [[1, 0], [2, 0]]


# --- the scales as operators (resample) -------------------------------------------------------


def _direct_to_scale(x, size, scale, steps):
    """``F.interpolate`` step by step: the reading ``resample`` writes as matrices."""
    import torch.nn.functional as F

    if steps == "single":
        shape = (round(size[0] * scale), round(size[1] * scale))
        return F.interpolate(x, size=shape, mode="bilinear", align_corners=False)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    for _ in range(abs(round(math.log2(scale)))):
        shape = tuple(2 * n if scale > 1 else round(n / 2) for n in x.shape[-2:])
        x = F.interpolate(x, size=shape, mode="bilinear", align_corners=False, antialias=scale < 1)
    return x


def _direct_back(x, size, scale, steps):
    import torch.nn.functional as F

    if steps == "single":
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    lengths = [size]
    for _ in range(abs(round(math.log2(scale)))):
        lengths.append(tuple(2 * n if scale > 1 else round(n / 2) for n in lengths[-1]))
    for shape in lengths[-2::-1]:
        x = F.interpolate(x, size=shape, mode="bilinear", align_corners=False, antialias=scale > 1)
    return x


@pytest.mark.parametrize("scale", loggabor.SCALES)
@pytest.mark.parametrize("steps, candidate", [("twice", (40, 52)), ("twice", (40, 104)), ("single", (40, 52))])
def test_resample_operators_equal_direct_interpolation(steps, scale, candidate):
    """The matrices (and the closed-form block variances) against ``F.interpolate`` in float32.
    Values in [0, 1] pass through at most 5 resizes of 2-6 taps each: float32 rounding (6e-8 per
    operation) stays below 1e-6 on the maps; block variances E[Y^2] - E[Y]^2 of such maps lose at
    most a few ulps of E[Y^2] <= 1, so 2e-6 absolute. A wrong step (one step instead of two, a
    missing antialias, the mirror path not mirrored) moves them by 1e-2 or more."""
    torch.manual_seed(1)
    size = (40, 52)
    x = torch.rand(2, 1, *candidate)
    to_y = loggabor.to_scale_matrix(candidate[0], size[0], scale, steps).float()
    to_x = loggabor.to_scale_matrix(candidate[1], size[1], scale, steps).float()
    direct = _direct_to_scale(x, size, scale, steps)
    assert direct.shape[-2:] == (to_y.shape[0], to_x.shape[0])
    assert torch.allclose(to_y @ x @ to_x.T, direct, atol=1e-6, rtol=0)
    back_y = loggabor.round_trip_matrix(candidate[0], size[0], scale, steps).float()
    back_x = loggabor.round_trip_matrix(candidate[1], size[1], scale, steps).float()
    assert torch.allclose(back_y @ x @ back_x.T, _direct_back(direct, size, scale, steps), atol=1e-6, rtol=0)
    from hsi_core.loggabor.reconstruct import block_variance

    closed = loggabor.resized_block_variance(x[:, 0], size, scale, steps=steps)
    assert torch.allclose(closed, block_variance(direct[:, 0]), atol=2e-6, rtol=0)


def test_the_two_scale_readings_differ_on_a_planted_map():
    """A map whose every 4x4 cell is 0 except its middle 2x2 (a random level per cell). One bilinear
    step to x1/4 samples exactly between pixels 4i+1 and 4i+2, so it reads the middle 2x2 alone:
    the block variances are those of the levels. Two antialiased halvings average the whole cell
    and its neighbours' zeros: the variances shrink by far more than half."""
    from hsi_core.loggabor.reconstruct import block_variance

    torch.manual_seed(0)
    levels = torch.rand(16, 16)
    middle = torch.zeros(64)
    middle[1::4] = middle[2::4] = 1
    planted = middle.view(-1, 1) * middle.view(1, -1) * levels.repeat_interleave(4, 0).repeat_interleave(4, 1)
    single = loggabor.resized_block_variance(planted, (64, 64), 0.25, steps="single")
    twice = loggabor.resized_block_variance(planted, (64, 64), 0.25, steps="twice")
    assert torch.allclose(single, block_variance(levels), atol=1e-6)
    assert float((twice / single).max()) < 0.5
    with pytest.raises(ValueError, match="steps must be one of"):
        loggabor.scale_length(64, 0.25, "once")
    with pytest.raises(ValueError, match="powers of 2"):
        loggabor.scale_length(64, 0.3, "twice")


# --- the filter bank knows its size and border ------------------------------------------------


def test_energy_with_a_bank_built_for_a_non_square_size():
    torch.manual_seed(2)
    x = torch.rand(2, 40, 56)
    natural = loggabor.energy(x, loggabor.filter_bank((40, 56)))
    assert natural.shape == (2, 80, 40, 56)
    assert torch.allclose(natural, loggabor.energy(x), atol=1e-6)
    # a plain tensor for the padded size is the same filtering
    plain = loggabor.filter_bank(loggabor.padded_size((40, 56)), pad=0).as_subclass(torch.Tensor)
    assert torch.allclose(natural, loggabor.energy(x, plain), atol=1e-6)
    # the transposed image with the transposed bank: the transposed energies of the transposed filters
    assert loggabor.energy(x.transpose(1, 2), loggabor.filter_bank((56, 40))).shape == (2, 80, 56, 40)
    # pad=0 banks give the wrap-around energies
    assert torch.allclose(loggabor.energy(x, loggabor.filter_bank((40, 56), pad=0)), loggabor.energy(x, pad=0),
                          atol=1e-6)


def _is_5_smooth(n):
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def test_fast_fft_lengths_continue_the_mirror_and_keep_the_crop():
    """``fft_lengths="fast"`` (default) rounds each bordered side up to a 5-smooth length and fills the
    extra by continuing the symmetric extension after the image. Against an energy with a border six
    times the map's side (the infinite mirror image, up to what is negligible), the fast grid is no
    less accurate than the exact one, within 3 % (measured here: 0.96, 0.61 and 1.01 times the exact
    grid's mean error; 1.05, 0.86 and 1.08 with the extra filled with zeros). Catches: the extra rows
    put before the image (the crop then reads shifted energies), filled with zeros, or a grid that
    is not 5-smooth."""
    from hsi_core.loggabor.bank import _mirror_index, _transfer

    torch.manual_seed(0)
    for size in [(32, 48), (16, 24), (20, 28)]:
        x = F.avg_pool2d(torch.rand(3, 1, *size), 3, 1, 1)[:, 0]
        fast, exact = loggabor.padded_size(size), loggabor.padded_size(size, fft_lengths="exact")
        assert all(_is_5_smooth(n) and n >= e for n, e in zip(fast, exact))
        assert fast != exact  # each of these sizes has a side that is not 5-smooth with its border (76, 44, 56)
        border = (6 * size[0], 6 * size[1])
        grid = (13 * size[0] + 1, 13 * size[1] + 1)
        wide = x[:, _mirror_index(size[0], border[0], grid[0], x.device)][..., _mirror_index(size[1], border[1],
                                                                                              grid[1], x.device)]
        spectrum = torch.fft.fft2(wide).unsqueeze(1) * _transfer(grid, loggabor.bank_specs(), None, torch.float32)
        ideal = torch.fft.ifft2(spectrum)[..., border[0]:border[0] + size[0], border[1]:border[1] + size[1]].abs()
        span = ideal.amax() - ideal.amin()
        error = {reading: float((loggabor.energy(x, fft_lengths=reading) - ideal).abs().mean() / span)
                 for reading in loggabor.FFT_LENGTHS}
        assert error["fast"] <= 1.03 * error["exact"] and error["fast"] < 1e-2, (size, error)
        assert torch.allclose(loggabor.energy(x), loggabor.energy(x, loggabor.filter_bank(size)), atol=1e-6)
    # a side whose bordered length is already 5-smooth keeps it: the same values as the exact grid
    assert loggabor.padded_size((32, 32)) == loggabor.padded_size((32, 32), fft_lengths="exact") == (60, 60)
    x = torch.rand(2, 32, 32)
    assert torch.equal(loggabor.energy(x), loggabor.energy(x, fft_lengths="exact"))
    # the mirror index is F.pad's reflection for borders below the side, continued beyond
    row = torch.arange(5.0)[None, None]
    assert torch.equal(row[..., _mirror_index(5, 3, 11, row.device)], F.pad(row, (3, 3), mode="reflect"))
    assert _mirror_index(3, 0, 9, row.device).tolist() == [0, 1, 2, 1, 0, 1, 2, 1, 0]
    with pytest.raises(ValueError, match="fft_lengths must be one of"):
        loggabor.energy(x, fft_lengths="pow2")


def test_bank_size_and_border_mismatches_are_clear_errors():
    x = torch.rand(1, 40, 56)
    with pytest.raises(ValueError, match=r"built for \(56, 40\) images, got \(40, 56\)"):
        loggabor.energy(x, loggabor.filter_bank((56, 40)))
    with pytest.raises(ValueError, match="differs from the bank's border"):
        loggabor.energy(x, loggabor.filter_bank((40, 56)), pad=0)
    with pytest.raises(ValueError, match="build it with filter_bank"):
        loggabor.energy(x, torch.rand(80, 40, 56))
    with pytest.raises(ValueError, match="positive sides"):
        loggabor.filter_bank((0, 56))


def test_normalisation_before_block_variances_is_a_switch():
    """Maps that are 5 x an energy + 2: min-max normalised first (default), the planted filters match
    exactly; raw, their block variances are 25 x the candidates' and other filters match better."""
    torch.manual_seed(0)
    image = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 64, 64), 3, 1, 1)
    picks = [3, 17, 42, 77]

    class Affine(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Identity()

        def forward(self, x):
            return self.layer(5 * loggabor.energy(x)[:, picks] + 2)

    kwargs = dict(scales=(1.0,), weight_floor=0)
    normalised = loggabor.reconstruct(Affine(), image[0], ["layer"], **kwargs).layers[0]
    raw = loggabor.reconstruct(Affine(), image[0], ["layer"], normalise="none", **kwargs).layers[0]
    assert normalised.chosen[:, 0, 0].tolist() == picks and float(normalised.mae.max()) < 1e-4
    assert raw.chosen[:, 0, 0].tolist() != picks
    with pytest.raises(ValueError, match="normalise must be one of"):
        loggabor.reconstruct(Affine(), image[0], ["layer"], normalise="zscore")


def test_filter_choice_shares_count_the_chosen_filters():
    """Planted energies of filters 3, 17 (2 px), 42 (4.5 px) and 77 (6.75 px), each the only choice
    (top_k=1, one scale): the shares are the counts, 1/2, 1/4, 1/4, summing to 1 per depth."""
    torch.manual_seed(0)
    image = torch.nn.functional.avg_pool2d(torch.rand(2, 1, 64, 64), 3, 1, 1)
    result = loggabor.reconstruct(EnergyNet([3, 17, 42, 77]), image, ["layer"], scales=(1.0,), top_k=1,
                                  weight_floor=0)
    rows = {r["wavelength"]: r for r in loggabor.filter_choice_shares(result)}
    assert {w: r["share"] for w, r in rows.items()} == pytest.approx({2.0: 0.5, 3.0: 0.0, 4.5: 0.25, 6.75: 0.25})
    assert all(r["spread"] == pytest.approx(0.0) for r in rows.values())  # both images choose the same
    orientation = loggabor.filter_choice_shares(result, by="orientation")
    assert [r["share"] for r in orientation] == pytest.approx([0.25, 0.25, 0.25, 0.0, 0.25])  # 0, 36, 72, 108, 144 deg
    with pytest.raises(ValueError, match="FilterSpec field"):
        loggabor.filter_choice_shares(result, by="weight")


def test_sigma_theta_read_as_kovesis_ratio_to_the_orientation_spacing():
    """``sigma_theta_unit="kovesi_ratio"`` reads the printed angular widths as Kovesi's dThetaOnSigma
    (orientation spacing / sigma_theta). Catches: the ratio inverted (value x spacing), the spacing
    taken as 2 pi / n (a one-sided bank still spaces its orientations pi / n apart), or the switch
    ignored."""
    radians = loggabor.bank_specs()
    kovesi = loggabor.bank_specs(sigma_theta_unit="kovesi_ratio")
    spacing = math.pi / 5
    assert [s.sigma_theta for s in radians[:4]] == pytest.approx([0.5, 0.75, 1.125, 1.6875])
    assert [s.sigma_theta for s in kovesi[:4]] == pytest.approx([spacing / v for v in (0.5, 0.75, 1.125, 1.6875)])
    assert [(s.orientation, s.wavelength, s.sigma_ratio) for s in kovesi] == \
        [(s.orientation, s.wavelength, s.sigma_ratio) for s in radians]
    # the transfer functions follow: at the filter's centre frequency, the angular profile falls to
    # exp(-1/2) at sigma_theta from its orientation
    size = 256
    bank = loggabor.filter_bank((size, size), n_orient=5, sigma_theta_unit="kovesi_ratio", pad=0)
    spec, g = kovesi[3 * 16 + 3 * 4 + 0], 3 * 16 + 3 * 4 + 0  # orientation 108 deg, 6.75 px, ratio 0.5
    f0 = 1 / spec.wavelength
    angle = spec.orientation + spec.sigma_theta
    fx, fy = f0 * math.cos(angle), -f0 * math.sin(angle)
    ix, iy = round(fx * size) % size, round(fy * size) % size
    peak_x, peak_y = round(f0 * math.cos(spec.orientation) * size) % size, round(-f0 * math.sin(spec.orientation) * size) % size
    ratio = float(bank[g, iy, ix] / bank[g, peak_y, peak_x])
    assert ratio == pytest.approx(math.exp(-0.5), abs=0.05)
    with pytest.raises(ValueError, match="sigma_theta_unit"):
        loggabor.bank_specs(sigma_theta_unit="degrees")
