"""Loaders for the published saliency datasets, from local paths only (nothing downloads).

Each loader reads one dataset's own on-disk format and returns plain numpy data in the project's
conventions: fixation points are ``(N, 2)`` arrays of ``(x, y)`` in 0-based pixels. A missing file
raises ``FileNotFoundError`` naming it and where the dataset comes from; a malformed one raises
``ValueError`` naming the file and the problem.

One module per format, each stating its format and our reading where the documentation is silent:
``salicon`` (SALICON 2015 json, streamed; SALICON 2017 ``.mat``), ``coco`` (instance masks), ``hsb``
(the HSB layout, folds and :data:`hsi_core.datasets.hsb.HSB_CLASSES`), ``mit`` (MIT1003, MIT300), ``figrim``, ``nus_scene``
(scanpaths), ``imagenet``; ``records`` holds fixation records and the torch Datasets, ``common`` what the
loaders share. This package only re-exports them.
"""

from hsi_core.datasets.coco import ObjectMask, load_coco, load_coco_masks
from hsi_core.datasets.common import (SOURCES, clip_to_image, image_size, images_in, load_mat_variable,
                                      load_saliency_png, read_json, require_file)
from hsi_core.datasets.figrim import figrim_fixations, load_figrim
from hsi_core.datasets.hsb import HSB_CLASSES, HSBDataset, HSBItem, hsb_folds, load_hsb
from hsi_core.datasets.imagenet import ImageNetItem, list_imagenet_images, read_synset_names
from hsi_core.datasets.mit import StimulusItem, load_mit300, load_mit1003, load_mit1003_center_bias
from hsi_core.datasets.nus_scene import load_scanpaths, nus_scene_stimuli, scanpath_records
from hsi_core.datasets.records import (FixationRecord, SaliencyDataset, check_map_pair, collate_dicts,
                                       fixation_map_records, records_dataset, resize_fixations, to_tensor_image)
from hsi_core.datasets.salicon import (SaliconImage, iter_salicon_points, load_salicon_2017_mat,
                                       load_salicon_fixations, salicon_fixation_pixels, salicon_layout,
                                       salicon_layout_evidence, salicon_records)
from hsi_core.fixations import BORDER_TOLERANCE_PX  # the tolerance every loader clips fixations with

__all__ = [
    "BORDER_TOLERANCE_PX", "HSB_CLASSES", "SOURCES", "FixationRecord", "HSBDataset", "HSBItem", "ImageNetItem", "ObjectMask",
    "SaliconImage", "SaliencyDataset", "StimulusItem", "check_map_pair", "clip_to_image", "collate_dicts",
    "figrim_fixations", "fixation_map_records", "hsb_folds", "image_size", "images_in", "iter_salicon_points",
    "list_imagenet_images", "load_coco", "load_coco_masks", "load_figrim", "load_hsb", "load_mat_variable",
    "load_mit1003", "load_mit1003_center_bias", "load_mit300", "load_salicon_2017_mat", "load_salicon_fixations",
    "load_saliency_png", "load_scanpaths", "nus_scene_stimuli", "read_json", "read_synset_names", "records_dataset",
    "require_file", "resize_fixations", "salicon_fixation_pixels", "salicon_layout",
    "salicon_layout_evidence", "salicon_records", "scanpath_records", "to_tensor_image",
]


def __getattr__(name: str):
    # datasets.resize_map moved to hsi_core.maps.resize; kept for one release
    if name == "resize_map":
        import warnings

        import numpy as np

        from hsi_core.maps import resize

        warnings.warn("hsi_core.datasets.resize_map is deprecated and goes in the next release: use "
                      "hsi_core.maps.resize (numpy maps are read as float32, as resize_map did)",
                      DeprecationWarning, stacklevel=2)
        return lambda m, size: resize(np.asarray(m, dtype=np.float32), size)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
