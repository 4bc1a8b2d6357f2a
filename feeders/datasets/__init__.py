"""Datasets the guide and the harness train on, loaded offline."""

from feeders.datasets.mnist import BUNDLED, MNIST_ENV_VAR, MnistSplits, load_mnist, mnist_source

__all__ = ["BUNDLED", "MNIST_ENV_VAR", "MnistSplits", "load_mnist", "mnist_source"]
