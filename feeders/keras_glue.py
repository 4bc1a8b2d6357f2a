"""The only module that touches Keras internals.

Why: ``model.fit`` accepts any object that is an instance of Keras'
``DataAdapter`` as it is (``keras.src.trainers.data_adapters.get_data_adapter``
returns it unchanged: "Allow passing a custom data adapter"). Subclassing it lets
``fit``/``evaluate``/``predict`` take a feeder directly, with our own epoch
semantics, instead of Keras re-wrapping it (and replaying peeked batches).
``tests/test_keras_glue.py`` fails loudly if Keras moves or changes this.
"""

from __future__ import annotations

from typing import Any

from keras.src.trainers.data_adapters import get_data_adapter
from keras.src.trainers.data_adapters.data_adapter import DataAdapter

__all__ = ["DataAdapter", "get_data_adapter", "outputs_are_a_dict"]


def outputs_are_a_dict(model: Any) -> bool:
    """Whether a functional model was built with a dict of outputs.

    Why: Keras then matches a *list* of targets to the outputs in sorted-name
    order, not the order they were written in; ``Feeder.bind`` refuses that trap.
    Reads the private ``_outputs_struct`` (pinned by tests/test_keras_glue.py).
    """
    return isinstance(getattr(model, "_outputs_struct", None), dict)
