"""HSI model: shapes, HSI Eq. 1 against hand computation, z against open_clip's pooled output, checkpoints.

CLIP RN50 is slow on CPU: one module-scoped random-init model serves most tests."""

import numpy as np
import pytest
import torch

from hsi_core import losses
from hsi_core.models import hsi as hsi_mod
from hsi_core.models.hsi import HSI, HSIBaseline, build_clip_rn50, preprocess, score_map

LABELS = ["goldfish", "zebra", "lemon"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HSI(labels=LABELS).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def test_score_map_eq1_by_hand():
    z = torch.tensor([[[[3.0, 0.0]], [[4.0, 1.0]]]])          # (B=1, D=2, h=1, w=2): z_00 = (3, 4), z_01 = (0, 1)
    s = torch.tensor([[1.0, 0.0]])
    a = score_map(z, s)
    assert a.shape == (1, 1, 2)
    assert a[0, 0, 0].item() == pytest.approx(3 / 5) and a[0, 0, 1].item() == pytest.approx(0.0, abs=1e-7)
    multi = score_map(z, torch.tensor([[[1.0, 0.0], [0.0, 2.0]]]))   # (B, N=2, D)
    assert multi.shape == (1, 2, 1, 2)
    assert torch.allclose(multi[0, 1, 0], torch.tensor([4 / 5, 1.0]))


def test_forward_shapes_and_range(model, images):
    with torch.no_grad():
        out = model(images, torch.tensor([0, 2]))
    assert out["saliency"].shape == (2, 224, 224)
    assert out["score_map"].shape == (2, 7, 7) and out["z"].shape == (2, 1024, 7, 7)
    # The saliency is the decoder on [u4', u5, z, a] with a = HSI Eq. 1 of each image's own label: a
    # forward that fed another label's score map, or none, is caught here (same kernels, same batch:
    # equal up to nothing but identical arithmetic), and the label must move the map.
    with torch.no_grad():
        enc = model.encode_image(images)
        own = model.decode(model.features(enc), score_map(enc["z"], model.text_embeddings[[0, 2]]))
        swapped = model(images, torch.tensor([2, 0]))["saliency"]
    assert torch.allclose(out["saliency"], own, atol=1e-6)
    assert (swapped - out["saliency"]).abs().max() > 0
    # The score map is HSI Eq. 1 with the cached text embedding of each image's label.
    expected = score_map(out["z"], model.text_embeddings[[0, 2]])
    assert torch.allclose(out["score_map"], expected, atol=1e-6)
    assert out["score_map"].abs().max() <= 1 + 1e-6



def test_decode_intermediates_are_the_stages_of_the_same_map(model, images):
    """``decode(..., return_intermediates=True)`` (chapter 2's trace of Figure 7) gives the decoder's input,
    hidden layer and logits, and the very map ``decode`` returns. Catches an intermediate path that skips or
    reorders a layer (its map would differ) and intermediates of the wrong stage (wrong shapes)."""
    with torch.no_grad():
        enc = model.encode_image(images)
        feats, a = model.features(enc), score_map(enc["z"], model.text_embeddings[[0, 2]])
        stages = model.decode(feats, a, return_intermediates=True)
        plain = model.decode(feats, a)
    assert torch.equal(stages["saliency"], plain)
    assert stages["input"].shape == (2, 4097, 7, 7) and torch.equal(stages["input"][:, -1], a)
    assert stages["hidden"].shape == (2, model.hidden, 7, 7) and stages["hidden"].min() >= 0   # after the ReLU
    assert stages["logits"].shape == (2, 1, 7, 7)


def test_z_first_token_is_open_clip_pooled_output(model, images):
    with torch.no_grad():
        enc = model.encode_image(images)
        x = (images - model.mean) / model.std
        pooled = model.visual(x)                       # open_clip's own forward: attention-pooled embedding
    assert enc["pooled"].shape == pooled.shape == (2, 1024)
    assert torch.allclose(enc["pooled"], pooled, atol=1e-5 * pooled.abs().max().item())
    assert enc["u4"].shape == (2, 1024, 14, 14) and enc["u4p"].shape == (2, 1024, 7, 7)
    assert enc["u5"].shape == (2, 2048, 7, 7)
    assert torch.allclose(enc["u4p"][:, :, 0, 0], enc["u4"][:, :, :2, :2].mean((2, 3)), atol=1e-5)
    # z differs per position (it is not the pooled vector broadcast).
    assert enc["z"].std(dim=(2, 3)).mean() > 0


def test_forward_objects_equals_per_label_forward_and_feeds_eq3(model, images):
    ids = torch.tensor([[0, 1, 2], [2, 1, 0]])
    with torch.no_grad():
        objs = model.forward_objects(images, ids)
        for k in range(3):
            single = model(images, ids[:, k])
            assert torch.allclose(objs["saliency"][:, k], single["saliency"], atol=1e-5)
            assert torch.allclose(objs["score_maps"][:, k], single["score_map"], atol=1e-6)
    assert torch.allclose(model.object_scores(objs["z"], ids), objs["score_maps"])
    prob = losses.object_probability(objs["score_maps"], (224, 224))
    marginal = losses.marginal_saliency(objs["saliency"], prob)
    assert prob.shape == (2, 3, 224, 224) and marginal.shape == (2, 224, 224)
    # HSI Eq. 3 with a single object: the object softmax is 1, so P~ on the 7x7 grid is a distribution.
    grid = losses.object_probability(objs["score_maps"][:, :1], (7, 7))
    assert torch.allclose(grid.sum((1, 2, 3)), torch.ones(2), atol=1e-5)


def test_text_embeddings_cached_and_trainable_without_weights(model):
    assert model.weights_loaded is False and "random" in model.weights_source
    assert isinstance(model.text_embeddings, torch.nn.Parameter) and model.text_embeddings.shape == (3, 1024)
    assert model.label_ids(["lemon", "goldfish"]).tolist() == [2, 0]
    with pytest.raises(ValueError, match="vocabulary"):
        model.label_ids(["unicorn"])
    # The cache is the frozen text tower's embedding of "a photo of a {label}".
    assert torch.allclose(model.text_embeddings.detach(), model._text.embed(LABELS), atol=1e-5)
    counts = model.parameter_counts()
    assert counts["text encoder (CLIP transformer, frozen)"]["trainable"] == 0
    assert counts["decoder"]["trainable"] == (1024 + 2048 + 1024 + 1) * 256 * 9 + 256 + 256 + 1


def test_gradients_reach_decoder_encoder_and_label_table(model, images):
    model.train()
    try:
        model.zero_grad()
        out = model(images[:1], torch.tensor([1]))
        out["saliency"].mean().backward()
        assert model.decoder[0].weight.grad.abs().sum() > 0
        # open_clip zero-initialises each bottleneck's last BN, so at random init the gradient reaches the
        # stem through the shortcut paths, and the residual branches through that BN's weight.
        assert model.visual.conv1.weight.grad.abs().sum() > 0
        assert model.visual.layer4[0].bn3.weight.grad.abs().sum() > 0
        assert model.text_embeddings.grad[1].abs().sum() > 0 and model.text_embeddings.grad[0].abs().sum() == 0
    finally:
        model.zero_grad()
        model.eval()


def test_bad_inputs(model, images):
    with pytest.raises(ValueError, match="224x224"):
        model(images[:, :, :112, :112], torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="label ids"):
        model(images, torch.tensor([0, 7]))
    with pytest.raises(ValueError, match="label_ids"):
        model(images, None)
    with pytest.raises(FileNotFoundError, match="RN50"):
        build_clip_rn50("/nonexistent/RN50.pt")


def test_preprocess():
    arr = (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)
    t = preprocess([arr, arr[:20]])
    assert t.shape == (2, 3, 224, 224) and 0 <= t.min() and t.max() <= 1
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        preprocess(torch.full((1, 3, 8, 8), 2.0))


def test_baseline_and_checkpoint_round_trip(tmp_path, images):
    torch.manual_seed(2)
    base = HSIBaseline(labels=LABELS).eval()
    assert not hasattr(base, "text_embeddings") or "text_embeddings" not in dict(base.named_buffers())
    with torch.no_grad():
        out = base(images, torch.tensor([0, 1]))
        other = base(images, torch.tensor([2, 2]))
    assert out["saliency"].shape == (2, 224, 224) and out["score_map"] is None
    assert torch.equal(out["saliency"], other["saliency"])          # labels are ignored
    assert base.decoder[0].in_channels == 4096
    path = hsi_mod.save_hsi(base, tmp_path / "base.pt", note="test")
    loaded = hsi_mod.load_hsi(path).eval()
    assert isinstance(loaded, HSIBaseline) and loaded.weights_loaded is False
    with torch.no_grad():
        assert torch.allclose(loaded(images)["saliency"], out["saliency"], atol=1e-6)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        hsi_mod.load_hsi(tmp_path / "missing.pt")


def test_clip_weights_load_from_local_state_dict(model, tmp_path):
    clip = model._text.clip          # the random-init CLIP behind the module-scoped model
    path = tmp_path / "rn50_state.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in clip.state_dict().items()}}, path)
    loaded = build_clip_rn50(path)
    assert loaded.weights_loaded is True and loaded.weights_source == str(path)
    assert torch.equal(loaded.visual.attnpool.c_proj.weight, clip.visual.attnpool.c_proj.weight)
    bad = tmp_path / "bad.pt"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a CLIP RN50"):
        build_clip_rn50(bad)


def test_predict_saliency_and_cli(model, images, tmp_path):
    from PIL import Image

    from hsi_core import cli

    maps = cli.predict_saliency(model, images, ["zebra", "lemon"], batch_size=1)
    with torch.no_grad():
        direct = model(images, torch.tensor([1, 2]))["saliency"]
    assert torch.allclose(maps, direct, atol=1e-5)
    img_path = tmp_path / "fish.png"
    Image.fromarray((images[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)[:200, :160]).save(img_path)
    ckpt = hsi_mod.save_hsi(model, tmp_path / "hsi.pt")
    out = tmp_path / "map.png"
    assert cli.main(["predict", str(img_path), "--label", "goldfish", "--weights", str(ckpt), "-o", str(out)]) == 0
    written = np.asarray(Image.open(out))
    assert written.shape == (200, 160) and written.max() == 255
    expected = cli.predict_saliency(model, [img_path], "goldfish", output_size=(200, 160))[0].numpy()
    assert np.abs(written / 255.0 - expected / expected.max()).max() < 1 / 255 + 1e-6
    assert cli.main(["predict", str(img_path), "--label", "unicorn", "--weights", str(ckpt), "-o", str(out)]) == 2
    assert cli.main(["predict", str(tmp_path / "nope.jpg"), "--label", "lemon", "--weights", str(ckpt),
                     "-o", str(out)]) == 2


def test_set_labels_keeps_every_modules_mode():
    """Embedding new labels runs the frozen text tower in eval mode and gives every module its own mode
    back: an HSI in eval mode stays in eval mode (its image encoder, shared with CLIP, included), one
    in train mode stays in train mode. Planted bug caught: restoring one flag for the whole CLIP (the
    encoder of an eval-mode HSI came back in train mode, so BatchNorm would update on predictions)."""
    torch.manual_seed(0)
    m = HSI(labels=LABELS, image_size=64, hidden=8)
    m._text.clip.train()  # CLIP as built: in train mode, while the HSI below is put in eval mode
    m.eval()
    m.set_labels(LABELS + ["teapot"])
    assert not any(mod.training for mod in m.modules())
    m.train()
    m.set_labels(LABELS)
    assert all(mod.training for mod in m.modules())


def test_decoder_runs_in_float32_under_bfloat16_autocast():
    """Under bf16 autocast (the CUDA default; the CPU autocast here) the encoder runs in bf16 but the
    decoder in float32: the maps are float32 and equal the float32 decoder on the same features.
    Planted bug caught: the decoder under autocast (bf16 maps, 8 bits: small variations vanish and maps
    go flat)."""
    torch.manual_seed(0)
    m = HSI(labels=LABELS, image_size=64, hidden=8).eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    ids = torch.tensor([0, 1])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x, ids)["saliency"]
        enc = m.encode_image(x)
        objects = m.forward_objects(x, ids[:, None])["saliency"][:, 0]
    assert out.dtype == torch.float32 and objects.dtype == torch.float32
    with torch.no_grad():
        a = score_map(enc["z"].float(), m.text_embeddings[ids])
        expected = m.decode(m.features({k: v.float() for k, v in enc.items()}), a)
    assert torch.allclose(out, expected, atol=1e-5) and torch.allclose(objects, expected, atol=1e-5)


def test_load_hsi_reads_a_fit_checkpoint(tmp_path):
    """``training.fit`` on ``hsi_tables.HSIFull`` writes the weights under ``model.`` and the model's
    config in ``meta``; ``load_hsi`` rebuilds that model from ``best.pt``/``last.pt`` (same maps). A
    decoder-only checkpoint (frozen-encoder head) is refused with a message. Planted bug caught: the
    ``model.`` prefix not stripped ("does not fit HSI")."""
    from hsi_core import training
    from hsi_core.experiments import hsi_tables

    torch.manual_seed(0)
    m = HSI(labels=LABELS, image_size=64, hidden=8)
    g = torch.Generator().manual_seed(0)
    data = [{"image": torch.rand(3, 64, 64, generator=g), "label": torch.tensor(i % 3),
             "saliency": torch.rand(64, 64, generator=g), "fixations": torch.rand(64, 64, generator=g) > 0.98}
            for i in range(2)]
    net = hsi_tables.HSIFull(m)
    training.fit(net, data, loss_fn=hsi_tables.hsi_finetune_loss_fn, epochs=1, batch_size=2, run_dir=tmp_path / "run",
                 progress=False, meta={"config": m.config()})
    loaded = hsi_mod.load_hsi(tmp_path / "run" / "last.pt").eval()
    assert isinstance(loaded, HSI) and loaded.labels == LABELS and loaded.image_size == 64
    x = torch.rand(1, 3, 64, 64, generator=g)
    with torch.no_grad():
        assert torch.allclose(loaded(x, torch.tensor([1]))["saliency"], m.eval()(x, torch.tensor([1]))["saliency"],
                              atol=1e-6)
    head = hsi_tables.HSIHead(m)
    torch.save({"model": head.state_dict(), "meta": {"config": m.config()}}, tmp_path / "head.pt")
    with pytest.raises(ValueError, match="decoder-only"):
        hsi_mod.load_hsi(tmp_path / "head.pt")
