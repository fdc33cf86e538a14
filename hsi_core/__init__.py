"""hsi_core: the thin library behind hsi-book.

One module per concept: ``metrics``, ``fixations``, ``datasets``, ``demo``, ``models``,
``losses``, ``pseudo_labels``, ``training``, ``loggabor``, ``xai``, ``baselines``,
``eyemovements``, ``plots``. Import the submodule you need, e.g. ``from hsi_core import metrics``.
"""

__version__ = "0.1.0"
