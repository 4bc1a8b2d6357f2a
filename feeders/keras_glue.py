"""The only module that touches Keras internals: how ``fit``/``evaluate``/``predict`` meet a feeder.

Why: ``model.fit`` accepts an instance of Keras' ``DataAdapter`` as it is
(``keras.src.trainers.data_adapters.get_data_adapter`` returns it unchanged:
"Allow passing a custom data adapter"), but then drops the arguments it was
called with (``shuffle``, ``class_weight``, ``y``, ...), cannot tell a
training pass from a ``predict`` pass, and on the TensorFlow backend turns
every exception raised while making a batch into a graph error. Three small
hooks, installed once when this module is imported, fix that for feeders only;
every other input goes through Keras untouched:

- ``data_adapters.get_data_adapter``: for a :class:`KerasHandOff` (a Feeder),
  it passes what Keras was called with, as a :class:`KerasCall`, and returns
  the adapter the feeder makes for that pass (NOTE [ which pass Keras wants ]).
- ``EpochIterator.catch_stop_iteration`` (wraps every epoch loop of every
  backend): re-raises the exception the feeder recorded instead of the TF error
  it became, and takes the exact batch count a feeder learned in its first pass
  (Keras would count one step too many and warn "ran out of data" each epoch).
- ``array_slicing.train_validation_split``: ``fit(feeder, validation_split=)``
  names ``feeder.split`` instead of Keras' generic message.

``tests/test_keras_glue.py`` fails loudly if Keras moves or changes any of them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from keras.src.trainers import data_adapters as _data_adapters
from keras.src.trainers import epoch_iterator as _epoch_iterator
from keras.src.trainers.data_adapters import array_slicing as _array_slicing
from keras.src.trainers.data_adapters.data_adapter import DataAdapter

__all__ = [
    "DataAdapter",
    "KerasCall",
    "KerasHandOff",
    "building_the_model",
    "get_data_adapter",
    "outputs_are_a_dict",
]

_KERAS_METHODS = ("fit", "evaluate", "predict")


@dataclass(frozen=True)
class KerasCall:
    """What a Keras method asked of its data, read where Keras builds the adapter.

    ``method`` is ``"fit"``, ``"evaluate"`` or ``"predict"`` (``None`` when a
    caller other than a Keras model asked); ``training`` is true only for the
    data ``fit`` trains on (not its ``validation_data``). The rest are the
    arguments Keras passes to ``get_data_adapter``, unchanged; ``model`` is the
    Keras model whose method it is (``None`` for other callers).
    """

    method: str | None
    training: bool
    y: Any = None
    sample_weight: Any = None
    batch_size: int | None = None
    steps_per_epoch: int | None = None
    shuffle: bool = False
    class_weight: Any = None
    model: Any = None


class KerasHandOff(DataAdapter):  # type: ignore[misc]
    """A Keras ``DataAdapter`` that makes one adapter per Keras call (:class:`KerasCall`)."""

    def for_keras(self, call: KerasCall) -> DataAdapter:
        """The adapter for this call; may raise ``ValueError`` for arguments that do not apply."""
        return self

    def keras_error(self, err: BaseException) -> BaseException | None:
        """The exception to raise instead of ``err`` (raised inside a pass), or ``None``."""
        return None


def _keras_original(owner: Any, name: str) -> Any:
    """Keras' own ``owner.name``, kept on ``owner`` so a re-import never wraps a wrapper."""
    key = f"_feeders_original_{name}"
    if not hasattr(owner, key):
        setattr(owner, key, getattr(owner, name))
    return getattr(owner, key)


_original_get_data_adapter = _keras_original(_data_adapters, "get_data_adapter")


def get_data_adapter(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    batch_size: int | None = None,
    steps_per_epoch: int | None = None,
    shuffle: bool = False,
    class_weight: Any = None,
) -> Any:
    """Keras' ``get_data_adapter``, except that a feeder makes the adapter for the call."""
    if not isinstance(x, KerasHandOff):
        return _original_get_data_adapter(
            x, y, sample_weight, batch_size, steps_per_epoch, shuffle, class_weight
        )
    method, training, model = _calling_method(x)
    call = KerasCall(
        method,
        training,
        y,
        sample_weight,
        batch_size,
        steps_per_epoch,
        shuffle,
        class_weight,
        model,
    )
    return x.for_keras(call)


def _calling_method(x: Any) -> tuple[str | None, bool, Any]:
    """NOTE [ which pass Keras wants ]

    ``get_data_adapter`` receives ``shuffle=False`` from ``predict``,
    ``evaluate``, ``fit``'s validation and ``fit(shuffle=False)`` alike, and
    only the first three must leave the training position alone. The Keras
    method is the nearest frame up the stack that is ``fit``/``evaluate``/
    ``predict`` of a Keras model (every backend's trainer builds its
    EpochIterator there); inside ``fit``, the data it trains on is its local
    ``x`` (its validation data is ``val_x``). The model is that frame's ``self``.
    """
    from keras.src.trainers.trainer import Trainer

    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_name
        model = frame.f_locals.get("self")
        if name in _KERAS_METHODS and isinstance(model, Trainer):
            return name, name == "fit" and frame.f_locals.get("x") is x, model
        frame = frame.f_back  # type: ignore[assignment]
    return None, False, None


def building_the_model() -> bool:
    """Whether Keras is reading a batch only to build the model's state.

    NOTE [ Keras' build peek ]: on the JAX and torch backends, the first
    ``fit``/``evaluate`` of a new model iterates its EpochIterator for one
    batch inside ``Trainer._symbolic_build`` (only shapes and dtypes are used),
    then resets it. A feeder answers that peek from its spec instead of
    starting a pass: no epoch is claimed and no batch is fetched twice.
    """
    from keras.src.trainers.trainer import Trainer

    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "_symbolic_build" and isinstance(
            frame.f_locals.get("self"), Trainer
        ):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


_original_catch = _keras_original(_epoch_iterator.EpochIterator, "catch_stop_iteration")


@contextlib.contextmanager
def _catch_stop_iteration(self: Any) -> Iterator[None]:
    adapter = self.data_adapter
    if not isinstance(adapter, KerasHandOff):
        with _original_catch(self):
            yield
        return
    with _original_catch(self):
        try:
            yield
        except StopIteration:
            if self._num_batches is None and adapter.num_batches is not None:
                # The pass that just ended taught the feeder its length: take it as
                # Keras' count (it would take steps_seen, one too many) and end the
                # epoch as Keras does, without its "ran out of data" warning.
                self._num_batches = adapter.num_batches
                self._current_iterator = None
                adapter.on_epoch_end()
                return
            raise
        except BaseException as err:
            # A Ctrl-C in the thread TensorFlow runs a generator in reaches Keras as a
            # RuntimeError (pybind11 "REPLACED BY KeyboardInterrupt"): the recorded
            # KeyboardInterrupt is raised instead, as for any recorded exception.
            replacement = adapter.keras_error(err)
            if replacement is None or replacement is err:
                raise
            # The graph error says nothing more; the replacement keeps its own cause.
            raise replacement from replacement.__cause__


_original_split = _keras_original(_array_slicing, "train_validation_split")


def _train_validation_split(arrays: Any, validation_split: float) -> Any:
    if any(isinstance(part, KerasHandOff) for part in arrays):
        raise ValueError(
            f"`validation_split` applies to arrays passed to fit, but got "
            f"validation_split={validation_split!r} with a feeder. Split the feeder instead: "
            f"train, val = feeder.split({validation_split!r}); "
            "model.fit(train, validation_data=val)."
        )
    return _original_split(arrays, validation_split=validation_split)


_data_adapters.get_data_adapter = get_data_adapter
_epoch_iterator.EpochIterator.catch_stop_iteration = _catch_stop_iteration
_array_slicing.train_validation_split = _train_validation_split


def outputs_are_a_dict(model: Any) -> bool:
    """Whether a functional model was built with a dict of outputs.

    Why: Keras then matches a *list* of targets to the outputs in sorted-name
    order, not the order they were written in; ``Feeder.bind`` refuses that trap.
    Reads the private ``_outputs_struct`` (pinned by tests/test_keras_glue.py).
    """
    return isinstance(getattr(model, "_outputs_struct", None), dict)
