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
from hsi_core.datasets import HSB_CLASSES
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
    assert maps.shape == (N_IMAGES, 64, 64)
    assert all(m.max() == pytest.approx(1.0) for m in maps)           # max-scaled PNGs
    # each written map is the model's map of that image and label, max-scaled and stored in 8 bits:
    # a map written under another image's name, or with another label, is caught
    from hsi_core.cli import predict_saliency

    for rec, written in zip(records, maps):
        path = Path(rec["image"]) if Path(rec["image"]).is_absolute() else folder / rec["image"]
        direct = predict_saliency(model, [path], [rec["label"]])[0].float()
        direct = (direct / direct.max()).numpy()
        assert direct.shape == written.shape
        assert np.abs(direct - written).max() <= 1.5 / 255   # 8-bit rounding (0.5/255) plus float slack
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


# ----------------------------------------------------------------------------- at scale (issue #11)
def test_workers_and_async_writes_give_the_maps_of_predict_saliency(tmp_path: Path) -> None:
    """Decoding in 2 DataLoader workers, batches of 3, threaded PNG writes: every map is the one
    ``predict_saliency`` computes for that image and its own label (a shuffled batch would not be)."""
    from hsi_core.predict import predict_saliency, to_uint8

    model = tiny_hsi()
    with torch.no_grad():                       # make the label visible in the maps (random weights hide it)
        model.decoder[0].weight[:, -1] *= 300.0
    folder = make_folder(tmp_path)
    out = tmp_path / "out"
    generation.generate_hsi_maps(model, folder, out, batch_size=3, num_workers=2, write_threads=3,
                                 progress=False)
    records, maps = generation.load_maps(out)
    items = list_imagenet_images(folder)
    expected = predict_saliency(model, [it.path for it in items], [it.class_name for it in items])
    assert [r["label"] for r in records] == [it.class_name for it in items]
    np.testing.assert_array_equal(np.round(maps * 255).astype(np.uint8), to_uint8(expected).numpy())
    other = predict_saliency(model, [it.path for it in items], [HSB_CLASSES[19]] * len(items))
    assert (to_uint8(other) != to_uint8(expected)).any()              # the label shows in the maps


def _write_jpegs(folder: Path, stems: list[str]) -> None:
    rng = np.random.default_rng(1)
    for stem in stems:
        save_image(folder / f"{stem}.JPEG", rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))


SYNSETS = ("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n"
           "n01751748 sea snake\n")


def test_official_val_layout_reads_class_names_from_loc_synset_mapping(tmp_path: Path) -> None:
    root = tmp_path / "ILSVRC"
    val = root / "Data" / "CLS-LOC" / "val"
    _write_jpegs(val, ["ILSVRC2012_val_00000001", "ILSVRC2012_val_00000002"])
    (root / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\nILSVRC2012_val_00000002,n01751748 1 2 30 40 n01751748 3 4 20 20 \n"
        "ILSVRC2012_val_00000001,n01443537 10 12 40 30 \n")
    (root / "LOC_synset_mapping.txt").write_text(SYNSETS)
    items = list_imagenet_images(val, label_file=root / "LOC_val_solution.csv")
    assert [(it.wnid, it.class_name) for it in items] == [("n01443537", "goldfish"), ("n01751748", "sea snake")]
    (root / "LOC_synset_mapping.txt").unlink()                      # wnids alone: an error, not a prompt
    with pytest.raises(FileNotFoundError, match="synset"):
        list_imagenet_images(val, label_file=root / "LOC_val_solution.csv")


def test_caffe_val_txt_layout_uses_synset_words_and_rejects_bare_integers(tmp_path: Path) -> None:
    folder = tmp_path / "val"
    _write_jpegs(folder, ["ILSVRC2012_val_00000001", "ILSVRC2012_val_00000002"])
    (folder / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG 2\nILSVRC2012_val_00000002.JPEG 0\n")
    with pytest.raises(FileNotFoundError, match="integer class indices"):
        list_imagenet_images(folder)
    (tmp_path / "synset_words.txt").write_text(SYNSETS)
    items = list_imagenet_images(folder)                              # found one folder up
    assert [(it.wnid, it.class_name) for it in items] == [("n01751748", "sea snake"), ("n01440764", "tench")]
    (folder / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG 3\nILSVRC2012_val_00000002.JPEG 0\n")
    with pytest.raises(ValueError, match="out of range"):
        list_imagenet_images(folder)


def test_map_writer_reports_a_failed_write(tmp_path: Path) -> None:
    from hsi_core.predict import MapWriter

    with pytest.raises(ValueError, match="bad.png"):
        with MapWriter(2) as writer:
            writer.submit(np.zeros((4, 4)), tmp_path / "ok.png")
            writer.submit(np.full((4, 4), np.nan), tmp_path / "bad.png")
    assert (tmp_path / "ok.png").is_file() and not (tmp_path / "bad.png").exists()


@pytest.mark.gpu_check
def test_gpu_check_generation(tmp_path: Path, model, device: str) -> None:
    """Generation on the check's device with its defaults there (CUDA: bf16 + channels_last, workers):
    the maps agree with fp32 ``predict_saliency`` on the CPU."""
    from hsi_core.predict import predict_saliency

    folder = make_folder(tmp_path)
    generation.generate_hsi_maps(model, folder, tmp_path / "out", batch_size=4, device=device, fmt="npy",
                                 progress=False)
    _, maps = generation.load_maps(tmp_path / "out")
    items = list_imagenet_images(folder)
    expected = predict_saliency(model.cpu(), [it.path for it in items], [it.class_name for it in items],
                                device="cpu")
    tol = 2e-2 if device == "cuda" else 1e-6
    np.testing.assert_allclose(maps, expected.numpy(), atol=tol)
