"""One registry of the book's models: every name builds the right network, weights are local files."""

from __future__ import annotations

import pytest
import torch

from hsi_core import models
from hsi_core.models import build_model, model_names


def test_classes_import_from_the_package():
    from hsi_core.models import CMRNet, HSI, HSIBaseline, MSINet, UNISAL  # noqa: F401  (issue 10)

    assert issubclass(HSIBaseline, HSI)
    with pytest.raises(AttributeError):
        models.NoSuchModel  # noqa: B018


@pytest.mark.parametrize("name,cls,n_params", [
    ("CMRNet", "CMRNet", 2_435_569), ("UNISAL", "UNISAL", 3_189_122), ("MSI-Net", "MSINet", 24_934_209),
])
def test_each_name_builds_its_own_network(name, cls, n_params):
    """Counts measured once on the architectures (the papers' ~2.5 M, 3.19 M, 24.9 M): a name wired to
    another builder, or a builder that drops a module, changes the count."""
    net = build_model(name)
    assert type(net).__name__ == cls
    assert sum(p.numel() for p in net.parameters()) == n_params


def test_weights_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    source = build_model("CMRNet")
    torch.save(source.state_dict(), tmp_path / "cmrnet.pt")
    loaded = build_model("CMRNet", tmp_path / "cmrnet.pt")
    for (k, a), (_, b) in zip(source.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        build_model("CMRNet", tmp_path / "absent.pt")
    with pytest.raises(FileNotFoundError, match="weights_best.pth"):
        build_model("UNISAL", tmp_path / "absent.pth")
    with pytest.raises(ValueError, match="IMAGENET1K_V2|ImageNet"):
        build_model("ResNet-50")
    with pytest.raises(ValueError, match="unknown model"):
        build_model("DeepGaze")
    assert model_names()[:2] == ["HSI", "HSIBaseline"]


def test_hsi_checkpoint_keeps_the_labels_asked_for(tmp_path):
    """``build_model("HSI", weights, labels=...)`` gives a model that knows those labels (the docstring's
    promise). Catches the builder dropping ``labels=`` when weights are given (the model then has only the
    checkpoint's vocabulary, and a label it cannot embed passes silently)."""
    from hsi_core.models.hsi import HSI, build_clip_rn50, save_hsi

    torch.manual_seed(0)
    path = save_hsi(HSI(None, labels=["cat", "dog"], image_size=64, hidden=8, train_text_embeddings=False),
                    tmp_path / "hsi.pt")
    clip = tmp_path / "rn50.pt"   # a CLIP RN50 file in the real format (random values): a text tower to embed with
    torch.save(build_clip_rn50().state_dict(), clip)
    loaded = build_model("HSI", path, clip_weights=clip, labels=["dog", "zebra"])
    assert loaded.labels == ["cat", "dog", "zebra"]            # the checkpoint's ids first, the new label added
    assert loaded.label_ids(["cat", "dog"]).tolist() == [0, 1]
    with pytest.raises(ValueError, match="zebra"):             # no CLIP weights: no text tower to embed it with
        build_model("HSI", path, labels=["zebra"])
    with pytest.raises(ValueError, match="image_size"):        # the checkpoint sets it; not silently dropped
        build_model("HSI", path, image_size=96)


def test_model_modules_do_not_import_the_training_loop():
    """Layering: importing every model leaves ``hsi_core.training`` unimported, and the SmallCNN trainer's
    old path still works for one release with a DeprecationWarning. Catches a model module that imports
    the loop (at module level) and a removed old path."""
    import subprocess
    import sys

    code = ("import sys, hsi_core.models.classifier, hsi_core.models.unisal, hsi_core.models.msinet, "
            "hsi_core.models.cmrnet, hsi_core.models.hsi; print('hsi_core.training' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    from hsi_core.experiments.small_cnn import train_small_cnn
    from hsi_core.models import classifier

    with pytest.warns(DeprecationWarning, match="experiments.small_cnn"):
        assert classifier.train_small_cnn is train_small_cnn
