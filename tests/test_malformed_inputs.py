"""Bad input gets a clear error that names the file or the problem; never a silent NaN."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from scipy.io import savemat

from hsi_core import datasets, fixations, metrics
from hsi_core.io import read_image


def _salicon_json(path, annotations, images=None):
    images = images or [{"id": 1, "file_name": "a.jpg", "height": 480, "width": 640}]
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


def test_missing_dataset_folder_says_where_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="salicon.net"):
        datasets.load_salicon_fixations(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError, match="osf.io/f3baw"):
        datasets.load_hsb(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"ALLSTIMULI.*tuebingen"):
        datasets.load_mit1003(tmp_path)


def test_truncated_image(tmp_path, demo_world):
    source = next((demo_world / "hsb" / "images").rglob("*.jpg")).read_bytes()
    broken = tmp_path / "cut.jpg"
    broken.write_bytes(source[: len(source) // 3])
    with pytest.raises(ValueError, match="cut.jpg.*truncated"):
        read_image(broken)


def test_not_an_image(tmp_path):
    path = tmp_path / "text.jpg"
    path.write_text("hello")
    with pytest.raises(ValueError, match="text.jpg"):
        read_image(path)


def test_broken_json(tmp_path):
    path = tmp_path / "fix.json"
    path.write_text('{"images": [')
    with pytest.raises(ValueError, match="fix.json: broken json"):
        datasets.load_salicon_fixations(path)


def test_json_without_annotations(tmp_path):
    path = tmp_path / "fix.json"
    path.write_text('{"images": []}')
    with pytest.raises(ValueError, match="annotations"):
        datasets.load_salicon_fixations(path)


def test_out_of_bounds_fixations(tmp_path):
    path = _salicon_json(tmp_path / "f.json", [{"id": 1, "image_id": 1, "worker_id": 0, "fixations": [[900, 50], [10, 700]]}])
    with pytest.raises(ValueError, match="outside"):
        datasets.load_salicon_fixations(path, coord_order="xy")


def test_ambiguous_coordinate_order(tmp_path):
    path = _salicon_json(tmp_path / "f.json", [{"id": 1, "image_id": 1, "worker_id": 0, "fixations": [[10, 20], [30, 40]]}])
    with pytest.raises(ValueError, match="coord_order"):
        datasets.load_salicon_fixations(path)


def test_image_without_fixations(tmp_path):
    path = _salicon_json(tmp_path / "f.json", [{"id": 1, "image_id": 1, "worker_id": 0, "fixations": []}])
    with pytest.raises(ValueError, match="no fixations"):
        datasets.load_salicon_fixations(path, coord_order="xy")


def test_annotation_for_unknown_image(tmp_path):
    path = _salicon_json(tmp_path / "f.json", [{"id": 7, "image_id": 99, "worker_id": 0, "fixations": [[1, 1]]}])
    with pytest.raises(ValueError, match="unknown image_id 99"):
        datasets.load_salicon_fixations(path, coord_order="xy")


def test_unknown_hsb_label(tmp_path, demo_world):
    root = tmp_path / "hsb"
    shutil.copytree(demo_world / "hsb", root)
    text = (root / "labels.csv").read_text().replace(",ant,", ",aardvark,", 1)
    (root / "labels.csv").write_text(text)
    with pytest.raises(ValueError, match="aardvark"):
        datasets.load_hsb(root)


def test_hsb_missing_saliency_map(tmp_path, demo_world):
    root = tmp_path / "hsb"
    shutil.copytree(demo_world / "hsb", root)
    next((root / "saliency").rglob("*.png")).unlink()
    with pytest.raises(FileNotFoundError, match="saliency map"):
        datasets.load_hsb(root)


def test_coco_file_without_categories(tmp_path):
    path = tmp_path / "inst.json"
    path.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(ValueError, match="categories"):
        datasets.load_coco(path)


def test_coco_unknown_image(shared_root):
    with pytest.raises(ValueError, match="no image with id 1"):
        datasets.load_coco_masks(shared_root / "coco-tiny" / "instances_train2017_small.json", 1)


def test_scanpath_cell_of_wrong_width(tmp_path):
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0] = np.ones((3, 4))
    cells[0, 1] = np.ones((3, 3))
    savemat(tmp_path / "fix.mat", {"fixations": cells})
    with pytest.raises(ValueError, match=r"cell \(1, 2\)"):
        datasets.load_scanpaths(tmp_path / "fix.mat")


def test_mat_without_the_variable(tmp_path):
    savemat(tmp_path / "fix.mat", {"other": np.ones(3)})
    with pytest.raises(ValueError, match="no variable 'fixations'"):
        datasets.load_scanpaths(tmp_path / "fix.mat")


def test_corrupt_mat(tmp_path):
    (tmp_path / "fix.mat").write_bytes(b"MATLAB 5.0 garbage")
    with pytest.raises(ValueError, match="fix.mat"):
        datasets.load_scanpaths(tmp_path / "fix.mat")


def test_empty_fixation_list_to_map():
    with pytest.raises(ValueError, match="no fixation points"):
        fixations.fixation_map(np.zeros((0, 2)), (10, 10))


def test_shape_mismatch_between_maps():
    with pytest.raises(ValueError, match="shape mismatch"):
        metrics.sim(np.random.rand(10, 10), np.random.rand(10, 12))


def test_constant_prediction_for_cc():
    with pytest.raises(ValueError, match="constant map"):
        metrics.cc(np.full((10, 10), 0.3), np.random.rand(10, 10))


def test_nan_in_prediction():
    pred = np.random.rand(10, 10)
    pred[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics.nss(pred, np.eye(10))


def test_empty_fixation_map_for_auc():
    with pytest.raises(ValueError, match="no fixations"):
        metrics.auc_judd(np.random.rand(10, 10), np.zeros((10, 10)))


def test_blank_saliency_png(tmp_path):
    from hsi_core.io import save_image

    save_image(tmp_path / "blank.png", np.zeros((5, 5), np.uint8))
    with pytest.raises(ValueError, match="blank"):
        datasets.load_saliency_png(tmp_path / "blank.png")


def test_imagenet_folder_without_labels(tmp_path):
    from hsi_core.io import save_image

    save_image(tmp_path / "photo.JPEG", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="LOC_val_solution.csv"):
        datasets.list_imagenet_images(tmp_path)


def _salicon_2017(path, fixations, resolution=(480, 640)):
    gaze = np.zeros((1, 1), dtype=[("fixations", "O")])
    gaze[0, 0]["fixations"] = np.asarray(fixations, dtype=np.float64)
    savemat(path, {"gaze": gaze, "image": "x", "resolution": np.array([resolution])})
    return path


def test_salicon_2017_fixation_far_outside(tmp_path):
    path = _salicon_2017(tmp_path / "g.mat", [[100, 100], [100, 900]])
    with pytest.raises(ValueError, match=r"g\.mat: worker 1.*outside the 640x480"):
        datasets.load_salicon_2017_mat(path)


def test_salicon_2017_bad_resolution(tmp_path):
    path = _salicon_2017(tmp_path / "g.mat", [[1, 1]], resolution=(480, 640, 3))
    with pytest.raises(ValueError, match="resolution"):
        datasets.load_salicon_2017_mat(path)


def test_salicon_2017_fixations_of_wrong_width(tmp_path):
    path = _salicon_2017(tmp_path / "g.mat", [[1, 1, 1], [2, 2, 2]])
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        datasets.load_salicon_2017_mat(path)


def test_dataset_saliency_and_fixations_of_different_shapes(tmp_path):
    from hsi_core.io import save_image

    save_image(tmp_path / "a.jpg", np.zeros((40, 60, 3), np.uint8))
    ds = datasets.SaliencyDataset([tmp_path / "a.jpg"], [np.random.rand(40, 60)], [np.eye(40, dtype=bool)], size=(16, 16))
    with pytest.raises(ValueError, match=r"a\.jpg: shape mismatch"):
        ds[0]


def test_dataset_constant_saliency_map(tmp_path):
    from hsi_core.io import save_image

    save_image(tmp_path / "a.jpg", np.zeros((40, 60, 3), np.uint8))
    ds = datasets.SaliencyDataset([tmp_path / "a.jpg"], [np.full((40, 60), 0.5)], [np.eye(40, 60, dtype=bool)], size=(16, 16))
    with pytest.raises(ValueError, match="constant"):
        ds[0]


def test_dataset_nan_in_saliency_and_empty_fixations(tmp_path):
    from hsi_core.io import save_image

    save_image(tmp_path / "a.jpg", np.zeros((40, 60, 3), np.uint8))
    sal = np.random.rand(40, 60)
    sal[0, 0] = np.nan
    ds = datasets.SaliencyDataset([tmp_path / "a.jpg"] * 2, [sal, np.random.rand(40, 60)],
                                  [np.eye(40, 60, dtype=bool), np.zeros((40, 60), bool)], size=(16, 16))
    with pytest.raises(ValueError, match="NaN"):
        ds[0]
    with pytest.raises(ValueError, match="fixation map is empty"):
        ds[1]


def test_dataset_lists_of_different_lengths():
    with pytest.raises(ValueError, match="2 images, 1 maps"):
        datasets.SaliencyDataset(["a.jpg", "b.jpg"], [np.ones((2, 2))], [np.ones((2, 2))])


def test_hsb_fold_that_is_not_a_number(tmp_path, demo_world):
    root = tmp_path / "hsb"
    shutil.copytree(demo_world / "hsb", root)
    lines = (root / "labels.csv").read_text().splitlines()
    lines[1] = ",".join(lines[1].split(",")[:2] + ["first"])
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"labels\.csv: fold values.*first"):
        datasets.load_hsb(root)


def test_constant_centre_bias(tmp_path):
    savemat(tmp_path / "center_bias.mat", {"center_bias": np.ones((10, 10))})
    with pytest.raises(ValueError, match=r"center_bias\.mat: the centre-bias map is constant"):
        datasets.load_mit1003_center_bias(tmp_path / "center_bias.mat")


def test_empty_fixlocs_map(tmp_path):
    from hsi_core.io import save_image

    (tmp_path / "Stimuli" / "beach").mkdir(parents=True)
    (tmp_path / "Data" / "beach").mkdir(parents=True)
    save_image(tmp_path / "Stimuli" / "beach" / "sun_a.jpg", np.zeros((8, 8, 3), np.uint8))
    savemat(tmp_path / "Data" / "beach" / "sun_a.mat", {"fixLocs": np.zeros((8, 8))})
    (item,) = datasets.load_figrim(tmp_path, "beach")
    with pytest.raises(ValueError, match=r"sun_a\.mat: the fixation map is empty"):
        datasets.figrim_fixations(item)


def test_figrim_missing_category(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Stimuli/forest.*figrim\.mit\.edu.*root="):
        datasets.load_figrim(tmp_path, "forest")


def test_scanpath_points_far_outside_the_image_name_the_stimulus(tmp_path):
    """Catches a loader that clips any point however far out (the scanpath loader once did): within
    fixations.BORDER_TOLERANCE_PX a point is clipped onto the border, beyond it the error names the
    file, the stimulus and the viewer."""
    from PIL import Image

    from hsi_core.fixations import BORDER_TOLERANCE_PX

    stimulus = tmp_path / "s1.jpg"
    Image.new("RGB", (40, 30)).save(stimulus)
    cells = np.empty((1, 2), dtype=object)
    # NUS Scene cells are row, col, start, duration
    cells[0, 0] = np.array([[10.0, 20.0, 0.0, 0.2], [29.0 + BORDER_TOLERANCE_PX - 1, 5.0, 0.2, 0.2]])
    cells[0, 1] = np.array([[10.0, 20.0, 0.0, 0.2]])
    savemat(tmp_path / "near.mat", {"fixations": cells})
    record = datasets.scanpath_records(tmp_path / "near.mat", [stimulus])[0]
    assert record.viewers[0][1].tolist() == [5.0, 29.0]
    cells[0, 1] = np.array([[10.0, 40.0 + 3 * BORDER_TOLERANCE_PX, 0.0, 0.2]])
    savemat(tmp_path / "far.mat", {"fixations": cells})
    with pytest.raises(ValueError, match=r"far\.mat: s1\.jpg, viewer 1.*outside"):
        datasets.scanpath_records(tmp_path / "far.mat", [stimulus])
