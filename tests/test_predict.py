"""hsi_core.predict: batched prediction without the command line, map files, single-image prediction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hsi_core import predict
from hsi_core.io import read_image, save_image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model():
    from hsi_core.models.hsi import HSI

    torch.manual_seed(0)
    model = HSI(None, image_size=64, hidden=8).eval()
    with torch.no_grad():                       # make the label visible in the maps (random weights hide it)
        model.decoder[0].weight[:, -1] *= 300.0
    return model


def test_predict_and_generation_do_not_import_the_command_line() -> None:
    code = ("import sys, hsi_core.predict, hsi_core.generation; "
            "assert 'hsi_core.cli' not in sys.modules, sorted(m for m in sys.modules if 'hsi' in m)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_batches_do_not_change_the_maps(model) -> None:
    """Batch size 1 and batch size 3 give the same maps for the same images and labels."""
    images = torch.rand(5, 3, 64, 64)
    labels = ["zebra", "lemon", "zebra", "horse", "lemon"]
    a = predict.predict_saliency(model, images, labels, batch_size=1)
    b = predict.predict_saliency(model, images, labels, batch_size=3)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert not torch.equal(a[0], predict.predict_saliency(model, images[:1], "lemon")[0])


def test_single_image_predictor_matches_batched(model) -> None:
    image = torch.rand(3, 80, 72)
    fast = predict.SingleImagePredictor(model, "cpu")
    torch.testing.assert_close(fast(image, "zebra"), predict.predict_saliency(model, image, "zebra")[0])
    with pytest.raises(ValueError, match="nope"):
        fast(image, "nope")


def test_to_uint8_is_the_png_rounding(tmp_path: Path) -> None:
    maps = torch.rand(3, 9, 7) * torch.tensor([1.0, 0.3, 0.0]).view(3, 1, 1)
    for m, q in zip(maps, predict.to_uint8(maps)):
        predict.save_map(m, tmp_path / "m.png")
        np.testing.assert_array_equal(read_image(tmp_path / "m.png")[..., 0], q.numpy())
    with pytest.raises(ValueError, match="m.npy"):
        predict.save_map(np.full((3, 3), np.nan), tmp_path / "m.npy")


def test_cli_predict_writes_maps_at_the_image_size(tmp_path: Path, model) -> None:
    from hsi_core import cli
    from hsi_core.models.hsi import save_hsi

    rng = np.random.default_rng(0)
    paths = []
    for k, (h, w) in enumerate([(50, 70), (66, 40)]):
        paths.append(save_image(tmp_path / f"im{k}.png", rng.integers(0, 255, (h, w, 3), dtype=np.uint8)))
    ckpt = save_hsi(model, tmp_path / "hsi.pt")
    out = tmp_path / "maps"
    assert cli.main(["predict", *map(str, paths), "--label", "zebra", "--label", "lemon", "--weights",
                     str(ckpt), "-o", str(out), "--batch-size", "2"]) == 0
    expected = predict.predict_files(model, paths, ["zebra", "lemon"])
    for path, label, m in zip(paths, ["zebra", "lemon"], expected):
        got = read_image(out / f"{path.stem}_{label}.png")[..., 0]
        assert got.shape == read_image(path).shape[:2]
        np.testing.assert_array_equal(got, predict.to_uint8(m[None])[0].numpy())
    assert cli.main(["predict", str(tmp_path / "missing.png"), "--label", "zebra", "-o",
                     str(tmp_path / "x.png")]) == 2
