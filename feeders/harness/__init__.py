"""Reference models and the runner that proves a feeder trains them as Keras does."""

from feeders.harness.mnist import MnistResult, run_mnist
from feeders.harness.models import mnist_model

__all__ = ["MnistResult", "mnist_model", "run_mnist"]
