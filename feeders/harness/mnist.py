"""The guide's end-to-end MNIST run, through any feeder: the proof that a feeder trains right.

Two epochs at batch 64 with the last 10,000 training images held out for
validation, as the guide does; on the bundled sample the held-out part is the
last sixth instead. The guide reports val accuracy ~0.965 and test ~0.96.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from feeders.datasets import BUNDLED, load_mnist, mnist_source
from feeders.dispatch import adapt
from feeders.feeder import Feeder
from feeders.harness.models import mnist_model

FULL_VALIDATION = 10_000

MakeFeeder = Callable[..., Feeder]


@dataclass
class MnistResult:
    """What the harness measured; ``history`` is Keras' ``History.history``."""

    history: dict[str, list[float]]
    test_loss: float
    test_accuracy: float
    num_train: int
    num_validation: int
    num_test: int
    data: str
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def val_accuracy(self) -> float:
        return float(self.history["val_sparse_categorical_accuracy"][-1])


def mnist_arrays(path: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST flattened to 784 float32 features in [0, 1], as the guide prepares it."""
    (images, y_train), (test_images, y_test) = load_mnist(path)
    x_train = images.reshape(len(images), 784).astype("float32") / 255
    x_test = test_images.reshape(len(test_images), 784).astype("float32") / 255
    return x_train, y_train, x_test, y_test


def validation_size(num_train: int) -> int:
    """10,000 on full MNIST, a sixth of a smaller set (the same proportion)."""
    return FULL_VALIDATION if num_train >= 60_000 else num_train // 6


def run_mnist(
    path: str | None = None,
    *,
    epochs: int = 2,
    batch_size: int = 64,
    seed: int = 0,
    verbose: int | str = 0,
    make_feeder: MakeFeeder = adapt,
    callbacks: list[Any] | None = None,
) -> MnistResult:
    """Train the reference MNIST model through ``make_feeder`` and test it.

    Args:
        path: where MNIST is (see :func:`feeders.datasets.load_mnist`).
        make_feeder: ``make_feeder(x, y, batch_size=, shuffle=, seed=) -> Feeder``;
            swap it to run the harness through another source kind.
    """
    x_train, y_train, x_test, y_test = mnist_arrays(path)
    held_out = validation_size(len(x_train))
    train, val = make_feeder(
        x_train, y_train, batch_size=batch_size, shuffle=True, seed=seed
    ).split(held_out)
    test = make_feeder(x_test, y_test, batch_size=128, shuffle=False)
    model = mnist_model(seed)
    history = model.fit(
        train, epochs=epochs, validation_data=val, verbose=verbose, callbacks=callbacks
    )
    test_loss, test_accuracy = model.evaluate(test, verbose=0)
    source = mnist_source(path)
    return MnistResult(
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        test_loss=float(test_loss),
        test_accuracy=float(test_accuracy),
        num_train=len(x_train) - held_out,
        num_validation=held_out,
        num_test=len(x_test),
        data="bundled sample" if source == BUNDLED else source,
    )
