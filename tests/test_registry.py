"""The source registry: ordered rows, user rows first, entry-point plug-ins."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint

import numpy as np
import pytest

import feeders
from feeders import registry
from feeders.structure import BatchSpec


class RangeSource:
    """A minimal plug-in: satisfies feeders.Source without inheriting anything."""

    def __init__(self, n: int, batch_size: int) -> None:
        self.n, self.size = n, batch_size

    @property
    def num_batches(self) -> int:
        return -(-self.n // self.size)

    @property
    def spec(self) -> BatchSpec:
        return BatchSpec.of((np.zeros((1, 1), np.float32), None, None))

    def epoch(self, n: int, start: int = 0) -> Iterator:
        for b in range(start, self.num_batches):
            yield (
                np.arange(b * self.size, min(self.n, (b + 1) * self.size), dtype=np.float32)[
                    :, None
                ],
                None,
                None,
            )

    def close(self) -> None:
        pass


def _make_range(source: range, y, *, batch_size=None, **_) -> RangeSource:
    return RangeSource(len(source), batch_size or 4)


def test_a_registered_kind_is_used_and_can_be_removed() -> None:
    kind = feeders.register_source("range", lambda s: isinstance(s, range), _make_range)
    try:
        feeder = feeders.adapt(range(10), batch_size=4)
        assert feeder.kind == "range"
        assert [b[0][:, 0].tolist() for b in feeder.epoch(0)] == [
            [0, 1, 2, 3],
            [4, 5, 6, 7],
            [8, 9],
        ]
    finally:
        feeders.unregister_source(kind)
    with pytest.raises(TypeError, match="is not supported"):
        feeders.adapt(3.5)


def test_a_registered_kind_declares_what_it_accepts() -> None:
    kind = feeders.register_source(
        "range",
        lambda s: isinstance(s, range),
        _make_range,
        accepts=frozenset({"batch_size"}),
        default_shuffle=False,
    )
    try:
        assert feeders.adapt(range(10), batch_size=5).num_batches == 2
        with pytest.raises(
            TypeError, match=r"`y` does not apply to 'range' sources .* take \['batch_size', "
        ):
            feeders.adapt(range(10), np.zeros(10))
    finally:
        feeders.unregister_source(kind)


def test_a_kind_that_declares_nothing_gets_every_option() -> None:
    seen = {}

    def make(source: range, y, **options) -> RangeSource:
        seen.update(options)
        return RangeSource(len(source), 4)

    kind = feeders.register_source("range", lambda s: isinstance(s, range), make)
    try:
        feeders.adapt(range(10), workers=3, shuffle=False)
    finally:
        feeders.unregister_source(kind)
    assert seen["workers"] == 3 and seen["shuffle"] is False


def test_user_rows_win_over_builtin_ones() -> None:
    kind = feeders.register_source(
        "mine", lambda s: isinstance(s, np.ndarray), lambda s, y, **kw: RangeSource(len(s), 5)
    )
    try:
        assert feeders.adapt(np.zeros((10, 1))).kind == "mine"
    finally:
        feeders.unregister_source(kind)
    assert feeders.adapt(np.zeros((10, 1))).kind == "arrays"


def test_entry_point_plugins_are_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = registry.SourceKind("plugin-range", lambda s: isinstance(s, range), _make_range)
    monkeypatch.setattr(registry, "PLUGIN_FOR_TEST", plugin, raising=False)
    ep = EntryPoint("plugin-range", "feeders.registry:PLUGIN_FOR_TEST", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(
        registry, "entry_points", lambda group: [ep] if group == registry.ENTRY_POINT_GROUP else []
    )
    monkeypatch.setattr(registry, "_plugins", None)
    assert feeders.adapt(range(6)).kind == "plugin-range"
    monkeypatch.setattr(registry, "_plugins", None)


def test_a_bad_entry_point_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint("broken", "feeders.registry:ENTRY_POINT_GROUP", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep])
    monkeypatch.setattr(registry, "_plugins", None)
    with pytest.raises(
        TypeError,
        match=r"Entry point 'broken'.*must name a feeders.registry.SourceKind, but it gave str",
    ):
        feeders.adapt(np.zeros(3))
    monkeypatch.setattr(registry, "_plugins", None)


def test_predicates_do_not_confuse_kinds() -> None:
    assert registry.is_arrays([np.zeros(2), {"a": np.zeros(2)}])
    assert not registry.is_sequence("abc")
    assert not registry.is_sequence({"a": 1})
    assert registry.is_generator(iter([]))
    assert not registry.is_generator(int)


def test_plugin_source_satisfies_the_protocol() -> None:
    assert isinstance(RangeSource(3, 2), feeders.Source)
    with pytest.raises(TypeError, match=r"must implement feeders\.Source"):
        feeders.Feeder(object())
