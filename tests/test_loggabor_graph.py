"""The reconstruction follows the network's graph, on its activation maps, batched (issue 14)."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from hsi_core import loggabor
from hsi_core.models.cmrnet import CMRNet
from hsi_core.models.msinet import MSINet
from hsi_core.models.unisal import UNISAL


class TwoBranchEnergyNet(nn.Module):
    """Two parallel branches, both log-gabor energies of the input (different filters)."""

    def __init__(self, picks_a, picks_b):
        super().__init__()
        self.picks_a, self.picks_b = picks_a, picks_b
        self.a, self.b = nn.Identity(), nn.Identity()

    def forward(self, x):
        e = loggabor.energy(x)
        return torch.cat([self.a(e[:, self.picks_a]), self.b(e[:, self.picks_b])], 1)


def _smooth_image(seed=0, size=64):
    torch.manual_seed(seed)
    return F.avg_pool2d(torch.rand(1, 1, size, size), 3, 1, 1)


def test_parallel_branches_are_rebuilt_from_the_input_only_in_graph_mode():
    net = TwoBranchEnergyNet([3, 17, 42, 77], [5, 30, 51, 64])
    image = _smooth_image()
    graph = loggabor.reconstruct(net, image, ["a", "b"], scales=(1.0,), weight_floor=0)
    chain = loggabor.reconstruct(net, image, ["a", "b"], scales=(1.0,), mode="chain", weight_floor=0)
    assert [layer.sources for layer in graph.layers] == [["input"], ["input"]]
    assert [layer.sources for layer in chain.layers] == [["input"], ["a"]]
    # graph: both branches read the image, so both are rebuilt exactly from its energies
    assert float(graph.batched[0].mae.max()) < 1e-4 and float(graph.batched[1].mae.max()) < 1e-4
    assert graph.layers[1].chosen[:, 0, 0].tolist() == [5, 30, 51, 64]
    # chain: the second branch is rebuilt from the first branch's reconstructions' energies instead
    assert float(chain.batched[0].mae.max()) < 1e-4
    assert float(chain.batched[1].mae.mean()) > 0.02


class ToyGraph(nn.Module):
    """A stem, two parallel paths concatenated, a residual addition, a pooled last layer."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2a, self.c2b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 5, padding=2)
        self.c3 = nn.Conv2d(8, 4, 1)
        self.c4 = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x):
        a = F.relu(self.c1(x))
        both = torch.cat([F.relu(self.c2a(a)), F.relu(self.c2b(a))], 1)
        m = self.c3(both) + a
        return self.c4(F.max_pool2d(m, 2))


def test_trace_records_which_layer_feeds_which():
    """Catches: a feeder missed through a concatenation, a residual add or a pooling; the residual add
    not recorded as a sum layer of its two terms (or the union reading lost as a switch)."""
    capture = loggabor.trace(ToyGraph().eval(), torch.rand(1, 3, 32, 32))
    assert list(capture.activations) == ["c1", "c2a", "c2b", "c3", "add", "c4"]
    assert capture.feeds == {"c1": ["input"], "c2a": ["c1"], "c2b": ["c1"], "c3": ["c2a", "c2b"],
                             "add": ["c3", "c1"], "c4": ["add"]}
    assert capture.terms == {"add": ["c3", "c1"]}
    # c3 is summed before any nonlinearity, c4 is the output: both are taken at the convolution
    assert capture.points == {"c1": "activation", "c2a": "activation", "c2b": "activation", "c3": "conv",
                              "add": "sum", "c4": "conv"}
    union = loggabor.trace(ToyGraph().eval(), torch.rand(1, 3, 32, 32), adds="union")
    assert list(union.activations) == ["c1", "c2a", "c2b", "c3", "c4"] and union.terms == {}
    assert union.feeds["c4"] == ["c1", "c3"]
    with pytest.raises(ValueError, match="adds"):
        loggabor.trace(ToyGraph().eval(), torch.rand(1, 3, 32, 32), adds="sum")


class ResidualEnergyNet(nn.Module):
    """Layers 1 and 2 are log-gabor energies of the image; layer 3 is the energy of their sum under
    planted (channel, filter) pairs."""

    def __init__(self, picks_1, picks_2, planted):
        super().__init__()
        self.picks_1, self.picks_2, self.planted = picks_1, picks_2, planted
        self.l1, self.l2, self.l3 = nn.Identity(), nn.Identity(), nn.Identity()

    def forward(self, x):
        e = loggabor.energy(x)
        s = self.l1(e[:, self.picks_1]) + self.l2(e[:, self.picks_2])
        return self.l3(torch.stack([loggabor.energy(s[:, c:c + 1])[:, j] for c, j in self.planted], 1))


def test_a_layer_after_a_residual_add_is_rebuilt_from_the_energies_of_the_rebuilt_sum():
    """The sum is a layer, rebuilt as the sum of its terms' reconstructions; layer 3 then finds its
    planted candidates (kept map c's filter j is candidate 80 c + j) and is rebuilt exactly. The union
    reading's candidates are the terms' energies, which do not contain the sum's.
    Catches: the sum not captured, its terms' reconstructions summed at their min-max range instead
    of their maps' range, or the layer after it reading the union of the terms."""
    planted = [(0, 12), (1, 44), (2, 67), (3, 5), (0, 30), (2, 71)]
    net = ResidualEnergyNet([3, 17, 42, 77], [5, 30, 51, 64], planted)
    image = _smooth_image()
    summed = loggabor.reconstruct(net, image, ["l1", "l2", "l3"], scales=(1.0,), weight_floor=0)
    union = loggabor.reconstruct(net, image, ["l1", "l2", "l3"], scales=(1.0,), weight_floor=0, adds="union")
    layers = {layer.name: layer for layer in summed.batched}
    assert list(layers) == ["l1", "l2", "add", "l3"]
    assert layers["add"].point == "sum" and layers["add"].sources == ["l1", "l2"]
    assert layers["add"].chosen.shape[2] == 0  # a sum chooses no candidates
    assert float(layers["add"].mae.max()) < 1e-4
    assert layers["l3"].sources == ["add"]
    assert layers["l3"].chosen[0, :, 0, 0].tolist() == [80 * c + j for c, j in planted]
    assert float(layers["l3"].mae.max()) < 1e-3
    by_name = {layer.name: layer for layer in union.batched}
    assert by_name["l3"].sources == ["l1", "l2"] and "add" not in by_name
    assert float(by_name["l3"].mae.mean()) > 20 * float(layers["l3"].mae.mean())


def test_cmrnet_block_outputs_are_captured_and_read_by_the_next_block():
    """M_n = O' + M_(n-1) (LG Eq. 10) and the DIM output are layers; a block is fed by both terms of its
    add, and the next block reads M_n (not the union of fuse and the block's input).
    Catches: blocks not captured, or fed by their input only (the pre-hook reading)."""
    capture = loggabor.trace(CMRNet().eval(), torch.rand(1, 3, 32, 32))
    assert {"block1", "block2", "block3", "dim"} <= set(capture.activations)
    assert sorted(capture.feeds["block1"]) == ["block1.fuse", "stem"]
    assert capture.feeds["block2.t1"] == ["block1"] and capture.feeds["dim.reduce"] == ["block3"]
    assert capture.feeds["dim"] == ["dim.branches.0", "dim.branches.1", "dim.branches.2"]
    assert capture.feeds["decode1"] == ["dim"]
    # each block output is a sum layer of its terms; block2's M_(n-1) is block1's map max-pooled
    assert {n: capture.points[n] for n in ("block1", "block2", "block3", "dim")} == dict.fromkeys(
        ("block1", "block2", "block3", "dim"), "sum")
    assert capture.terms["block2"] == ["block2.fuse", "block1"]
    rebuilt = sum(loggabor.replay(ops, capture.activations[term])
                  for term, ops in zip(capture.terms["block2"], capture.term_ops["block2"]))
    assert torch.allclose(rebuilt, capture.activations["block2"], rtol=1e-5, atol=1e-6)
    convs = loggabor.conv_layer_names(CMRNet())
    plain = loggabor.trace(CMRNet().eval(), torch.rand(1, 3, 32, 32), convs)
    assert plain.feeds["block2.t1"] == ["block1.add"]  # the sum, under the module it was made in
    union = loggabor.trace(CMRNet().eval(), torch.rand(1, 3, 32, 32), convs, adds="union")
    assert union.feeds["block2.t1"] == ["stem", "block1.fuse"]  # the union reading: no block layers


def test_capture_points_conv_bn_activation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(inplace=True)).eval()
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([-2.0, 1.5]))  # a negative gain flips polarity
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        conv = net[0](x)
        bn = net[1](conv)
    maps = {p: loggabor.trace(net, x, ["0"], point=p) for p in loggabor.POINTS}
    assert torch.allclose(maps["conv"].activations["0"], conv)  # not overwritten by the in-place ReLU
    assert torch.allclose(maps["bn"].activations["0"], bn)
    assert torch.allclose(maps["activation"].activations["0"], bn.clamp_min(0))
    assert {p: m.points["0"] for p, m in maps.items()} == {"conv": "conv", "bn": "bn", "activation": "activation"}
    with pytest.raises(ValueError, match="point"):
        loggabor.trace(net, x, ["0"], point="relu")


@pytest.mark.parametrize("model_cls, size, n", [(CMRNet, (16, 16), 2), (UNISAL, (32, 32), 1), (MSINet, (32, 32), 1)])
def test_three_models_explained_over_all_their_layers(model_cls, size, n):
    torch.manual_seed(0)
    model = model_cls().eval()
    convs = loggabor.default_layer_names(model)
    result = loggabor.reconstruct(model, torch.rand(n, 3, *size))
    rebuilt = [layer.name for layer in result.batched]
    sums = loggabor.trace(model, torch.rand(1, 3, *size)).terms
    # every convolution and sum is either rebuilt or skipped with its reason, never a crash
    assert sorted(rebuilt + list(result.skipped)) == sorted(set(convs) | set(sums))
    assert all("smaller than one 8x8 block" in reason or "could not be rebuilt" in reason
               for reason in result.skipped.values())
    assert result.saliency.shape == (n, *size) and torch.isfinite(result.saliency).all()
    for layer in result.batched:
        assert torch.isfinite(layer.mae).all() and layer.mae.shape[0] == n
        maps = {x.name: x.mae.shape[1] for x in result.batched}
        if layer.point == "sum":
            assert layer.name in sums and not layer.candidate_specs
            continue
        assert len(layer.candidate_specs) == sum(80 if s == "input" else 80 * min(10, maps[s]) for s in layer.sources)
    if model_cls is MSINet:
        # the global-average ASPP branch is passed through: the fusion reads its encoder inputs
        assert "aspp.conv1_5" in result.skipped
        sources = dict((layer.name, layer.sources) for layer in result.batched)["aspp.conv2"]
        assert sources[:4] == ["aspp.conv1_1", "aspp.conv1_2", "aspp.conv1_3", "aspp.conv1_4"]
        assert "encoder.conv5_3" in sources
    if model_cls is UNISAL:  # at 32x32 its deepest maps are 1x1: skipped, the decoder still rebuilt
        assert "post_cnn.inv_res.conv.0" in result.skipped and "smoothing_salicon" in rebuilt


def test_a_batch_is_the_same_as_each_image_alone():
    """Batching (and splitting a batch in ``batch_size`` parts, chunking) never mixes images.

    What is stable across CPUs: a batched convolution rounds differently from a single-image one
    (1e-7 relative, oneDNN picks kernels by batch size and instruction set), so later layers may
    resolve a near-tie differently (module docstring of ``reconstruct``). The first rebuilt layer
    reads the image's own energies: its per-map LG Eq. 5 MAEs move by rounding only (a changed top-10
    choice among near-tied candidates moves one map by at most its weight's share), so most maps
    agree to 1e-4 and the layer's mean to 1e-3, while mixing images moves every map by ~1e-1.
    Catches: min-max or block statistics taken over the batch instead of per image."""
    torch.manual_seed(0)
    model = CMRNet().eval()
    layers = ["stem", "block1.t1", "block1.f1", "block1.t2", "block1.fuse", "block2.t1"]
    images = torch.rand(3, 3, 16, 16)
    batch = loggabor.reconstruct(model, images, layers, batch_size=2, chunk=64)
    for b in range(3):
        alone = loggabor.reconstruct(model, images[b], layers)
        first, single = batch.batched[0], alone.batched[0]
        diff = (first.mae[b] - single.mae[0]).abs()
        assert float((diff < 1e-4).float().mean()) >= 0.9
        assert abs(float(first.mae[b].mean() - single.mae[0].mean())) < 1e-3
        assert float((first.chosen[b] == single.chosen[0]).float().mean()) >= 0.95
        assert torch.isfinite(batch.saliency[b]).all()
    assert not torch.allclose(batch.saliency[0], batch.saliency[1], atol=1e-3)


@pytest.mark.gpu_check
def test_unisal_paper_path_on_device(device):
    """The paper-scale path (all UNISAL layers, graph mode, activation maps, batched) on the device;
    on CUDA the bf16 forward pass must leave the reconstruction MAE materially unchanged."""
    torch.manual_seed(0)
    model = UNISAL().eval().to(device)
    images = torch.rand(2, 3, 64, 96, device=device)
    result = loggabor.reconstruct(model, images, keep_maps=False)
    sums = loggabor.trace(model, images[:1]).terms
    assert len(sums) == 10  # MobileNetV2's ten residual adds
    assert len(result.batched) + len(result.skipped) == len(loggabor.default_layer_names(model)) + len(sums)
    assert result.saliency.device.type == torch.device(device).type and torch.isfinite(result.saliency).all()
    if torch.device(device).type == "cuda":
        bf16 = loggabor.reconstruct(model, images, keep_maps=False, autocast=True)
        ours, theirs = result.layer_mae(), bf16.layer_mae()
        assert max(abs(ours[k] - theirs[k]) for k in ours) < 0.01


@pytest.fixture(scope="module")
def mit1003_image(shared_root):
    """The first MIT1003 stimulus at the chapter's size (32x48), in [0, 1]."""
    from hsi_core.io import read_image

    files = sorted((shared_root / "mit1003-subset" / "ALLSTIMULI").glob("*.jp*g"))
    if not files:
        pytest.skip("no MIT1003 stimuli in the shared data")
    image = torch.from_numpy(read_image(files[0]).copy()).permute(2, 0, 1).float()[None] / 255
    return F.interpolate(image, size=(32, 48), mode="bilinear", align_corners=False, antialias=True)[0]


@pytest.mark.parametrize("name", ["CMRNet", "UNISAL", "MSI-Net"])
def test_an_explanation_moves_only_where_it_said_it_was_ambiguous(mit1003_image, name):
    """A real image scaled by 1 + 1e-6 (far below one grey level), seeded random networks at the
    chapter's size, default settings. What holds, and is asserted: on the layers that read the
    image's own energies, every choice that moved between the two runs was reported as near-tied
    (``ties > 0``) in one of them: there, rounding moves an MAE by ~1e-6 of its size, a thousand
    times less than ``TIE_RTOL``, so a choice can only flip inside a reported tie window. Deeper, the
    min-max normalisation of each reconstruction (LG Eq. 4-5) amplifies rounding: measured on
    MSI-Net under AVX2 kernels, a 1e-6 change moves an 8x12 layer's reconstruction by 2.6e-4 with
    no choice moved, and the next layer's choices then move outside any tie window; so only the
    first layers' claim is stable on every CPU. What does not hold (issue 19's goal, CC >= 0.99 on
    the three networks): no CC bound is stable across images, so none is asserted.
    Catches: near-ties broken silently (``tie_rtol=0``), ties not reported."""
    from hsi_core.experiments import saliency_models
    from hsi_core.loggabor.stability import correlation, near_ties

    torch.manual_seed(0)
    model = saliency_models.build_model(name).eval()
    first = loggabor.reconstruct(model, mit1003_image, keep_maps=False)
    second = loggabor.reconstruct(model, mit1003_image * (1 + 1e-6), keep_maps=False)
    # the choices are ambiguous somewhere on every network here, and the result says so
    assert near_ties(first)["near-tied choices"] > 0
    assert any(layer.ambiguity()["ambiguous top-k share"] > 0 for layer in first.batched)
    reading_the_image = [(a, b) for a, b in zip(first.batched, second.batched) if a.sources == ["input"]]
    assert reading_the_image
    for a, b in reading_the_image:
        moved = (a.chosen.sort(-1).values != b.chosen.sort(-1).values).any(-1)
        announced = (a.ties > 0) | (b.ties > 0)
        assert bool(announced[moved].all()), f"{name} {a.name}: a choice moved without a reported near-tie"
    assert -1.0 <= float(correlation(first.saliency, second.saliency)[0]) <= 1.0 + 1e-6


@pytest.mark.parametrize("name", ["CMRNet", "UNISAL", "MSI-Net"])
def test_float64_explains_the_same_on_an_avx2_cpu(mit1003_image, name):
    """Issue 19's cross-CPU goal: seeded random networks on a real image at the chapter's size,
    ``precision="float64"`` (with ``CARRY_GRID``), here and in a child process held to AVX2
    (``emulated_cpu_rerun``): every choice and kept set is the same and the explainable maps agree
    (CC >= 0.99; measured on four MIT1003 images: CC 1.0 and no moved choice on all three networks,
    where float32 gave CC 0.15-0.95 and float64 without the grid 0.48-0.79 on UNISAL). On a CPU
    without AVX-512 both runs use AVX2 and agree trivially. Catches: ``precision`` ignored, a
    float32 step left inside the float64 path, or the grid not applied (UNISAL)."""
    from hsi_core.experiments import saliency_models
    from hsi_core.loggabor.stability import correlation, emulated_cpu_rerun

    torch.manual_seed(0)
    model = saliency_models.build_model(name).eval()
    here = loggabor.reconstruct(model, mit1003_image, keep_maps=False, precision="float64")
    there = emulated_cpu_rerun(model, mit1003_image, keep_maps=False, precision="float64")
    assert there["capability"] == "AVX2" or torch.backends.cpu.get_cpu_capability() != "AVX512"
    assert here.batched[0].mae.dtype == torch.float64
    assert [layer.name for layer in here.batched] == there["names"]
    for layer, chosen, kept in zip(here.batched, there["chosen"], there["kept"]):
        assert torch.equal(layer.chosen.sort(-1).values, chosen.sort(-1).values), layer.name
        assert torch.equal(layer.kept, kept), layer.name
    assert float(correlation(here.saliency, there["saliency"])[0]) >= 0.99


def test_carry_grid_rounds_the_maps_passed_on_in_float64_only():
    """The kept maps become candidates rounded to ``CARRY_GRID`` in float64 (default), unrounded in
    float32 or with ``carry_grid=0``; a negative grid is an error. Catches: the grid applied in
    float32 (where it cannot help), or not at all."""
    torch.manual_seed(0)
    model = CMRNet().eval()
    image = torch.rand(1, 3, 32, 48)
    layers = ["stem", "block1.t1"]
    energies = []
    original = loggabor.reconstruct.__globals__["energy"]

    def spy(maps, bank):
        energies.append(maps.clone())
        return original(maps, bank)

    loggabor.reconstruct.__globals__["energy"] = spy
    try:
        for options in ({"precision": "float64"}, {"precision": "float64", "carry_grid": 0}, {}):
            energies.clear()
            loggabor.reconstruct(model, image, layers, **options)
            passed_on = energies[-1]  # the stem's kept maps (the first call: the image)
            on_grid = torch.equal(passed_on, torch.round(passed_on / loggabor.CARRY_GRID) * loggabor.CARRY_GRID)
            assert on_grid == (options.get("precision") == "float64" and options.get("carry_grid") is None), options
    finally:
        loggabor.reconstruct.__globals__["energy"] = original
    with pytest.raises(ValueError, match="carry_grid"):
        loggabor.reconstruct(model, image, layers, carry_grid=-1.0)


def test_cmrnet_dim_applies_its_relu_per_branch_as_dinet_does():
    """The paper cites DINet for the DIM; DINet's code puts the ReLU inside each dilated branch, then
    sums. ``dim_relu="sum"`` (one ReLU after the sum) is the other reading."""
    from hsi_core.models.cmrnet import DilatedInception

    assert CMRNet().dim.relu == "branch"
    torch.manual_seed(0)
    x = torch.randn(2, 8, 24, 24)
    per_branch = DilatedInception(8, 6)
    after_sum = DilatedInception(8, 6, relu="sum")
    after_sum.load_state_dict(per_branch.state_dict())
    reduced = F.relu(per_branch.reduce(x))
    assert torch.allclose(per_branch(x), sum(F.relu(b(reduced)) for b in per_branch.branches), atol=1e-6)
    assert torch.allclose(after_sum(x), F.relu(sum(b(reduced) for b in per_branch.branches)), atol=1e-6)
    assert not torch.allclose(per_branch(x), after_sum(x), atol=1e-3)
    # the explanation sees the reading: each branch's map is taken after its own ReLU, or before the sum
    image = torch.rand(1, 3, 32, 48)
    names = ["dim.branches.0"]
    assert loggabor.trace(CMRNet().eval(), image, names).points == {"dim.branches.0": "activation"}
    assert loggabor.trace(CMRNet(dim_relu="sum").eval(), image, names).points == {"dim.branches.0": "conv"}
    with pytest.raises(ValueError, match="relu must be one of"):
        CMRNet(dim_relu="both")


def test_unisal_is_explained_after_its_output_nonlinearity():
    """By default the last layer rebuilt is UNISAL's saliency map itself (the density, after the
    log-softmax), in the same space as the map it explains; ``explained_output="logits"`` stops at
    the smoothed logits before it."""
    torch.manual_seed(0)
    model = UNISAL().eval()
    image = torch.rand(1, 3, 32, 48)
    capture = loggabor.trace(model, image)
    assert list(capture.activations)[-1] == "saliency_map"
    assert capture.feeds["saliency_map"] == ["smoothing_salicon"]
    with torch.no_grad():
        assert torch.allclose(capture.activations["saliency_map"][:, 0], model(image), atol=1e-6)
    model.explained_output = "logits"
    assert list(loggabor.trace(model, image).activations)[-1] == "smoothing_salicon"
    model.explained_output = "probabilities"
    with pytest.raises(ValueError, match="explained_output must be one of"):
        loggabor.default_layer_names(model)


def test_perturbation_stability_reuses_a_given_unperturbed_run():
    """``perturbation_stability(..., reference=run)`` equals the call that reruns it, and the per-image
    near-tied shares add up to ``near_ties``' total. Catches: the reference ignored or mistaken for the
    perturbed run (CC 1 everywhere), shares taken over the batch instead of per image."""
    from hsi_core.loggabor.stability import near_tied_share, near_ties, perturbation_stability

    torch.manual_seed(0)
    model = CMRNet().eval()
    layers = ["stem", "block1.t1", "block1.f1", "block1.fuse"]
    images = torch.rand(2, 3, 16, 16)
    factor = 1 + 1e-2  # large enough to move choices on a random network
    reference = loggabor.reconstruct(model, images, layers, keep_maps=False)
    given = perturbation_stability(model, images, layers, factor=factor, reference=reference)
    rerun = perturbation_stability(model, images, layers, factor=factor)
    assert torch.allclose(given["cc"], rerun["cc"], atol=1e-6)
    assert given["moved choices"] == rerun["moved choices"]
    share = near_tied_share(reference)
    assert share.shape == (2,)
    per_image_choices = near_ties(reference)["choices"] / 2
    assert round(float(share.sum()) * per_image_choices) == near_ties(reference)["near-tied choices"]
    one = loggabor.reconstruct(model, images[1:], layers, keep_maps=False)
    assert abs(float(near_tied_share(one)[0]) - float(share[1])) <= 0.1


def test_the_default_batch_size_follows_the_device():
    """On the CPU images are reconstructed two at a time by default (among the fastest there,
    ``benchmarks/results/loggabor.json``), on CUDA 16 together; an explicit size is kept.
    Catches: one default for every device, or the explicit size ignored."""

    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3, padding=1)
            self.batches = []

        def forward(self, x):
            self.batches.append(x.shape[0])
            return self.conv(x)

    net = Counting().eval()
    loggabor.reconstruct(net, torch.rand(3, 3, 16, 16), ["conv"], scales=(1.0,))
    assert net.batches == [2, 1]
    net.batches.clear()
    loggabor.reconstruct(net, torch.rand(3, 3, 16, 16), ["conv"], scales=(1.0,), batch_size=1)
    assert net.batches == [1, 1, 1]
    assert loggabor.default_batch_size("cpu") == 2 and loggabor.default_batch_size("cuda") == 16


def test_an_in_place_residual_add_is_a_sum_and_keeps_its_terms_maps():
    """``m += a`` is recorded like ``m + a``, and the first term's recorded map is the one before the add.
    Catches: the in-place add overwriting the recorded map (c3 would equal the sum) or not seen as a sum."""

    class InPlace(ToyGraph):
        def forward(self, x):
            a = F.relu(self.c1(x))
            m = self.c3(torch.cat([F.relu(self.c2a(a)), F.relu(self.c2b(a))], 1))
            m += a
            return self.c4(F.max_pool2d(m, 2))

    torch.manual_seed(0)
    capture = loggabor.trace(InPlace().eval(), torch.rand(1, 3, 16, 16))
    assert capture.terms == {"add": ["c3", "c1"]} and capture.feeds["c4"] == ["add"]
    assert torch.allclose(capture.activations["c3"] + capture.activations["c1"], capture.activations["add"])
