"""Reference models and the runner that proves a feeder trains them as Keras does."""

from feeders.harness.mnist import MnistResult, run_mnist
from feeders.harness.models import mnist_model
from feeders.harness.multihead import multihead_data, multihead_model

__all__ = ["MnistResult", "mnist_model", "multihead_data", "multihead_model", "run_mnist"]
