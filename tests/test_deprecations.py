"""Old import paths keep working for one release, each with a DeprecationWarning that names the new home.
Catches: an old name removed (AttributeError / ImportError), one that no longer warns, or one that warns but
gives something other than the new definition."""

from __future__ import annotations

import pytest

from hsi_core import datasets


def test_demo_hsb_classes_warns_and_is_the_datasets_tuple():
    from hsi_core import demo

    with pytest.warns(DeprecationWarning, match="hsi_core.datasets"):
        old = demo.HSB_CLASSES
    assert old is datasets.HSB_CLASSES and len(old) == 20
    with pytest.warns(DeprecationWarning):
        from hsi_core.demo import HSB_CLASSES  # noqa: F401
    with pytest.raises(AttributeError):
        demo.NOT_A_NAME
