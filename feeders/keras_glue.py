"""The only module that touches Keras internals.

Why: ``model.fit`` accepts any object that is an instance of Keras'
``DataAdapter`` as it is (``keras.src.trainers.data_adapters.get_data_adapter``
returns it unchanged: "Allow passing a custom data adapter"). Subclassing it lets
``fit``/``evaluate``/``predict`` take a feeder directly, with our own epoch
semantics, instead of Keras re-wrapping it (and replaying peeked batches).
``tests/test_keras_glue.py`` fails loudly if Keras moves or changes this.
"""

from __future__ import annotations

from keras.src.trainers.data_adapters import get_data_adapter
from keras.src.trainers.data_adapters.data_adapter import DataAdapter

__all__ = ["DataAdapter", "get_data_adapter"]
