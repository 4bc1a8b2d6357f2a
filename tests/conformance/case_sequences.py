from __future__ import annotations

import feeders
from tests.conformance.cases import Case
from tests.id_sequence import IdSequence


def _sequence(workers: int, processes: bool = False):
    def make(x, y, *, batch_size, shuffle, seed):
        return feeders.adapt(
            IdSequence(x, y, batch_size),
            shuffle=shuffle,
            seed=seed,
            workers=workers,
            use_multiprocessing=processes,
        )

    return make


CASES = [
    Case("sequence-w0", _sequence(0)),
    Case("sequence-threads2", _sequence(2)),
    Case("sequence-processes2", _sequence(2, processes=True)),
]
