"""CMRNet, UNISAL and MSI-Net: sizes, weight loading/conversion, training on real NUS Scene images."""

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from hsi_core import datasets, evaluation, losses, training
from hsi_core.experiments import saliency_models
from hsi_core.baselines import centre_bias
from hsi_core.models.cmrnet import CMRNet
from hsi_core.models.msinet import MSINet, load_msinet_weights, state_dict_from_tf, tf_name_to_torch
from hsi_core.models.unisal import UNISAL, load_unisal_weights

REPO = Path(__file__).resolve().parents[1]


def test_parameter_counts():
    n_cmr = evaluation.count_parameters(CMRNet())
    print(f"CMRNet {n_cmr / 1e6:.3f} M, UNISAL {evaluation.count_parameters(UNISAL()) / 1e6:.3f} M, "
          f"MSI-Net {evaluation.count_parameters(MSINet()) / 1e6:.3f} M")
    assert abs(n_cmr - 2.5e6) <= 0.1 * 2.5e6  # the paper: "about 2.5 M"
    assert abs(evaluation.count_parameters(UNISAL()) - 3.19e6) < 0.01e6  # UNISAL's static path
    assert abs(evaluation.count_parameters(MSINet()) - 24.93e6) < 0.01e6  # MSI-Net (VGG16 + ASPP + decoder)


@pytest.mark.parametrize("cls", [CMRNet, UNISAL, MSINet])
def test_forward_shapes(cls):
    torch.manual_seed(0)
    model = cls().eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 96))
    assert out.shape == (2, 64, 96)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1 + 1e-6


# ---------------------------------------------------------------------------------------------
# Published weight layouts. tests/published_layouts/*.json hold the key names and shapes of
# the authors' files, derived from the authors' own code (see each file's "derived_from"), and
# a reference output of the authors' model on seeded random weights in that layout. The files
# below are built from those facts, never from our own state dict, so a wrong key, a wrong
# source or a wrong kernel layout in our code fails here.
DATA = Path(__file__).resolve().parent / "published_layouts"
UNISAL_OTHER_SOURCES = ("DHF1K", "Hollywood", "UCFSports")


def _layout(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def published_like(layout: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    """Seeded random values for every key of UNISAL's ``weights_best.pth`` layout, in file order
    (the same recipe produced the reference output of the authors' model in the JSON)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(1000, dtype=torch.long)
            continue
        value = torch.randn(shape, generator=gen)
        if key.endswith("running_var"):
            value = 0.5 + value.abs()
        elif "gaussians" in key:  # (G, y/x, mean/log std)
            value = torch.stack([0.5 + 0.2 * value[..., 0], -1.5 + 0.3 * value[..., 1]], -1)
        elif len(shape) == 4:  # convolution kernels: He scaling
            value = value * (2.0 / (shape[1] * shape[2] * shape[3])) ** 0.5
        elif key.endswith(".weight"):  # BatchNorm scale
            value = 1.0 + 0.1 * value
        else:
            value = 0.1 * value
        out[key] = value
    return out


def tf_arrays_like_published(layout: dict[str, list[int]], seed: int) -> dict[str, np.ndarray]:
    """Seeded random arrays for MSI-Net's TensorFlow variables (kernels HWIO), in layout order."""
    rs = np.random.RandomState(seed)
    out = {}
    for name, shape in layout.items():
        value = rs.standard_normal(shape).astype(np.float32)
        if len(shape) == 4:  # HWIO kernels: He scaling by the fan-in h * w * in
            value *= np.float32((2.0 / (shape[0] * shape[1] * shape[2])) ** 0.5)
        else:
            value *= np.float32(0.1)
        out[name] = value
    return out


def unisal_key_outside_static_path(key: str) -> bool:
    """The published keys the SALICON static path does not use: the RNN (bypassed for images),
    and the BatchNorm, adaptation, smoothing and Gaussians of the three video sources."""
    head = key.split(".")[0]
    return (head in ("rnn", "post_rnn") or any(f".bn_{s}." in key for s in UNISAL_OTHER_SOURCES)
            or head.endswith(tuple(f"_{s.lower()}" for s in UNISAL_OTHER_SOURCES)))


@pytest.fixture(scope="module")
def unisal_published(tmp_path_factory):
    doc = _layout("unisal_weights_best_layout.json")
    state = published_like(doc["layout"], doc["reference_forward"]["seed"])
    path = tmp_path_factory.mktemp("unisal") / "weights_best.pth"
    torch.save(state, path)
    return doc, state, path


def test_unisal_loads_every_parameter_from_the_published_layout(unisal_published, tmp_path):
    """Every tensor of our static path comes from the key of the same name in a file laid out like
    the authors' weights_best.pth; the keys left out are exactly the RNN's and the video sources'."""
    doc, state, path = unisal_published
    assert doc["derived_from"]["commit"] and len(doc["layout"]) == doc["derived_from"]["n_keys"]
    model = load_unisal_weights(UNISAL(), path)
    own = model.state_dict()
    for key, value in own.items():
        assert key in doc["layout"], f"{key} is not a key of the published file"
        assert list(value.shape) == doc["layout"][key], key
        assert torch.equal(value, state[key]), f"{key} did not receive the file's value"
    ignored = set(doc["layout"]) - set(own)
    expected = {k for k in doc["layout"] if unisal_key_outside_static_path(k)}
    assert ignored == expected, (sorted(ignored - expected)[:5], sorted(expected - ignored)[:5])
    assert sum(v.numel() for k, v in own.items() if k.endswith(("weight", "bias", "salicon"))) \
        == evaluation.count_parameters(model)  # every parameter was among the loaded tensors
    with pytest.raises(FileNotFoundError, match="weights_best.pth"):
        load_unisal_weights(UNISAL(), tmp_path / "missing.pth")
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a UNISAL state dict"):
        load_unisal_weights(UNISAL(), tmp_path / "other.pth")
    torch.save({**state, "smoothing_salicon.weight": torch.zeros(1, 1, 31, 31)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="shape mismatch.*smoothing_salicon"):
        load_unisal_weights(UNISAL(), tmp_path / "wrong.pth")


def test_unisal_computes_like_the_authors_model(unisal_published):
    """Loaded with the same weights, our model gives the log-density the authors' model gives
    (source SALICON, static image; recorded in the JSON from their code)."""
    doc, _, path = unisal_published
    ref = doc["reference_forward"]
    model = load_unisal_weights(UNISAL(), path).eval()
    x = torch.rand((1, 3, *ref["size"]), generator=torch.Generator().manual_seed(ref["seed"] + 1))
    with torch.no_grad():
        ours = model.log_density(x)[0, :: ref["step"], :: ref["step"]].numpy()
    np.testing.assert_allclose(ours, np.array(ref["log_density"]), atol=2e-4, rtol=0)


@pytest.fixture(scope="module")
def msinet_published(tmp_path_factory):
    """The converter run on a frozen-graph-like .npz: every weight constant of the authors' graph
    (seeded values) and its other constants; returns the layout, the arrays and the .pt written."""
    doc = _layout("msinet_salicon_tf_layout.json")
    arrays = tf_arrays_like_published(doc["layout"], doc["reference_forward"]["seed"])
    folder = tmp_path_factory.mktemp("msinet")
    others = {name: np.full(shape, 3.0, np.float32) for name, shape in doc["frozen_graph_other_constants"].items()}
    np.savez(folder / "model_salicon_cpu.npz", **arrays, **others)
    out = folder / "msinet.pt"
    script = runpy.run_path(str(REPO / "scripts/convert_msinet_weights.py"))
    assert script["main"]([str(folder / "model_salicon_cpu.npz"), str(out)]) == 0
    return doc, arrays, out, script


def _our_key(tf_name: str) -> str:
    """Our naming, stated once here: ``conv{b}/conv{b}_{i}/kernel`` -> ``encoder.conv{b}_{i}.weight``,
    ``aspp/...`` and ``decoder/...`` keep their scope; ``kernel`` -> ``weight``."""
    scope, layer, kind = tf_name.split("/")
    return f"{'encoder' if scope.startswith('conv') else scope}.{layer}.{'weight' if kind == 'kernel' else 'bias'}"


def test_msinet_converts_every_weight_of_the_published_layout(msinet_published, tmp_path):
    """Each TensorFlow weight lands, HWIO -> OIHW, in the parameter of the same layer, and each of
    our parameters gets one; Adam slots, step counters and the graph's other constants are ignored."""
    doc, arrays, out, _ = msinet_published
    model = load_msinet_weights(MSINet(), out)
    own = model.state_dict()
    assert sorted(_our_key(n) for n in doc["layout"]) == sorted(own)  # one file weight per parameter
    rng = np.random.default_rng(0)
    for name, shape in doc["layout"].items():
        ours = own[_our_key(name)].numpy()
        if len(shape) == 4:  # TensorFlow kernel[h, w, in, out] == PyTorch weight[out, in, h, w]
            for h, w, i, o in zip(*(rng.integers(0, n, 20) for n in shape)):
                assert ours[o, i, h, w] == arrays[name][h, w, i, o], (name, h, w, i, o)
            assert ours.shape == (shape[3], shape[2], shape[0], shape[1])
        else:
            np.testing.assert_array_equal(ours, arrays[name])
    assert evaluation.count_parameters(model) == sum(int(np.prod(s)) for s in doc["layout"].values())
    extras = {n: np.broadcast_to(np.float32(7.0), s) for n, s in doc["checkpoint_extras"].items()}
    from_checkpoint = state_dict_from_tf({**extras, **arrays})  # as read from model_salicon_cpu.ckpt
    assert all(torch.equal(from_checkpoint[k], own[k]) for k in own)
    assert all(tf_name_to_torch(n) is None for n in [*extras, *doc["frozen_graph_other_constants"]])
    broken = dict(arrays)
    del broken["decoder/conv4/kernel"]
    with pytest.raises(ValueError, match="missing"):
        state_dict_from_tf(broken)
    with pytest.raises(ValueError, match="aspp/conv1_2/kernel"):  # an OIHW kernel is refused
        state_dict_from_tf({**arrays, "aspp/conv1_2/kernel": arrays["aspp/conv1_2/kernel"].transpose(3, 2, 0, 1)})
    with pytest.raises(FileNotFoundError, match="convert_msinet_weights"):
        load_msinet_weights(MSINet(), tmp_path / "absent.pt")
    # the released arrays load directly too: the loader's filter (from_tf_names) converts them on the way
    npz = out.parent / "model_salicon_cpu.npz"
    direct = load_msinet_weights(MSINet(), npz).state_dict()
    assert all(torch.equal(direct[k], own[k]) for k in own)
    np.savez(tmp_path / "broken.npz", **broken)
    with pytest.raises(ValueError, match=r"broken\.npz: not an MSI-Net state dict: MSI-Net weights incomplete"):
        load_msinet_weights(MSINet(), tmp_path / "broken.npz")


def test_msinet_computes_like_the_authors_graph(msinet_published):
    """Converted from the same TensorFlow arrays, our model gives the saliency map the authors'
    graph gives (recorded in the JSON from their model.py)."""
    doc, arrays, out, _ = msinet_published
    ref = doc["reference_forward"]
    check = ref["weights_check"]["conv1/conv1_1/kernel sum"]  # the same seeded arrays as the reference
    assert abs(float(arrays["conv1/conv1_1/kernel"].sum()) - check) < 1e-4
    model = load_msinet_weights(MSINet(), out).eval()
    x = torch.from_numpy(np.random.RandomState(ref["seed"] + 1).rand(1, 3, *ref["size"]).astype(np.float32))
    with torch.no_grad():
        ours = model(x)[0, :: ref["step"], :: ref["step"]].numpy()
    np.testing.assert_allclose(ours, np.array(ref["saliency"]), atol=1e-4, rtol=0)


@pytest.fixture
def one_thread():
    """Small convolutions train faster on one thread than on two busy ones (the CI machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def nus_records(shared_root):
    root = shared_root / "nus-scene"
    records = datasets.scanpath_records(root / "tidy/fixations.mat", datasets.nus_scene_stimuli(root))
    assert len(records) == 500
    return records


@pytest.mark.parametrize("cls,lr,steps", [(CMRNet, 1e-3, 5), (UNISAL, 1e-3, 5), (MSINet, 1e-4, 5)])
def test_each_model_trains_on_nus_scene(cls, lr, steps, nus_records, tmp_path, one_thread):
    """A few steps on one batch of real images: the paper's loss (LG Eq. 11-12) falls."""
    torch.manual_seed(0)
    items = evaluation.load_items(nus_records[:6], (32, 64))
    history = training.fit(cls(), items, loss_fn=training.saliency_batch_loss(losses.normalized_l1_loss), epochs=steps,
                           run_dir=tmp_path, batch_size=6, lr=lr, lr_step=100, progress=False).history
    curve = [h["train_loss"] for h in history]
    assert all(np.isfinite(curve))
    assert curve[-1] < 0.97 * curve[0], curve


def test_cmrnet_beats_centre_bias_on_held_out_nus_scene(nus_records, tmp_path, one_thread):
    """Done-when of the issue, at small scale: CMRNet trained briefly on part of NUS Scene beats the
    centre prior on other NUS Scene images in CC and AUC-Judd. To fit the test budget the network is
    CMRNet at half width (32 channels, Cd = 40, 0.6 M parameters) on 32x48 images for 192 steps of
    Adam at 3e-4; the book's chapter trains the full-width model. Not the paper's 1e-3: with batches
    of 4 the half-width network can collapse to a flat map at 1e-3, depending on the CPU's kernels
    (measured: seed 0 on AVX-512 kernels, training loss -> 1.0 and 97 of 100 held-out maps flat;
    seeds 1 and 2 and AVX2 kernels train), while at 3e-4 seeds 0-2 reached CC 0.56-0.59 against the
    centre's 0.54 on AVX-512 kernels, and seed 0 (this test's) 0.59 on AVX2 kernels too."""
    order = np.random.default_rng(0).permutation(len(nus_records))
    size = (32, 48)
    train = evaluation.load_items([nus_records[i] for i in order[:64]], size)
    test = evaluation.load_items([nus_records[i] for i in order[400:]], size)
    torch.manual_seed(0)
    model = CMRNet(width=32, dim_channels=40)
    training.fit(model, train, loss_fn=training.saliency_batch_loss(losses.normalized_l1_loss), epochs=12,
                 run_dir=tmp_path, batch_size=4, lr=3e-4, lr_step=100, progress=False)
    model.eval()
    ours = evaluation.mean_table({"CMRNet": evaluation.evaluate(model, test, n_splits=10),
                                  "centre bias": evaluation.evaluate(centre_bias, test, n_splits=10)})
    print(ours.round(3))
    assert ours.loc["CMRNet", "CC"] > ours.loc["centre bias", "CC"]
    assert ours.loc["CMRNet", "AUC-Judd"] > ours.loc["centre bias", "AUC-Judd"]


def test_explainable_layers():
    model = CMRNet()
    names = saliency_models.explainable_layers(model, (32, 48), max_layers=5)
    convs = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert 1 <= len(names) <= 5 and set(names) <= convs and names[0] == "stem"
    assert len(saliency_models.explainable_layers(model, (32, 48), max_layers=100)) > 5
    with pytest.raises(ValueError, match="no convolution output"):
        saliency_models.explainable_layers(model, (4, 4))
