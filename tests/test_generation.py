"""hsi_core.generation: maps + manifest for a labelled folder, resume, and a two-process torchrun (gloo) run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from hsi_core import generation
from hsi_core.datasets import list_imagenet_images
from hsi_core.demo import HSB_CLASSES
from hsi_core.io import save_image

REPO = Path(__file__).resolve().parents[1]
N_IMAGES = 5


def make_folder(root: Path, n: int = N_IMAGES) -> Path:
    """``n`` labelled images in the ImageNet one-per-class layout (HSB class names, random pixels)."""
    rng = np.random.default_rng(0)
    folder = root / "images"
    for k, label in enumerate(HSB_CLASSES[:n]):
        save_image(folder / f"n{1000000 + k:08d}_{label.replace(' ', '_')}.JPEG",
                   rng.integers(0, 255, (48 + 8 * k, 64, 3), dtype=np.uint8))
    return folder


def tiny_hsi():
    from hsi_core.models.hsi import HSI

    torch.manual_seed(0)
    return HSI(None, image_size=64, hidden=8)


@pytest.fixture(scope="module")
def model():
    return tiny_hsi()


def test_shard_covers_every_item_once() -> None:
    items = list(range(11))
    parts = [generation.shard(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items
    with pytest.raises(ValueError):
        generation.shard(items, 3, 3)


def test_generate_writes_maps_and_manifest_and_resumes(tmp_path: Path, model) -> None:
    folder = make_folder(tmp_path)
    out = tmp_path / "out"
    manifest = generation.generate_hsi_maps(model, folder, out, batch_size=2, progress=False)
    assert manifest["n_images"] == N_IMAGES
    labels = [rec["label"] for rec in manifest["images"]]
    assert sorted(labels) == sorted(HSB_CLASSES[:N_IMAGES])
    records, maps = generation.load_maps(out)
    assert maps.shape == (N_IMAGES, 64, 64) and maps.max() <= 1 and maps.min() >= 0
    assert all(m.max() == pytest.approx(1.0) for m in maps)           # max-scaled PNGs
    assert manifest["rank0"]["computed"] == N_IMAGES
    # the label matters: a second map of image 0 explained by another class differs
    from hsi_core.cli import predict_saliency

    item = list_imagenet_images(folder)[0]
    a = predict_saliency(model, [item.path], [item.class_name])
    b = predict_saliency(model, [item.path], [HSB_CLASSES[10]])
    assert not torch.equal(a, b)
    # resume: delete one map, run again: only that one is computed, and it is the same map
    victim = out / records[2]["map"]
    before = victim.read_bytes()
    victim.unlink()
    again = generation.generate_hsi_maps(model, folder, out, batch_size=2, progress=False)
    assert again["rank0"]["computed"] == 1 and again["rank0"]["skipped"] == N_IMAGES - 1
    assert victim.read_bytes() == before


def test_unknown_label_and_bad_folder(tmp_path: Path, model) -> None:
    folder = tmp_path / "imgs"
    save_image(folder / "n09999999_goldfish.JPEG", np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="goldfish"):
        generation.generate_hsi_maps(model, folder, tmp_path / "o", progress=False)
    with pytest.raises(FileNotFoundError):
        generation.generate_hsi_maps(model, tmp_path / "nowhere", tmp_path / "o", progress=False)
    with pytest.raises(FileNotFoundError, match="manifest"):
        generation.load_manifest(tmp_path / "o2")


def test_torchrun_two_gloo_processes_match_one_process(tmp_path: Path, model) -> None:
    folder = make_folder(tmp_path)
    single = generation.generate_hsi_maps(model, folder, tmp_path / "single", fmt="npy", progress=False)
    script = tmp_path / "run_gen.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from test_generation import tiny_hsi
        from hsi_core.generation import generate_hsi_maps
        out = generate_hsi_maps(tiny_hsi(), {str(folder)!r}, {str(tmp_path / 'multi')!r}, batch_size=2,
                                fmt="npy", progress=False)
        print("RESULT", out.get("n_images"), out.get("rank0", out).get("computed"))
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29517", str(script)], capture_output=True, text=True, env=env,
                          timeout=240, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    multi = generation.load_manifest(tmp_path / "multi")
    assert multi["world_size"] == 2 and multi["n_images"] == N_IMAGES
    assert multi["rank0"]["assigned"] == 3                              # images 0, 2, 4
    _, a = generation.load_maps(tmp_path / "single")
    _, b = generation.load_maps(tmp_path / "multi")
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [r["image"] for r in single["images"]] == [r["image"] for r in multi["images"]]


def test_cli_main(tmp_path: Path, model) -> None:
    from hsi_core.models.hsi import save_hsi

    folder = make_folder(tmp_path, 2)
    ckpt = save_hsi(model, tmp_path / "hsi.pt")
    rc = generation.main([str(folder), str(tmp_path / "cli"), "--weights", str(ckpt), "--no-progress",
                          "--batch-size", "2"])
    assert rc == 0
    assert generation.load_manifest(tmp_path / "cli")["n_images"] == 2
