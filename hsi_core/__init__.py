"""hsi_core: the thin library behind hsi-book.

One module (or small subpackage) per concept. Import the one you need, e.g.
``from hsi_core import metrics``:

- data: ``datasets`` (one module per published format), ``sources`` (real samples or the demo
  world), ``demo`` (the synthetic demo world), ``fixations`` (points, maps, visual angle),
  ``maps`` (min-max, resizing, top fraction), ``io`` (atomic writes, images), ``paths``;
- scoring: ``metrics``, ``evaluation`` (dataset-level scoring), ``paper`` (both papers' tables);
- models: ``models`` (HSI, CMRNet, UNISAL, MSI-Net, classifiers; ``registry``, ``weights``),
  ``baselines`` (classical saliency), ``losses``, ``training``, ``pseudo_labels`` (HSI Algorithm 1),
  ``predict`` and ``generation`` (HSI maps at scale), ``experiments`` (HSI Tables 1-3);
- explanation: ``xai`` (Guided Backprop, Grad-CAM, RISE), ``experiments.xai_benchmark`` (HSI Table 4),
  ``loggabor`` (the log-gabor explanation of a saliency network);
- ``eyemovements`` (EMHMM with co-clustering), ``plots``, ``cli``.
"""

__version__ = "0.1.0"
