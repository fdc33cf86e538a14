"""LG Tables I-IV's training (``hsi_core.experiments.saliency_models``): SALICON train with SALICON val
for model selection, the NUS Scene demo default, and the old import path."""

import json
import warnings

import pytest
import torch

from hsi_core import demo, training
from hsi_core.experiments import saliency_models
from hsi_core.models.cmrnet import CMRNet


def _tiny_items(n, seed, *, centre=True):
    """Random images whose saliency is a centre blob (or, ``centre=False``, its complement)."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    blob = torch.exp(-(xs**2 + ys**2) / 0.2)
    sal = blob if centre else 1.05 - blob
    return [{"image": torch.rand(3, 16, 16, generator=g), "saliency": sal / sal.sum(),
             "fixations": (sal > 0.8 * sal.max()).float(), "index": i} for i in range(n)]


def test_with_a_validation_set_the_best_epoch_is_the_model_kept(tmp_path):
    """SALICON val selects the model (LG Section III-B): after training, the weights are those of the
    epoch with the lowest validation loss, which is not the last one here: the planted validation
    maps are the complement of the training maps, so every epoch that learns the centre blob does
    worse on them. Catches: the last epoch kept although a validation set was given, or validation
    never run."""
    torch.manual_seed(0)
    model = CMRNet(width=4, dim_channels=4)
    history = saliency_models.train_saliency_model(model, _tiny_items(8, 0), run_dir=tmp_path, epochs=5,
                                                   batch_size=4, lr=1e-2, lr_step=100,
                                                   val_items=_tiny_items(4, 1, centre=False))
    losses = [h["val_loss"] for h in history]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert best != len(losses) - 1, f"the planted run should peak early: {losses}"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["best_epoch"] == best + 1
    kept = CMRNet(width=4, dim_channels=4)
    training.load_weights(kept, tmp_path / "best.pt")
    for (name, a), b in zip(model.state_dict().items(), kept.state_dict().values()):
        assert torch.equal(a.cpu(), b), f"{name} is not the best epoch's"
    last = CMRNet(width=4, dim_channels=4)
    training.load_weights(last, tmp_path / "last.pt")
    assert any(not torch.equal(a.cpu(), b) for a, b in zip(model.state_dict().values(), last.state_dict().values()))


def test_salicon_training_data_reads_train_and_val_of_the_demo_world():
    """Catches: val read from the train split (the two share no image), or the demo world mislabelled."""
    folder = demo.ensure_demo() / "salicon"
    data = saliency_models.salicon_training_data((16, 24), 3, 2, root=folder)
    assert len(data.train) == 3 and len(data.val) == 2
    assert data.train[0]["image"].shape == (3, 16, 24)
    train_json, _ = saliency_models.salicon_split(folder, "train")
    val_json, _ = saliency_models.salicon_split(folder, "val")
    assert train_json != val_json and "train" in train_json.name and "val" in val_json.name
    assert data.tag.startswith("salicon-") and "SALICON train" in data.name


def test_salicon_training_data_on_the_shared_sample(shared_root):
    """The shared sample's layout (``..._examples.json``; train pairs [row, col], val pairs [x, y]):
    every image has fixations inside it. Catches: the sample's layout not found, or one split's
    coordinate order misread (points would fall outside the 480-row image)."""
    data = saliency_models.salicon_training_data((48, 64), 10, 10, root=shared_root / "salicon-samples")
    assert len(data.train) == 10 and len(data.val) == 10 and not data.is_demo
    for item in data.train + data.val:
        assert float(item["fixations"].sum()) > 20


def test_train_set_resolution_and_errors(tmp_path):
    assert saliency_models.resolve_train_set("nus_scene") == "nus_scene"
    assert saliency_models.resolve_train_set("salicon") == "salicon"
    assert saliency_models.resolve_train_set("auto") == "nus_scene"  # the shared sample is too small
    assert saliency_models.resolve_train_set("auto", tmp_path) == "salicon"
    with pytest.raises(ValueError, match="train_set"):
        saliency_models.resolve_train_set("SALICON")
    (tmp_path / "annotations").mkdir()
    with pytest.raises(FileNotFoundError, match="fixations_val2014.json"):
        saliency_models.salicon_split(tmp_path, "val")
    with pytest.raises(ValueError, match="at least 1"):
        saliency_models.salicon_training_data((8, 8), 0, 1, root=tmp_path)
    # no free-viewing split: "auto" reads SALICON (chapter 8 without NUS Scene), "nus_scene" is an error
    assert saliency_models.resolve_train_set("auto", free_viewing=False) == "salicon"
    with pytest.raises(ValueError, match="free-viewing"):
        saliency_models.training_data("nus_scene", (8, 8), train_images=1, val_images=1)


def test_a_salicon_split_without_images_is_a_clear_error(tmp_path):
    """An empty fixation file: an error that names it (the reader's, or ours when its layout is
    readable but no image has fixations). Catches: an empty split passed on to training, where an
    empty DataLoader fails far from the file."""
    (tmp_path / "annotations").mkdir()
    for split in ("train", "val"):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "annotations" / f"fixations_{split}2014.json").write_text(
            json.dumps({"images": [], "annotations": []}))
    with pytest.raises(ValueError, match="fixations_train2014.json: "):
        saliency_models.salicon_training_data((8, 8), 2, 2, root=tmp_path)


def test_the_old_evaluation_names_warn_and_forward():
    """Catches: the old import path removed, silent, or giving other objects than the new module's."""
    from hsi_core import evaluation

    for name in evaluation.MOVED_TO_SALIENCY_MODELS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert getattr(evaluation, name) is getattr(saliency_models, name)
        assert any(issubclass(w.category, DeprecationWarning) and "saliency_models" in str(w.message)
                   for w in caught)
