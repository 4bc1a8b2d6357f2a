"""One process of a 2-process data-parallel run on 127.0.0.1 (tests/test_sharding_multiprocess.py).

Usage: ``python sharded_training.py BACKEND INDEX PORT OUT`` with BACKEND ``jax``
(``jax.distributed`` + ``keras.distribution.DataParallel``) or ``tensorflow``
(``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``, in a custom loop: Keras
3's ``fit`` fails multi-worker, tensorflow/tensorflow#72388). It trains the
MNIST reference model on 1,001 id-tagged MNIST images through ``shard="auto"``
feeders (arrays for 2 epochs, then a Sequence for 1) and writes to OUT, as JSON,
the sample ids of every batch Keras took per pass it started (masked rows
apart), the masked rows,
the steps Keras trained per epoch and a digest of the final weights.
"""

from __future__ import annotations

import json
import os
import sys

BACKEND, INDEX, PORT, OUT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
NUM_SAMPLES, BATCH_SIZE = 1001, 32
os.environ["KERAS_BACKEND"] = BACKEND

if BACKEND == "jax":
    import jax

    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{PORT}", num_processes=2, process_id=INDEX
    )
else:
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{PORT}", f"127.0.0.1:{PORT + 1}"]},
            "task": {"type": "worker", "index": INDEX},
        }
    )
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()

import keras  # noqa: E402

keras.config.disable_traceback_filtering()
import numpy as np  # noqa: E402

import feeders  # noqa: E402
from feeders.datasets import load_mnist  # noqa: E402
from feeders.harness import mnist_model  # noqa: E402
from tests.id_sequence import IdSequence  # noqa: E402

(x_train, y_train), _ = load_mnist()
x = x_train[:NUM_SAMPLES].reshape(NUM_SAMPLES, 784).astype("float32") / 255.0
x[:, 0] = np.arange(NUM_SAMPLES) / 1024.0  # pixel 0 is blank in MNIST: it carries the id, exactly
y = y_train[:NUM_SAMPLES].astype("int64")

if BACKEND == "jax":
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    model = mnist_model(seed=0)
else:
    with strategy.scope():
        model = mnist_model(seed=0)


class Steps(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.per_epoch: list[int] = []

    def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
        self.per_epoch.append(0)

    def on_train_batch_end(self, batch: int, logs: object = None) -> None:
        self.per_epoch[-1] += 1


# One entry per pass Keras started: the ids of each batch it took (masked rows apart).
passes: list[list[list[int]]] = []
masked: list[list[list[int]]] = []


def recorded(feeder: feeders.Feeder) -> feeders.Feeder:
    """Record every batch Keras takes from ``feeder`` (at the hand-off, on either backend)."""
    keras_pass = feeder._keras_pass

    def recording(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        passes.append([])
        masked.append([])
        for batch in keras_pass(*args, **kwargs):
            ids = np.rint(np.asarray(batch[0])[:, 0] * 1024).astype(int)
            weight = np.asarray(batch[2])
            passes[-1].append(ids[weight > 0].tolist())
            masked[-1].append(ids[weight == 0].tolist())
            yield batch

    feeder._keras_pass = recording  # type: ignore[method-assign]
    return feeder


def train_tf_loop(feeder: feeders.Feeder, epochs: int) -> None:
    """A custom loop under the strategy: Keras 3's fit does not run multi-worker (see README).

    Records the ids of what each step trains on, from the distributed batches themselves.
    """
    from feeders.sharding_tf import per_worker_dataset

    loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)
    optimizer = model.optimizer
    global_batch = BATCH_SIZE * strategy.num_replicas_in_sync

    @tf.function
    def step(batch: tuple[tf.Tensor, ...]) -> None:
        def one(x: tf.Tensor, y: tf.Tensor, weight: tf.Tensor) -> None:
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(loss_fn(y, model(x, training=True)) * weight) / global_batch
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

        strategy.run(one, args=batch)

    for _ in range(epochs):
        steps.per_epoch.append(0)
        passes.append([])
        masked.append([])
        for batch in per_worker_dataset(feeder.as_dataset(), model):
            step(batch)
            steps.per_epoch[-1] += 1
            x_local, _, w_local = (strategy.experimental_local_results(p)[0] for p in batch)
            ids = np.rint(x_local.numpy()[:, 0] * 1024).astype(int)
            passes[-1].append(ids[w_local.numpy() > 0].tolist())
            masked[-1].append(ids[w_local.numpy() == 0].tolist())


steps = Steps()
arrays = feeders.adapt(x, y, batch_size=BATCH_SIZE, seed=7, shard="auto")
sequence = feeders.adapt(IdSequence(x, y, BATCH_SIZE), shuffle=True, seed=7, shard="auto")
if BACKEND == "jax":
    model.fit(recorded(arrays), epochs=2, verbose=0, callbacks=[steps])
    model.fit(recorded(sequence), epochs=1, verbose=0, callbacks=[steps])
else:
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    train_tf_loop(arrays, 2)
    train_tf_loop(sequence, 1)

weights = np.concatenate([np.ravel(w) for w in model.get_weights()])
with open(OUT, "w") as f:
    json.dump(
        {
            "shard": [arrays.source.process_shard.index, arrays.source.process_shard.count],
            "passes": passes,
            "masked": masked,
            "steps": steps.per_epoch,
            "weights": [float(weights.sum()), float(np.abs(weights).sum())],
        },
        f,
    )
print("done", INDEX, flush=True)
