"""hsi_core.xai on tiny networks where the right answer is known, and RISE against xaitk-saliency."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hsi_core import xai
from hsi_core.models.classifier import SmallCNN


class ColourNet(nn.Module):
    """Class 0 = how much pure red the image holds, class 1 = how much pure green (known evidence)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0]]).view(2, 3, 1, 1))
            self.conv.bias.fill_(-0.2)
        self.relu = nn.ReLU()
        self.cam_layer = nn.Sequential(self.conv, self.relu)
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.head.weight.copy_(40 * torch.eye(2))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cam_layer(x).mean((2, 3)))


def scene(boxes: list[tuple[int, int, int]], size: int = 32) -> torch.Tensor:
    """Grey images, each with a red 8x8 square at (row, col) and a green one elsewhere when asked."""
    x = torch.full((len(boxes), 3, size, size), 0.5)
    for i, (r, c, _) in enumerate(boxes):
        x[i, :, r:r + 8, c:c + 8] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    return x


def box_mask(r: int, c: int, size: int = 32) -> torch.Tensor:
    m = torch.zeros(size, size, dtype=torch.bool)
    m[r:r + 8, c:c + 8] = True
    return m


BOXES = [(2, 3, 0), (20, 18, 0), (12, 22, 0)]


def _peak_in_box(maps: torch.Tensor, boxes: list[tuple[int, int, int]]) -> None:
    for m, (r, c, _) in zip(maps, boxes):
        peak = int(m.flatten().argmax())
        assert box_mask(r, c)[peak // m.shape[1], peak % m.shape[1]], f"peak {divmod(peak, m.shape[1])} not in box {(r, c)}"
        inside = m[box_mask(r, c)].mean()
        outside = m[~box_mask(r, c)].mean()
        assert inside > outside + 0.4, (float(inside), float(outside))


@pytest.mark.parametrize("method", ["gbp", "gradcam", "rise"])
def test_peak_falls_on_the_evidence(method: str) -> None:
    torch.manual_seed(0)
    net = ColourNet()
    x = scene(BOXES)
    targets = torch.zeros(len(BOXES), dtype=torch.long)
    f = {"gbp": xai.guided_backprop, "gradcam": xai.grad_cam,
         "rise": lambda *a, **k: xai.rise(*a, n_masks=3000, s=4, batch_size=512, **k)}[method]
    maps = f(net, x, targets)
    assert maps.shape == (len(BOXES), 32, 32)
    # normalize=True is the min-max of the raw map (catches e.g. a max-only scaling or a skipped normalisation)
    torch.testing.assert_close(maps, xai.normalize_maps(f(net, x, targets, normalize=False)), rtol=0, atol=1e-6)
    _peak_in_box(maps, BOXES)


def test_target_matters_two_pieces_of_evidence() -> None:
    """Red square top-left, green bottom-right: class 0's maps peak on red, class 1's on green."""
    net = ColourNet()
    x = scene([(2, 2, 0)])
    x[0, :, 22:30, 22:30] = torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1)
    for name, f in (("gradcam", xai.grad_cam), ("rise", lambda m, i, t: xai.rise(m, i, t, n_masks=2000, s=4, batch_size=512))):
        red = f(net, x, torch.tensor([0]))[0]
        green = f(net, x, torch.tensor([1]))[0]
        assert red[box_mask(2, 2)].mean() > red[box_mask(22, 22)].mean() + 0.2, name
        assert green[box_mask(22, 22)].mean() > green[box_mask(2, 2)].mean() + 0.2, name


def test_rise_masks_follow_the_recipe() -> None:
    masks = xai.rise_masks(500, (30, 40), s=5, p1=0.3, seed=1)
    assert masks.shape == (500, 30, 40)
    assert masks.min() >= 0 and masks.max() <= 1
    assert abs(float(masks.mean()) - 0.3) < 0.03
    assert not torch.equal(masks[0], masks[1])
    assert torch.equal(masks, xai.rise_masks(500, (30, 40), s=5, p1=0.3, seed=1))
    with pytest.raises(ValueError):
        xai.rise_grids(0, 7, 0.5)
    with pytest.raises(ValueError):
        xai.rise_grids(10, 7, 1.5)


def _reference_rise(net: nn.Module, image: torch.Tensor, target: int, masks: torch.Tensor, p1: float) -> np.ndarray:
    """One image, one mask at a time, numpy accumulation (RISE Eq. 6 written out)."""
    sal = np.zeros(masks.shape[1:])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)            # hundreds of tiny forwards: thread hand-offs dominate on a busy machine
    try:
        with torch.no_grad():
            for m in masks:
                prob = net((image * m)[None]).softmax(-1)[0, target].item()
                sal += prob * m.numpy()
    finally:
        torch.set_num_threads(threads)
    return sal / (len(masks) * p1)


def test_rise_equals_one_at_a_time_reference_and_is_chunk_invariant() -> None:
    torch.manual_seed(0)
    net = SmallCNN(n_classes=5, width=4, input_size=32).eval()
    x = torch.rand(3, 3, 32, 32)
    t = torch.tensor([0, 3, 1])
    n, s, p1 = 64, 4, 0.5
    batched = xai.rise(net, x, t, n_masks=n, s=s, p1=p1, seed=3, batch_size=40, normalize=False)
    other = xai.rise(net, x, t, n_masks=n, s=s, p1=p1, seed=3, batch_size=7, normalize=False)
    # float32 sums of 64 products in another order, forwards at other batch sizes: a few ulps, not 1e-4
    torch.testing.assert_close(batched, other, rtol=1e-4, atol=1e-6)
    shared = xai.rise(net, x, t, n_masks=n, s=s, p1=p1, seed=3, batch_size=40, masks="shared", normalize=False)
    for i in range(3):
        ref = _reference_rise(net, x[i], int(t[i]), xai.rise_image_masks(x[i], n, s=s, p1=p1, seed=3), p1)
        np.testing.assert_allclose(batched[i].numpy(), ref, rtol=1e-4, atol=1e-6)
        ref = _reference_rise(net, x[i], int(t[i]), xai.rise_masks(n, (32, 32), s=s, p1=p1, seed=3), p1)
        np.testing.assert_allclose(shared[i].numpy(), ref, rtol=1e-4, atol=1e-6)


def test_rise_memory_is_bounded_by_batch_size() -> None:
    seen: list[int] = []

    class Spy(ColourNet):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.shape[0])
            return super().forward(x)

    xai.rise(Spy(), scene(BOXES * 4), torch.zeros(12, dtype=torch.long), n_masks=100, s=4, batch_size=50)
    assert max(seen) <= 50
    assert sum(seen) == 12 * 100


def test_rise_scoring_matches_xaitk() -> None:
    """Same masks, same model outputs: our RISE Eq. 6 scoring vs xaitk-saliency's RISEScoring (corr >= 0.99)."""
    rs = pytest.importorskip("xaitk_saliency.impls.gen_classifier_conf_sal.rise_scoring")
    torch.manual_seed(0)
    net = SmallCNN(n_classes=5, width=8, input_size=32).eval()
    image = torch.rand(1, 3, 48, 48)
    masks = xai.rise_image_masks(image[0], 400, s=6, p1=0.5, seed=0)
    with torch.no_grad():
        scores = net(image * masks[:, None]).softmax(-1)                      # (N, C)
        reference = net(image).softmax(-1)
    theirs_debiased = rs.RISEScoring(p1=0.5).generate(reference.numpy(), scores.numpy(), masks.numpy())
    theirs_plain = rs.RISEScoring(p1=0.0).generate(reference.numpy(), scores.numpy(), masks.numpy())
    ours_debiased = xai.rise_scoring(scores, masks, 0.5, debias=True).numpy()
    ours_plain = xai.rise_scoring(scores, masks, 0.5).numpy()
    for ours, theirs in ((ours_debiased, theirs_debiased), (ours_plain, theirs_plain)):
        assert ours.shape == theirs.shape == (5, 48, 48)
        for c in range(5):
            r = np.corrcoef(ours[c].ravel(), theirs[c].ravel())[0, 1]
            assert r >= 0.99, (c, r)
    # and the full batched pipeline gives the same map as the scoring on those masks
    full = xai.rise(net, image, torch.tensor([2]), n_masks=400, s=6, p1=0.5, seed=0, debias=True, normalize=False)
    np.testing.assert_allclose(full[0].numpy(), ours_debiased[2], rtol=1e-4, atol=1e-6)


def test_default_layer_and_bad_input() -> None:
    net = SmallCNN(n_classes=3, width=4, input_size=32)
    assert xai.default_cam_layer(net) is net.features[-1]
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert xai.default_cam_layer(plain) is plain[2]
    with pytest.raises(ValueError, match="targets"):
        xai.grad_cam(net, torch.rand(2, 3, 32, 32), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="B, 3, H, W"):
        xai.rise(net, torch.rand(3, 32, 32), 0)
    with pytest.raises(ValueError, match="NaN"):
        xai.guided_backprop(net, torch.full((1, 3, 32, 32), float("nan")), 0)
    with pytest.raises(ValueError, match="unknown methods"):
        xai.explain(net, torch.rand(1, 3, 32, 32), 0, methods=("LIME",))


def test_explain_wires_each_name_to_its_method_and_normalises() -> None:
    """Planted bugs caught: a name mapped to another method (e.g. "Grad-CAM" -> guided_backprop), rise_kwargs
    dropped, or explain's maps not the min-max of the method's raw map."""
    torch.manual_seed(0)
    net = SmallCNN(n_classes=3, width=4, input_size=32).eval()
    x, t = torch.rand(2, 3, 40, 40), torch.tensor([0, 2])
    kwargs = {"n_masks": 50, "s": 4}
    maps = xai.explain(net, x, t, rise_kwargs=kwargs)
    assert set(maps) == set(xai.METHODS)
    direct = {"GBP": xai.guided_backprop(net, x, t, normalize=False), "Grad-CAM": xai.grad_cam(net, x, t, normalize=False),
              "RISE": xai.rise(net, x, t, normalize=False, **kwargs)}
    for name, m in maps.items():
        assert m.shape == (2, 40, 40)
        torch.testing.assert_close(m, xai.normalize_maps(direct[name]), rtol=0, atol=1e-5, msg=name)
    for a in direct:                                     # the three raw maps differ: the wiring check can fail
        for b in direct:
            if a < b:
                assert not torch.allclose(xai.normalize_maps(direct[a]), xai.normalize_maps(direct[b]), atol=0.05)


def test_resnet50_loader_errors_and_torchvision_resnet_explained(tmp_path) -> None:
    import torchvision

    from hsi_core.models.classifier import ImageNetClassifier, load_small_cnn, resnet50

    with pytest.raises(FileNotFoundError, match="download.pytorch.org"):
        resnet50(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="ResNet-50"):
        resnet50(bad)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        resnet50(tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match="train_small_cnn"):
        load_small_cnn(tmp_path / "none.pt")
    # torchvision ResNets reuse in-place ReLU modules: captum's hooks must still work on them
    net = ImageNetClassifier(torchvision.models.resnet18(weights=None)).eval()
    x = torch.rand(2, 3, 64, 64)
    assert xai.default_cam_layer(net) is net.net.layer4
    for f in (xai.guided_backprop, xai.grad_cam):
        m = f(net, x, torch.tensor([1, 5]))
        assert m.shape == (2, 64, 64) and torch.isfinite(m).all() and m.max() == 1


def test_small_cnn_trains_through_fit_and_reloads(tmp_path) -> None:
    from hsi_core.experiments.small_cnn import train_small_cnn
    from hsi_core.models.classifier import load_small_cnn

    model, report = train_small_cnn(tmp_path / "cnn", n_per_class=4, n_val_per_class=2, epochs=3, width=8,
                                    input_size=32, batch_size=16, progress=False)
    losses = [h["train_loss"] for h in report["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    again = load_small_cnn(report["last_path"])
    # the held-out accuracy, recomputed by hand on the held-out glyphs (catches scoring the training set)
    from hsi_core.datasets import HSB_CLASSES
    from hsi_core.demo import classification_set

    xv, yv = classification_set(2, size=32, seed=1000, tensors=True)
    assert report["n_val"] == 2 * len(HSB_CLASSES) == len(yv)
    with torch.no_grad():
        by_hand = float((again(xv).argmax(1) == yv).double().mean())
    assert report["val_accuracy"] == pytest.approx(by_hand, abs=1e-6)   # a float32 mean of 0/1 values
    x = torch.rand(2, 3, 50, 50)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))


def test_accuracy_counts_top1_hits_across_batches() -> None:
    """Planted bugs caught: argmin for argmax, a wrong comparison, or the last batch dropped. (Three epochs
    leave the CNN near chance, where a wrong accuracy can coincide with the right one.)"""
    from hsi_core.models.classifier import accuracy

    class Known(nn.Module):                   # predicts the class written in each image's first pixel
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 4).float() * 5 + 1

    images = torch.zeros(5, 3, 2, 2)
    images[:, 0, 0, 0] = torch.tensor([0.0, 1, 2, 3, 0])
    assert accuracy(Known(), images, torch.tensor([0, 1, 0, 3, 2]), batch_size=2) == pytest.approx(3 / 5)


# ----------------------------------------------------------------------------- issue #10/#11 additions
class _GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients where the input was positive (Springenberg 2015)."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad.clamp_min(0) * (x > 0).to(grad.dtype)


def _hand_guided_backprop(net: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Guided backprop written out: every nn.ReLU's forward replaced by ``_GuidedReLU``, plain autograd."""
    import copy

    net = copy.deepcopy(net).eval()
    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.forward = _GuidedReLU.apply  # type: ignore[method-assign]
    x = images.clone().requires_grad_(True)
    net(x).gather(1, targets[:, None]).sum().backward()
    return x.grad.abs().amax(1)


def test_captum_guided_backprop_equals_hand_written_guided_relu_on_a_torchvision_resnet() -> None:
    """#10: captum's GBP on a torchvision ResNet (in-place ReLU modules reused inside each block) is the
    guided-ReLU backward, image by image in a batch."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = resnet18(weights=None, num_classes=7).eval()
    images = torch.rand(2, 3, 48, 48)
    targets = torch.tensor([3, 5])
    ours = xai.guided_backprop(net, images, targets, normalize=False)
    reference = _hand_guided_backprop(net, images, targets)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-7)
    plain = images.clone().requires_grad_(True)
    net(plain).gather(1, targets[:, None]).sum().backward()
    assert not torch.allclose(plain.grad.abs().amax(1), reference, rtol=1e-2)   # the test can tell them apart


class _Spy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().float().clone())
        return torch.zeros(x.shape[0], 2) + self.w


@pytest.mark.parametrize("occluder", ["black", "mean", (0.2, 0.9, 0.4)])
def test_rise_occluder_fills_masked_pixels(occluder) -> None:
    """Masked images are ``I * M + c * (1 - M)``: c = 0 (black), the ImageNet mean, or a given colour."""
    image = torch.rand(1, 3, 20, 24)
    spy = _Spy()
    xai.rise(spy, image, [0], n_masks=12, s=4, p1=0.5, seed=3, batch_size=5, occluder=occluder, normalize=False)
    seen = torch.cat(spy.seen)
    masks = xai.rise_image_masks(image[0], 12, s=4, p1=0.5, seed=3)[:, None]
    colour = {"black": (0, 0, 0), "mean": xai.IMAGENET_MEAN}.get(occluder, occluder) if isinstance(occluder, str) \
        else occluder
    c = torch.tensor(colour, dtype=torch.float32).view(1, 3, 1, 1)
    torch.testing.assert_close(seen, image * masks + c * (1 - masks), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="occluder"):
        xai.rise(spy, image, [0], n_masks=4, occluder="grey")


def _resnet50(device: str) -> nn.Module:
    from torchvision.models import resnet50

    from hsi_core.models.classifier import ImageNetClassifier

    torch.manual_seed(0)
    return ImageNetClassifier(resnet50(weights=None)).eval().to(device)


@pytest.mark.gpu_check
def test_gpu_check_three_methods_on_resnet50(device: str) -> None:
    """GBP, Grad-CAM (batched) and RISE on a ResNet-50 (random weights, tiny images) on the check's device:
    unit-range maps of the right shape, each image's maps the same as when explained alone, and RISE with
    its device defaults (bf16 + channels_last on CUDA) close to fp32 RISE."""
    net = _resnet50(device)
    torch.manual_seed(1)
    images = torch.rand(2, 3, 64, 64, device=device)
    with torch.no_grad():                   # classes with positive evidence, different for the two images
        logits = net(images)
    targets = torch.stack([logits[0].argmax(), logits[1].topk(2).indices[1]])
    maps = xai.explain(net, images, targets, rise_kwargs={"n_masks": 32, "batch_size": 32})
    raw = xai.explain(net, images, targets, methods=("GBP", "Grad-CAM"), normalize=False)
    for name, m in maps.items():
        assert m.shape == (2, 64, 64) and m.device.type == torch.device(device).type, name
        assert torch.isfinite(m).all() and not xai.is_blank(m).any(), name
        if name in raw:                    # the min-max of the raw map, on the device
            torch.testing.assert_close(m, xai.normalize_maps(raw[name]), rtol=0, atol=1e-5, msg=name)
    alone = xai.explain(net, images[1:2], targets[1:2], methods=("GBP", "Grad-CAM"), normalize=False)
    for name, m in alone.items():
        assert m[0].abs().max() > 0, name
        torch.testing.assert_close(m[0], raw[name][1], rtol=1e-3, atol=1e-6 * float(m.abs().max()))
    if device == "cuda":                   # on the CPU the default is fp32 already: nothing to compare
        fp32 = xai.rise(net, images, targets, n_masks=32, batch_size=32, amp=False, normalize=False)
        fast = xai.rise(net, images, targets, n_masks=32, batch_size=32, normalize=False)
        corr = torch.corrcoef(torch.stack([fp32.flatten(), fast.flatten()]))[0, 1]
        assert corr > 0.98


# ----------------------------------------------------------------------------- issue #17 item 5/6
class EvidenceAgainstNet(ColourNet):
    """Class 0 = red minus green: the green square is evidence *against* class 0, so its Grad-CAM term
    ``alpha_green * A_green`` is negative there and only Grad-CAM's ReLU removes it."""

    def __init__(self) -> None:
        super().__init__()
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[40.0, -40.0], [-40.0, 40.0]]))


def _hand_grad_cam(net: nn.Module, layer: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Grad-CAM written out (Selvaraju et al. 2017, Eq. 1-2): alpha_k = mean of dy/dA^k, ReLU(sum_k alpha_k A^k),
    bilinear up-sampling; plain autograd with a forward hook, no captum."""
    acts: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: acts.append(out))
    try:
        y = net(images).gather(1, targets[:, None]).sum()
    finally:
        handle.remove()
    grads = torch.autograd.grad(y, acts[0])[0]
    cam = torch.relu((grads.mean((2, 3), keepdim=True) * acts[0]).sum(1, keepdim=True))
    return torch.nn.functional.interpolate(cam, images.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach()


def test_grad_cam_is_the_relu_of_the_weighted_activations() -> None:
    """Planted bug caught: Grad-CAM without its ReLU (``relu_attributions=False``): the green square, evidence
    against the target, then scores below the background, and the map no longer equals the hand-written one."""
    net = EvidenceAgainstNet().eval()
    x = scene([(2, 2, 0)])
    x[0, :, 20:28, 20:28] = torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1)
    t = torch.tensor([0])
    raw = xai.grad_cam(net, x, t, normalize=False)
    torch.testing.assert_close(raw, _hand_grad_cam(net, net.cam_layer, x, t), rtol=1e-5, atol=1e-7)
    green = torch.zeros(32, 32, dtype=torch.bool)
    green[21:27, 21:27] = True                           # away from the up-sampling's blur at the edges
    assert float(raw[0][green].abs().max()) == 0.0      # the ReLU zeroes the counter-evidence exactly
    inner = torch.zeros(32, 32, dtype=torch.bool)
    inner[3:9, 3:9] = True                              # and keeps the evidence: alpha_red * A_red by hand,
    assert float(raw[0][inner].min()) == pytest.approx(40 / 32 ** 2 * (1.0 - 0.2), rel=1e-5)   # 40/HW * 0.8
    norm = xai.grad_cam(net, x, t)[0]
    background = ~(box_mask(2, 2) | box_mask(20, 20))
    assert float(norm[green].max()) == 0.0 and float(norm[background].max()) == 0.0


def test_blank_maps_normalise_to_zero_not_to_stretched_noise() -> None:
    """Planted bug caught: min-max with only an epsilon floor, which stretches a map varying by 1e-7 of its
    value (a collapsed model's output) to the full [0, 1] range."""
    flat = torch.full((3, 8, 8), 0.5)
    flat[1] += 6e-8 * torch.rand(8, 8)                  # rounding-level variation, as a collapsed HSI gives
    flat[2] = 0.0
    real = torch.rand(1, 8, 8) * 1e-3                    # small but real variation is kept
    maps = torch.cat([flat, real])
    assert xai.is_blank(maps).tolist() == [True, True, True, False]
    out = xai.normalize_maps(maps)
    assert float(out[:3].abs().max()) == 0.0
    assert float(out[3].min()) == 0.0 and float(out[3].max()) == 1.0


class _MaskSpy(nn.Module):
    """Records every masked image; its output depends on the input (so RISE maps differ between images)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        red = x[:, 0].mean((1, 2))
        return torch.stack([4 * red, -4 * red], 1)


def _masks_seen(images: torch.Tensor, **kwargs) -> torch.Tensor:
    """``(B, N, H, W)`` masks RISE applied to each image, whatever order its steps take: with a black
    occluder a masked image is ``I_j * M``, and only its own image ``j`` gives the same ratio ``M`` in all
    three channels (the images are random and distinct)."""
    spy = _MaskSpy()
    xai.rise(spy, images, torch.zeros(len(images), dtype=torch.long), normalize=False, **kwargs)
    seen = torch.cat(spy.seen)                                                  # (B * N, 3, H, W)
    ratios = seen[:, None] / images[None]                                       # (B * N, B, 3, H, W)
    owner = ratios.var(2).flatten(2).amax(2).argmin(1)                          # (B * N,)
    per_image = [ratios[owner == j, j, 0] for j in range(len(images))]          # step order = mask order
    assert all(len(m) == kwargs["n_masks"] for m in per_image), [len(m) for m in per_image]
    return torch.stack(per_image)


def test_rise_masks_are_seeded_by_the_image_not_by_the_batch() -> None:
    """Planted bugs caught: per-image seeds taken from the position in the batch (``seed + i``): the image
    alone gets other masks than in the batch; one mask set for all images in ``per-image`` mode: different
    images share masks."""
    torch.manual_seed(0)
    x = 0.2 + 0.8 * torch.rand(4, 3, 16, 20)             # no zero pixel: masks recoverable by division
    kw = {"n_masks": 24, "s": 4, "p1": 0.5, "seed": 7}
    in_batch = _masks_seen(x, batch_size=16, **kw)
    alone = _masks_seen(x[2:3], batch_size=5, **kw)
    # masks are products of small (s = 4 terms) matrices in [0, 1]; division by pixels >= 0.2: ulps only
    torch.testing.assert_close(alone[0], in_batch[2], rtol=0, atol=1e-5)
    torch.testing.assert_close(in_batch[2], xai.rise_image_masks(x[2], 24, s=4, p1=0.5, seed=7), rtol=0, atol=1e-5)
    for i in range(4):
        for j in range(i + 1, 4):
            assert (in_batch[i] - in_batch[j]).abs().max() > 0.5, (i, j)     # different images, different masks
    assert xai.image_mask_seed(x[1].clone(), 7) == xai.image_mask_seed(x[1], 7)   # seeded by content
    assert xai.image_mask_seed(x[1], 7) != xai.image_mask_seed(x[1], 8)
    other_seed = _masks_seen(x[2:3], batch_size=16, **{**kw, "seed": 8})
    assert (other_seed[0] - in_batch[2]).abs().max() > 0.5
    shared = _masks_seen(x, batch_size=16, masks="shared", **kw)
    torch.testing.assert_close(shared[0], shared[3], rtol=0, atol=1e-5)      # the authors' reading: one set
    torch.testing.assert_close(shared[0], xai.rise_masks(24, (16, 20), s=4, p1=0.5, seed=7), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="masks"):
        xai.rise(_MaskSpy(), x, 0, n_masks=4, masks="one")


def test_rise_map_of_an_image_is_the_same_alone_and_in_any_batch() -> None:
    """The map itself (not only the masks): image 2 alone, in the batch, and at another position."""
    torch.manual_seed(0)
    net = SmallCNN(n_classes=5, width=4, input_size=32).eval()
    x, t = torch.rand(4, 3, 32, 32), torch.tensor([0, 3, 1, 2])
    kw = {"n_masks": 48, "s": 4, "seed": 1, "normalize": False}
    batch = xai.rise(net, x, t, batch_size=32, **kw)
    alone = xai.rise(net, x[2:3], t[2:3], batch_size=6, **kw)
    moved = xai.rise(net, x[[2, 0]], t[[2, 0]], batch_size=11, **kw)
    # float32: 48 products summed in another order, conv kernels at another batch size; the maps of two
    # different mask sets differ by ~10% of their range, so 1e-4 relative cannot hide a seeding bug
    torch.testing.assert_close(alone[0], batch[2], rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(moved[0], batch[2], rtol=1e-4, atol=1e-7)
    other = xai.rise(net, x[2:3], t[2:3], batch_size=32, **{**kw, "seed": 2})
    assert float((other[0] - batch[2]).abs().max()) > 100 * 1e-4 * float(batch[2].abs().max())
