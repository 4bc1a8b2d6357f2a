"""Put this folder on PYTHONPATH to run Python as if TensorFlow were not installed.

``sys.modules["tensorflow"] = None`` makes every ``import tensorflow`` raise
``ImportError`` in this process, and (through PYTHONPATH) in every worker
process it spawns. Used by tests/test_no_tensorflow.py.
"""

import sys

sys.modules["tensorflow"] = None  # type: ignore[assignment]
