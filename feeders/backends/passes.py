"""A pass abandoned after its first batch or two is resumed, not skipped.

Why: on the JAX and PyTorch backends, ``fit``/``evaluate`` of a model that is
not built yet first take *one* batch to build it symbolically (Keras'
``Trainer._symbolic_build``), then drop that iterator and start the epoch
again. Each pass over a feeder is the next seeded epoch, so without this the
first epoch trained would be epoch 1 (not epoch 0 as on TensorFlow), and a
single-pass generator would have nothing left. Keras' own generator adapter
solves the same problem by peeking and replaying (``peek_and_restore``).

Here: a pass that its consumer closes having pulled at most :data:`HOLD`
batches, and fewer than the pass has, is *held* (the batches pulled and the rest of the pass, suspended);
the next pass serves those batches again and continues the held pass, so
every backend sees the batches of epoch 0, then epoch 1, ... as TensorFlow
does. A pass abandoned later (``model.stop_training``, a ``break``) ends as it
always did: the next pass is the next epoch. A ``seek`` in between drops the
held pass. (A pass of one batch cannot be told from a peek: Keras stops
after ``num_batches`` without asking for more, so it counts as consumed.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

HOLD = 3
"""Batches a peek may have pulled: Keras' one, plus a batch of look-ahead on each of two layers."""


class PassKeeper:
    """Makes the passes of one feeder, holding one that was abandoned early (see the module).

    Args:
        make_pass: a new pass of NumPy batches (claims the feeder's next epoch on first ``next``).
        position: the feeder's current ``(epoch, batch)``; a change means it was seeked.
        length: batches per pass (``None`` when unknown); a pass pulled that far is consumed.
    """

    def __init__(
        self,
        make_pass: Callable[[], Iterator[Any]],
        position: Callable[[], tuple[int, int]],
        length: Callable[[], int | None],
    ) -> None:
        self._make_pass = make_pass
        self._position = position
        self._length = length
        self._held: tuple[list[Any], Iterator[Any], tuple[int, int]] | None = None

    def next_pass(self) -> Iterator[Any]:
        """The held pass (from its first batch) when there is one, else a new pass."""
        held, self._held = self._held, None
        if held is not None:
            pulled, rest, at = held
            if at == self._position():
                return self._serve(pulled, rest)
            _close(rest)
        return self._serve([], self._make_pass())

    def _serve(self, pulled: list[Any], rest: Iterator[Any]) -> Iterator[Any]:
        finished = False
        try:
            yield from list(pulled)
            for batch in rest:
                if len(pulled) <= HOLD:
                    pulled.append(batch)
                yield batch
            finished = True
        except GeneratorExit:
            length = self._length()
            if len(pulled) <= HOLD and (length is None or len(pulled) < length):
                self._held = (pulled, rest, self._position())
                raise
            _close(rest)
            raise
        except BaseException:
            _close(rest)
            raise
        finally:
            if finished:
                pulled.clear()


def _close(batches: Iterator[Any]) -> None:
    close = getattr(batches, "close", None)
    if close is not None:
        close()
