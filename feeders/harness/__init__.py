"""Reference models and the runner that proves a feeder trains them as Keras does."""

from feeders.harness.models import mnist_model
from feeders.harness.mnist import MnistResult, run_mnist

__all__ = ["MnistResult", "mnist_model", "run_mnist"]
