"""HSI pretraining / finetuning machinery (HSI paper, "Experimental Setup", Tables 1-3) on the demo world.

The headline test trains a small demo-scale version of the Tables 1-3 experiments and asserts the
issue's done-when: finetuning beats no finetuning on CC, KLdiv, NSS and SIM, and HSI beats the
image-only baseline on the HSB images holding two objects of different labels.
"""

import numpy as np
import pytest
import torch

from hsi_core import training
from hsi_core.datasets import HSBDataset
from hsi_core.demo import ensure_demo
from hsi_core.models.hsi import HSI

SIZE = 64


@pytest.fixture(scope="module")
def demo():
    return ensure_demo()


@pytest.fixture(scope="module")
def small_hsi():
    torch.manual_seed(0)
    return HSI(None, image_size=SIZE, hidden=8, freeze_image=True).eval()


def test_head_on_cached_features_equals_the_full_model(small_hsi):
    """HSIHead (decoder + label table on cached encoder features) gives the full model's maps, for one
    label per image (Eq. 1, Figure 7) and for N labels per image (the conditional maps of Eq. 8)."""
    images = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    head = training.HSIHead(small_hsi).eval()
    with torch.no_grad():
        enc = small_hsi.encode_image(images)
        ids = torch.tensor([3, 7])
        full = small_hsi(images, ids)
        mine = head(enc, ids)
        assert torch.allclose(mine["saliency"], full["saliency"], atol=1e-6)
        assert torch.allclose(mine["score_maps"], full["score_map"], atol=1e-6)
        ids2 = torch.tensor([[3, 7, 0], [1, 2, 5]])
        full_obj = small_hsi.forward_objects(images, ids2)
        mine_obj = head(enc, ids2)
        assert mine_obj["saliency"].shape == (2, 3, SIZE, SIZE)
        assert torch.allclose(mine_obj["saliency"], full_obj["saliency"], atol=1e-5)
        assert torch.allclose(mine_obj["score_maps"], full_obj["score_maps"], atol=1e-6)
    # training the head leaves the model untouched until exported
    before = small_hsi.decoder[0].weight.clone()
    with torch.no_grad():
        head.decoder[0].weight.add_(1.0)
    assert torch.equal(small_hsi.decoder[0].weight, before)


def test_batchnorm_recalibration_normalises_random_features(demo, small_hsi):
    model = small_hsi
    saved = {k: v.clone() for k, v in model.visual.state_dict().items()}
    images = torch.stack([HSBDataset(demo / "hsb", size=(SIZE, SIZE))[i]["image"] for i in range(8)])
    try:
        with torch.no_grad():
            before = model.encode_image(images)["u5"].std()
            n = training.recalibrate_batchnorm(model.visual, [images[:4], images[4:]], model.encode_image)
            after = model.encode_image(images)["u5"].std()
        assert not model.visual.training  # modes restored
    finally:
        model.visual.load_state_dict(saved)
    assert n > 50 and before < 0.01 and after > 0.1, (before, after)


def test_salicon_pseudo_labels_items(demo):
    vocab = training.hsi_vocabulary()
    ds = training.SaliconPseudoLabels(demo / "salicon/images/val", demo / "salicon/annotations/fixations_val2014.json",
                                      demo / "coco/annotations/instances_val2014.json", size=SIZE, vocabulary=vocab,
                                      t_a=0.01)
    item = ds[0]
    n = ds.max_objects
    assert item["image"].shape == (3, SIZE, SIZE) and item["saliency"].shape == (SIZE, SIZE)
    assert item["obj_saliency"].shape == item["obj_fixations"].shape == (n, SIZE, SIZE)
    valid = item["valid"]
    assert valid[0] and item["fixations"].any()
    # every pseudo fixation of an object is a fixation of the image (Algorithm 1: f~ = m . f_pv)
    assert not (item["obj_fixations"][valid] & ~item["fixations"]).any()
    assert all(vocab[i] in training.hsi_vocabulary() for i in item["obj_labels"][valid].tolist())
    with pytest.raises(ValueError, match="no image has an object"):
        training.SaliconPseudoLabels(demo / "salicon/images/val", demo / "salicon/annotations/fixations_val2014.json",
                                     demo / "coco/annotations/instances_val2014.json", size=SIZE, vocabulary=vocab,
                                     t_a=0.9)


def test_hsi_finetuning_killed_and_resumed_scores_the_same(demo, small_hsi, tmp_path):
    """Finetuning HSI (Eq. 12) stopped mid-epoch and resumed from its checkpoint ends with the same
    held-out metrics, to the last bit, as an uninterrupted run."""
    hsb = HSBDataset(demo / "hsb", size=(SIZE, SIZE))
    subset = torch.utils.data.Subset(hsb, list(range(0, 160, 4)))
    enc = training.encode_dataset(small_hsi, subset, batch_size=20, progress=False)
    train, test = torch.utils.data.Subset(enc, range(30)), torch.utils.data.Subset(enc, range(30, 40))
    kwargs = dict(loss_fn=training.hsi_finetune_loss_fn, epochs=3, batch_size=8, lr=1e-3, progress=False)
    a = training.trainable(small_hsi, encoded=True)
    training.fit(a, train, run_dir=tmp_path / "a", **kwargs)
    b = training.trainable(small_hsi, encoded=True)
    assert not training.fit(b, train, run_dir=tmp_path / "b", max_steps=6, **kwargs).completed  # 4 steps/epoch
    b = training.trainable(small_hsi, encoded=True)
    assert training.fit(b, train, run_dir=tmp_path / "b", **kwargs).completed
    ours, theirs = training.evaluate_hsb(a, test), training.evaluate_hsb(b, test)
    assert ours.equals(theirs)
    assert np.isfinite(ours[list(training.TABLE_COLUMNS)].to_numpy()).all()


def test_demo_tables_finetuning_and_text_help(demo, tmp_path):
    """Done-when of the issue at test scale (64 px, frozen random-init encoder, two held-out folds):
    finetuning beats no finetuning on all four metrics, and HSI beats the image-only baseline on the
    images with two objects of different labels (CC and NSS; there only the label tells which object
    the viewers explained)."""
    exp = training.run_hsi_tables(demo, image_size=SIZE, hidden=16, freeze_image=True, pretrain_epochs=2,
                                  finetune_epochs=3, batch_size=16, lr=1e-3, lr_step=100, folds=2, t_a=0.01,
                                  salicon_limit=12, run_dir=tmp_path, progress=False, calibration_images=16)
    assert exp.meta["clip_weights_loaded"] is False and "random" in exp.meta["clip_weights_source"]
    tables = training.tables_1_3(exp)
    t1 = tables["Table 1"].xs("ours", level="source")
    w, wo = t1.loc["w. finetuning"], t1.loc["w.o. finetuning"]
    assert w["CC"] > wo["CC"] and w["NSS"] > wo["NSS"] and w["SIM"] > wo["SIM"] and w["KLdiv"] < wo["KLdiv"], t1
    assert exp.two_objects is not None and exp.two_objects.sum() > 20
    two = training.subset_means(exp, ["HSI w. finetuning", "baseline (pretrained)"], exp.two_objects)
    assert two.loc["HSI w. finetuning", "CC"] > two.loc["baseline (pretrained)", "CC"], two
    assert two.loc["HSI w. finetuning", "NSS"] > two.loc["baseline (pretrained)", "NSS"], two
    for name, frame in exp.per_image.items():
        assert sorted(frame["fold"].unique()) == [0, 1], name
        assert np.isfinite(frame[list(training.TABLE_COLUMNS)].to_numpy()).all(), name
    ckpt = torch.load(exp.run_dir / "pretrain_HSI" / "best.pt", weights_only=False)
    assert ckpt["meta"]["clip_weights_loaded"] is False  # every checkpoint says the encoder was random


def test_full_model_trains_end_to_end(demo, small_hsi, tmp_path):
    """The paper-scale path: the whole model (image encoder included) pretrains on pseudo-labelled
    SALICON (Eq. 11) through ``fit``; the encoder's weights move and the best epoch is kept."""
    import copy

    model = copy.deepcopy(small_hsi)
    model.freeze_image = False
    for p in model.visual.parameters():
        p.requires_grad_(True)
    sal = training.SaliconPseudoLabels(demo / "salicon/images/val", demo / "salicon/annotations/fixations_val2014.json",
                                       demo / "coco/annotations/instances_val2014.json", size=SIZE,
                                       vocabulary=model.labels, t_a=0.01, limit=4)
    before = model.visual.layer4[0].conv1.weight.clone()
    net = training.trainable(model, encoded=False)
    result = training.pretrain_hsi(net, sal, sal, run_dir=tmp_path, epochs=1, batch_size=2, lr=1e-3, progress=False)
    assert result.completed and result.best_epoch == 1 and np.isfinite(result.history[0]["val_loss"])
    assert not torch.equal(model.visual.layer4[0].conv1.weight, before)
