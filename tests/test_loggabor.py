import math

import pytest
import torch
import torch.nn as nn

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
