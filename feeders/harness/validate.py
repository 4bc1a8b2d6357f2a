"""``feeders validate``: the same data through every source kind must give the same training.

Why: a source kind that reorders, drops, repeats, casts or mis-pairs one batch
still "trains"; only a comparison shows it. For each reference model (the
guide's MNIST model and its multi-head model) the same arrays go through every
built-in source kind (:data:`RECIPES`), unshuffled. Two checks per kind,
against the ``arrays`` kind:

* **batches**: a sha256 digest of each batch of ``feeder.epoch(0)`` (x, y and
  sample_weight: structure, dtypes, shapes and bytes) must be identical;
* **training**: the model trained from the same initial weights must end with
  bit-identical weights (``np.array_equal`` per weight).

The command prints a table and exits non-zero on any mismatch; ``--json PATH``
also writes the rows (with ``batches_sha256``, one digest of the whole stream, and
the backend), so runs under different ``KERAS_BACKEND``s can be compared:
``tests/test_backends.py`` checks that every backend sees the same stream and
ends in the same loss band. MNIST is full
MNIST when ``$FEEDERS_DATA_DIR`` (or ``--data``) holds it, else the bundled
sample; the first 6,400 training images are used unless ``--full``.
"""

from __future__ import annotations

import argparse
import hashlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from feeders._tf import tf_available
from feeders.structure import PARTS, Batch, Tree, flatten, lists_to_tuples, map_tree

if TYPE_CHECKING:
    from feeders.feeder import Feeder

MakeFeeder = Callable[[Tree, Tree, int], "Feeder"]
"""``make(x, y, batch_size) -> Feeder`` over the samples in order (no shuffling)."""

MNIST_SUBSET = 6_400
MULTIHEAD_SAMPLES = 256


class ArraySequence:
    """Arrays (or lists/dicts of them) as a ``keras.utils.Sequence``-like object, batch by batch."""

    def __init__(self, x: Tree, y: Tree, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return math.ceil(len(flatten(self.x)[0]) / self.batch_size)

    def __getitem__(self, i: int) -> tuple[Tree, Tree]:
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return _rows(self.x, rows), _rows(self.y, rows)


def _rows(tree: Tree, rows: slice) -> Tree:
    return map_tree(lambda leaf: leaf[rows], tree)


def _batches(x: Tree, y: Tree, batch_size: int) -> Iterator[tuple[Tree, Tree]]:
    for start in range(0, len(flatten(x)[0]), batch_size):
        rows = slice(start, start + batch_size)
        yield _rows(x, rows), _rows(y, rows)


def adapt(*args: Any, **kwargs: Any) -> Feeder:
    """:func:`feeders.adapt`, imported on first use so ``feeders --help`` skips TensorFlow."""
    from feeders.dispatch import adapt as adapt_

    return adapt_(*args, **kwargs)


def from_arrays(x: Tree, y: Tree, batch_size: int) -> Feeder:
    return adapt(x, y, batch_size=batch_size, shuffle=False)


def from_tf_data(x: Tree, y: Tree, batch_size: int) -> Feeder:
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((lists_to_tuples(x), lists_to_tuples(y)))
    return adapt(dataset.batch(batch_size), shuffle=False)


def from_generator_factory(x: Tree, y: Tree, batch_size: int) -> Feeder:
    # num_batches up front: of a generator of unknown length, Keras warns
    # "Your input ran out of data" at the end of every epoch.
    num_batches = math.ceil(len(flatten(x)[0]) / batch_size)
    return adapt(lambda: _batches(x, y, batch_size), shuffle=False, num_batches=num_batches)


def from_sequence(workers: int) -> MakeFeeder:
    def make(x: Tree, y: Tree, batch_size: int) -> Feeder:
        return adapt(ArraySequence(x, y, batch_size), shuffle=False, workers=workers)

    return make


RECIPES: dict[str, MakeFeeder] = {
    name: make
    for name, make in {
        "arrays": from_arrays,
        "tf.data": from_tf_data,
        "generator": from_generator_factory,
        "sequence-w0": from_sequence(0),
        "sequence-threads2": from_sequence(2),
    }.items()
    if name != "tf.data" or tf_available()
}
"""How each built-in source kind is fed the same arrays; ``arrays`` is the reference.
(``tf.data`` only where TensorFlow is installed.)"""


@dataclass(frozen=True)
class Reference:
    """One reference model with its data: ``build(seed)`` gives the compiled model."""

    name: str
    x: Tree
    y: Tree
    batch_size: int
    build: Callable[[int], Any]
    data: str


def mnist_reference(path: str | None = None, *, full: bool = False) -> Reference:
    """The guide's MNIST model on the first 6,400 training images (all with ``full``)."""
    from feeders.datasets import BUNDLED, mnist_source
    from feeders.harness.mnist import mnist_arrays
    from feeders.harness.models import mnist_model

    x, y, _, _ = mnist_arrays(path)
    if not full:
        x, y = x[:MNIST_SUBSET], y[:MNIST_SUBSET]
    source = mnist_source(path)
    data = f"{len(x):,} MNIST images ({'bundled sample' if source == BUNDLED else source})"
    return Reference("mnist", x, y, 64, mnist_model, data)


def multihead_reference(num_samples: int = MULTIHEAD_SAMPLES) -> Reference:
    """The guide's multi-head model (dict losses, metrics, loss_weights) on its random data."""
    from feeders.harness.multihead import multihead_data, multihead_model

    x, y = multihead_data(num_samples, seed=0)
    return Reference(
        "multihead",
        x,
        y,
        32,
        lambda seed: multihead_model("loss_weights", seed=seed),
        f"{num_samples} random samples",
    )


@dataclass(frozen=True)
class Row:
    """What one source kind gave for one reference model."""

    model: str
    recipe: str
    kind: str
    batches: int
    digests_match: bool
    final_loss: float
    weights_match: bool
    detail: str = ""
    batches_sha256: str = ""

    @property
    def ok(self) -> bool:
        return self.digests_match and self.weights_match


def batch_digest(batch: Batch) -> str:
    """sha256 over a batch's structure, dtypes, shapes and bytes (dict keys in sorted order)."""
    digest = hashlib.sha256()
    for name, part in zip(PARTS, batch, strict=True):
        digest.update(name.encode())
        _feed(digest, part)
    return digest.hexdigest()


def _feed(digest: Any, tree: Tree | None) -> None:
    if tree is None:
        digest.update(b"None")
    elif isinstance(tree, Mapping):
        for key in sorted(tree):
            digest.update(repr(key).encode())
            _feed(digest, tree[key])
    elif isinstance(tree, list | tuple):
        digest.update(f"[{len(tree)}]".encode())
        for value in tree:
            _feed(digest, value)
    else:
        array = np.ascontiguousarray(tree)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.data)


def portable_initial_weights(model: Any, seed: int) -> list[np.ndarray]:
    """The model's initial weights drawn by NumPy: the same numbers under every Keras backend.

    Why: Keras' initializers draw from each backend's own RNG, so one seed gives
    TensorFlow, JAX and torch different starting weights and different final losses.
    Kernels get Glorot-uniform values (Keras' default for these models' layers) from
    ``np.random.default_rng(seed)``; vectors (biases) keep their constant initial values.
    """
    rng = np.random.default_rng(seed)
    weights = []
    for value in model.get_weights():
        if value.ndim < 2:
            weights.append(value)
            continue
        receptive = math.prod(value.shape[:-2])
        fan_in, fan_out = value.shape[-2] * receptive, value.shape[-1] * receptive
        limit = math.sqrt(6 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, value.shape).astype(value.dtype))
    return weights


def validate(
    references: Sequence[Reference],
    recipes: Mapping[str, MakeFeeder] = RECIPES,
    *,
    epochs: int = 2,
    seed: int = 0,
    progress: Any = None,
) -> list[Row]:
    """Feed each reference through each recipe; compare with the first recipe's batches and weights.

    ``progress``: a rich ``Progress`` (:func:`feeders.harness.progress.progress_bar`)
    that gets a bar per run.
    """
    from feeders.harness.progress import EpochProgress

    rows = []
    for ref in references:
        initial = portable_initial_weights(ref.build(seed), seed)
        expected: tuple[list[str], list[np.ndarray]] | None = None
        for recipe, make in recipes.items():
            with make(ref.x, ref.y, ref.batch_size) as feeder:
                digests = [batch_digest(batch) for batch in feeder.epoch(0)]
                model = ref.build(seed)
                model.set_weights(initial)
                name = f"{ref.name} / {recipe}"
                shown = [] if progress is None else [EpochProgress(progress, name)]
                history = model.fit(feeder, epochs=epochs, verbose=0, callbacks=shown)
            weights = model.get_weights()
            expected = expected or (digests, weights)
            rows.append(
                Row(
                    ref.name,
                    recipe,
                    feeder.kind,
                    len(digests),
                    digests == expected[0],
                    float(history.history["loss"][-1]),
                    all(np.array_equal(a, b) for a, b in zip(weights, expected[1], strict=True)),
                    _differences(digests, expected[0], weights, expected[1]),
                    hashlib.sha256("".join(digests).encode()).hexdigest(),
                )
            )
    return rows


def _differences(
    digests: list[str], want: list[str], weights: list[np.ndarray], want_weights: list[np.ndarray]
) -> str:
    notes = []
    if len(digests) != len(want):
        notes.append(f"{len(digests)} batches, expected {len(want)}")
    differ = [i for i, (a, b) in enumerate(zip(digests, want, strict=False)) if a != b]
    if differ:
        notes.append(f"batches differ from #{differ[0]} ({len(differ)} in all)")
    delta = max(
        float(np.max(np.abs(a - b), initial=0.0))
        for a, b in zip(weights, want_weights, strict=True)
    )
    if delta:
        notes.append(f"max |Δweight| {delta:.3g}")
    return "; ".join(notes)


def render(rows: Sequence[Row], title: str) -> Any:
    """The rich table: source kind × model (fits 80 columns; details go below it)."""
    from rich.table import Table

    def verdict(ok: bool) -> str:
        return "[green]match[/]" if ok else "[bold red]MISMATCH[/]"

    table = Table(title=title)
    for column in ("model", "source", "batches", "digests", "final loss", "weights"):
        table.add_column(column, justify="right" if column in ("batches", "final loss") else "left")
    for row in rows:
        table.add_row(
            row.model,
            row.recipe,
            str(row.batches),
            verdict(row.digests_match),
            f"{row.final_loss:.6f}",
            verdict(row.weights_match),
        )
    return table


def run(args: argparse.Namespace) -> int:
    """The ``validate`` command: build the references, compare, print, exit 1 on a mismatch."""
    from rich.console import Console

    from feeders.harness.progress import progress_bar
    from feeders.registry import source_kinds

    builders = {
        "mnist": lambda: mnist_reference(args.data, full=args.full),
        "multihead": multihead_reference,
    }
    references = [builders[name]() for name in args.model or builders]
    names = ["arrays", *(name for name in args.source or RECIPES if name != "arrays")]
    console = Console()
    recipes = {name: RECIPES[name] for name in names}
    with progress_bar(console) as progress:
        rows = validate(references, recipes, epochs=args.epochs, seed=args.seed, progress=progress)
    console.print(render(rows, f"feeders validate: {args.epochs} epochs, shuffle=False"))
    if args.json:
        _write_json(args.json, rows)
    for ref in references:
        console.print(f"{ref.name}: {ref.data}, batch size {ref.batch_size}, seed {args.seed}")
    covered = {row.kind for row in rows}
    uncovered = [kind.name for kind in source_kinds() if kind.name not in covered]
    if uncovered:
        console.print(f"source kinds not checked (no recipe here): {', '.join(uncovered)}")
    failed = [row for row in rows if not row.ok]
    for row in failed:
        console.print(f"[bold red]{row.model}/{row.recipe} ({row.kind} kind):[/] {row.detail}")
    if failed:
        console.print(
            f"[bold red]{len(failed)} of {len(rows)} runs differ from the arrays source[/]"
        )
        return 1
    console.print(f"all {len(rows)} runs identical: same batches, same final weights")
    return 0


def _write_json(path: str, rows: Sequence[Row]) -> None:
    """The rows as a JSON list, each with the Keras backend that trained it."""
    import dataclasses
    import json

    import keras

    backend = keras.backend.backend()
    records = [{**dataclasses.asdict(row), "ok": row.ok, "backend": backend} for row in rows]
    with open(path, "w", encoding="utf-8") as file:
        json.dump(records, file, indent=1)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``feeders validate`` on the CLI's sub-command parsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "validate",
        help="the same data through every source kind: identical batches and final weights",
        description="The same data through every source kind must give the same batches and "
        "the same trained weights; exits 1 if not.",
    )
    p.add_argument(
        "--data",
        default=None,
        help="mnist.npz or a folder with it (default: $FEEDERS_DATA_DIR, then the bundled sample)",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help=f"all MNIST training images, not the first {MNIST_SUBSET:,}",
    )
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--model",
        action="append",
        choices=["mnist", "multihead"],
        help="a reference model to check (repeatable; default: both)",
    )
    p.add_argument(
        "--source",
        action="append",
        choices=list(RECIPES),
        help="a source recipe to compare with arrays, the reference (repeatable; default: all)",
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        default=None,
        help="also write the rows (digests, final loss, backend) to PATH as JSON",
    )
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    p.set_defaults(run=run)
    return p
