"""TensorFlow as an optional dependency: the one place that imports it for a feature that needs it.

Why: ``pip install feeders`` works on the JAX and PyTorch backends without
TensorFlow (a 2.4 GB install). Arrays, generators, Sequences and
``ImageFileSequence`` never need it; the tf.data source, ``Feeder.as_dataset()``,
``distribute()`` and ``decoder="tf"`` do, and each calls :func:`require_tf` so
the error names the feature and the extra to install, whichever is used first.
"""

from __future__ import annotations

import importlib.util
from typing import Any

EXTRA = "feeders[tensorflow]"


def tf_available() -> bool:
    """Whether TensorFlow can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except ValueError:  # a half-imported or stubbed module (sys.modules["tensorflow"] = None)
        return False


def require_tf(feature: str) -> Any:
    """``import tensorflow`` for ``feature``, or an ``ImportError`` that says how to get it.

    Args:
        feature: what needs TensorFlow, as the user wrote it (e.g. ``"decoder='tf'"``).

    Raises:
        ImportError: TensorFlow is not installed; the message names ``feature`` and the extra.
    """
    try:
        import tensorflow as tf
    except ImportError as err:
        raise ImportError(
            f"{feature} needs TensorFlow, which is not installed. Install it with "
            f'`pip install "{EXTRA}"`, or use what works without it: arrays, generators, '
            "Sequences and ImageFileSequence (decoder 'pil', 'simplejpeg' or 'skimage') on "
            "the JAX or PyTorch backend."
        ) from err
    return tf
