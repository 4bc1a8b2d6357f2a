from __future__ import annotations

import feeders
from tests.conformance.cases import Case


def _arrays(x, y, **kw):
    return feeders.adapt(x, y, **kw)


def _dict_arrays(x, y, **kw):
    feeder = feeders.adapt({"features": x}, {"label": y}, **kw)
    return _Unwrapped(feeder)


class _Unwrapped:
    """Presents dict batches as plain arrays so the shared checks apply unchanged."""

    def __init__(self, feeder):
        self.feeder = feeder
        self.num_batches = feeder.num_batches

    def epoch(self, n, start=0):
        for x, y, w in self.feeder.epoch(n, start):
            yield x["features"], y["label"], w

    def close(self):
        self.feeder.close()


CASES = [Case("arrays", _arrays), Case("arrays-dict", _dict_arrays)]
