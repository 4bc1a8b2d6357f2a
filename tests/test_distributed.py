"""feeders.distributed and `feeders serve`: feeders read through tf.data service, on 127.0.0.1.

In-process servers share this process's Python and would hide a pipeline that cannot deploy,
so the tests that matter most run `feeders serve` subprocesses on free ports.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import feeders
from feeders.capabilities import Servable
from feeders.distributed import NotServableError, ServiceTimeoutError, distribute
from feeders.harness import mnist_model
from feeders.images import ImageFileSequence, decode_tf
from feeders.images.samples import write_photos
from feeders.serve import start_dispatcher
from feeders.service_graph import Rows, ServiceGraph, rows_graph
from feeders.structure import Batch, BatchSpec
from tests.sequence_helpers import CountingSequence

START_S = 60.0  # a loaded 2-core machine can take this long to import TensorFlow twice


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rows_seen(batches: list[tuple[np.ndarray, ...]], n: int) -> np.ndarray:
    """How many times each row 0..n-1 arrived (x holds the row number)."""
    rows = np.concatenate([b[0][:, 0] for b in batches]).astype(np.int64)
    return np.bincount(rows, minlength=n)


def numbered(n: int = 100, batch_size: int = 8, **options: object) -> feeders.Feeder:
    x = np.arange(n, dtype=np.float32)[:, None]
    return feeders.adapt(x, np.arange(n) % 3, batch_size=batch_size, seed=1, **options)


# -- in-process cluster ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    service = tf.data.experimental.service
    dispatcher = service.DispatchServer()
    address = dispatcher.target.split("://")[1]
    # A short heartbeat: workers pick up tasks sooner, and `stop()` returns at once instead
    # of waiting out TF's default interval (each stop took 7-10 s, 67 s once under load).
    config = functools.partial(service.WorkerConfig, address, heartbeat_interval_ms=500)
    workers = [service.WorkerServer(config()) for _ in range(2)]
    try:
        yield dispatcher.target
    finally:
        for server in [*workers, dispatcher]:
            server.stop()


@pytest.mark.timeout(60)
def test_distributed_epoch_serves_every_sample_once_per_epoch(cluster: str) -> None:
    served = distribute(numbered(), cluster, "distributed_epoch")
    first, second = list(served), list(served)
    assert rows_seen(first, 100).tolist() == [1] * 100
    assert rows_seen(second, 100).tolist() == [1] * 100
    assert [b[0][0, 0] for b in first] != [b[0][0, 0] for b in second]  # re-mixed per job


@pytest.mark.timeout(60)
def test_parallel_epochs_serves_a_full_epoch_per_worker(cluster: str) -> None:
    served = numbered().distribute(cluster, processing_mode="parallel_epochs")
    batches = list(served)
    assert rows_seen(batches, 100).tolist() == [2] * 100
    assert len(batches) == served.num_batches == 2 * 13


@pytest.mark.timeout(60)
def test_class_weight_is_applied_on_the_workers(cluster: str) -> None:
    served = distribute(numbered(class_weight={0: 1.0, 1: 2.0, 2: 3.0}), cluster)
    for _, y, weights in served:
        np.testing.assert_array_equal(weights, 1.0 + y)


@pytest.mark.timeout(60)
def test_a_tf_data_feeder_distributes_as_it_is(cluster: str) -> None:
    x = np.arange(60, dtype=np.float32)[:, None]
    pipeline = tf.data.Dataset.from_tensor_slices((x, np.arange(60))).batch(7)
    served = distribute(feeders.adapt(pipeline), cluster, "distributed_epoch")
    batches = list(served)  # each worker batches its own rows; the client joins the partials
    assert rows_seen(batches, 60).tolist() == [1] * 60
    assert len(batches) == served.num_batches == 9


class PythonSequence:
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((4, 3), np.float32), np.zeros(4)


def python_generator() -> Iterator[tuple[np.ndarray, np.ndarray]]:
    yield from [(np.zeros((4, 3), np.float32), np.zeros(4))] * 2


class NumberedSource:
    """A plug-in Source (inheriting nothing) without a service graph: x is the row number."""

    def __init__(self, n: int = 20, batch_size: int = 4) -> None:
        self.n, self.batch_size = n, batch_size

    @property
    def num_batches(self) -> int:
        return -(-self.n // self.batch_size)

    @property
    def spec(self) -> BatchSpec:
        return BatchSpec.of((np.zeros((1, 1), np.float32), np.zeros(1, np.int64), None))

    def epoch(self, n: int, start: int = 0) -> Iterator[Batch]:
        for b in range(start, self.num_batches):
            rows = np.arange(b * self.batch_size, min(self.n, (b + 1) * self.batch_size))
            yield rows.astype(np.float32)[:, None], 2 * rows, None

    def close(self) -> None:
        pass


class ServableSource(NumberedSource):
    """The same, with a Servable graph built on feeders' shared row graph."""

    def service_graph(self, epoch: int, mode: str) -> ServiceGraph:
        numbers = tf.constant(np.arange(self.n, dtype=np.float32))

        def fetch(rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return tf.gather(numbers, rows)[:, None], 2 * rows

        return rows_graph(Rows(self.n, self.batch_size, None, False, False, fetch), mode)


class PythonGraphSource(NumberedSource):
    """A plug-in whose "graph" calls Python: refused before it reaches a worker."""

    def service_graph(self, epoch: int, mode: str) -> ServiceGraph:
        signature = (tf.TensorSpec((None, 3), tf.float32), tf.TensorSpec((None,), tf.float64))
        dataset = tf.data.Dataset.from_generator(python_generator, output_signature=signature)
        return ServiceGraph(dataset, 2, 4)


@pytest.mark.timeout(60)
def test_a_plug_in_that_is_servable_without_inheriting_is_served(cluster: str) -> None:
    source = ServableSource()
    assert isinstance(source, Servable)
    served = distribute(feeders.Feeder(source), cluster, "distributed_epoch")
    batches = list(served)
    assert rows_seen(batches, 20).tolist() == [1] * 20
    for x, y in batches:
        np.testing.assert_array_equal(y, 2 * x[:, 0])


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda: feeders.adapt(python_generator), "a Python generator"),
        (lambda: feeders.adapt(PythonSequence()), r"a Python Sequence \(its __getitem__\)"),
        (lambda: feeders.Feeder(NumberedSource()), "a NumberedSource source with no TF-graph form"),
        (lambda: feeders.Feeder(PythonGraphSource()), "its tf.data pipeline calls Python"),
        (
            lambda: feeders.adapt(
                tf.data.Dataset.from_generator(
                    python_generator,
                    output_signature=(
                        tf.TensorSpec((None, 3), tf.float32),
                        tf.TensorSpec((None,), tf.float64),
                    ),
                )
            ),
            "its tf.data pipeline calls Python",
        ),
    ],
    ids=["generator", "sequence", "plug-in", "plug-in-python-graph", "tf.data-from_generator"],
)
def test_python_feeders_are_refused_with_the_reason_and_the_fix(
    cluster: str, make: Callable[[], feeders.Feeder], what: str
) -> None:
    feeder = make()
    try:
        with pytest.raises(
            NotServableError, match=rf"{what}.*key=pyfunc_0.*ImageFileSequence.*workers=N"
        ):
            distribute(feeder, cluster)
    finally:
        feeder.close()


@pytest.mark.timeout(60)
def test_image_files_that_skip_bad_files_are_refused(cluster: str, tmp_path: Path) -> None:
    files = [str(p) for p in write_photos(tmp_path, 2, sizes=(40, 60))]
    sequence = ImageFileSequence(files, [0, 1], batch_size=2, image_size=(8, 8), on_error="skip")
    with pytest.raises(ValueError, match=r"needs on_error='raise', but got on_error='skip'"):
        distribute(sequence, cluster)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rescale", [None, 1 / 255])
def test_uint8_image_files_are_served_as_uint8_and_train(
    cluster: str, tmp_path: Path, rescale: float | None
) -> None:
    """uint8 through the service; with `rescale`, float32 `x * rescale` on the trainer."""
    files = [str(p) for p in write_photos(tmp_path, 6, sizes=(40, 60))]
    sequence = ImageFileSequence(
        files, np.arange(6), batch_size=4, image_size=(8, 8), dtype="uint8", rescale=rescale
    )
    served = distribute(feeders.adapt(sequence), cluster, "distributed_epoch")
    batches = list(served)
    assert sorted(np.concatenate([y for _, y in batches]).tolist()) == list(range(6))
    for x, y in batches:
        assert sequence[0][0].dtype == np.uint8
        assert x.dtype == (np.uint8 if rescale is None else np.float32)
        for image, label in zip(x, y, strict=True):
            expected = decode_tf(files[label], (8, 8), out=np.empty((8, 8, 3), np.uint8))
            if rescale is not None:
                expected = expected.astype(np.float32) * np.float32(rescale)
            np.testing.assert_array_equal(image, expected)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Rescaling(1 / 255 if rescale is None else 1.0),
            keras.layers.Flatten(),
            keras.layers.Dense(6, activation="softmax"),
        ]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    assert np.isfinite(model.fit(served, epochs=2, verbose=0).history["loss"]).all()


@pytest.mark.timeout(60)
def test_zipped_sources_are_refused_in_distributed_epoch(cluster: str) -> None:
    zipped = tf.data.Dataset.zip(
        tf.data.Dataset.range(10).map(lambda i: tf.cast(i, tf.float32)[None]),
        tf.data.Dataset.range(10),
    ).batch(5)
    with pytest.raises(ValueError, match=r"zips several sources \(2\).*from_tensor_slices"):
        distribute(feeders.adapt(zipped), cluster, "distributed_epoch")


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"processing_mode": "dynamic"}, r"`processing_mode` must be one of .*'dynamic'"),
        ({"timeout": 0}, r"`timeout` must be a positive number of seconds, but got timeout=0"),
        ({"probe_timeout": -1.0}, r"`probe_timeout` must be a positive number"),
    ],
)
def test_bad_arguments_are_refused(cluster: str, options: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        distribute(numbered(), cluster, **options)  # type: ignore[arg-type]


@pytest.mark.timeout(30)
def test_a_feeder_with_steps_per_epoch_is_refused(cluster: str) -> None:
    with pytest.raises(ValueError, match=r"`steps_per_epoch=5` is not applied through tf.data"):
        distribute(numbered(steps_per_epoch=5), cluster)


@pytest.mark.timeout(30)
def test_servers_refuse_a_bad_port() -> None:
    with pytest.raises(ValueError, match=r"`port` must be an int in \[0, 65535\].*port=70000"):
        start_dispatcher(70000)


@pytest.mark.timeout(30)
def test_a_service_without_a_port_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'grpc://host:port' or 'host:port', but got service="):
        distribute(numbered(), "grpc://somewhere")


@pytest.mark.timeout(30)
def test_an_unanswering_dispatcher_fails_within_the_probe_timeout() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=rf"dispatcher at 'localhost:{port}' did not answer"):
        distribute(numbered(), f"grpc://localhost:{port}", probe_timeout=1.0)
    assert time.monotonic() - started < 10


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_fit_trains_the_mnist_model_through_the_service(cluster: str) -> None:
    (images, labels), _ = feeders.datasets.load_mnist()
    x = images[:640].reshape(-1, 784).astype(np.float32) / 255
    model = mnist_model(seed=0)
    served = distribute(feeders.adapt(x, labels[:640], batch_size=32, seed=0), cluster)
    history = model.fit(served, epochs=3, verbose=0).history["sparse_categorical_accuracy"]
    assert history[-1] > history[0] + 0.1


# -- `feeders serve` subprocesses ------------------------------------------------------------
class Servers:
    """`feeders serve ...` subprocesses, each waited for until it logs that it listens."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.logs / f"server{len(self.processes)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "feeders", "serve", *args],
                stdout=subprocess.DEVNULL,
                stderr=out,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )
        process.log = log  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def wait_listening(self, *processes: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_S
        for process in processes:
            while b"listening on" not in process.log.read_bytes():  # type: ignore[attr-defined]
                assert process.poll() is None, process.log.read_text()  # type: ignore[attr-defined]
                assert time.monotonic() < deadline, "server did not start in time"
                time.sleep(0.1)

    def dispatcher(self, work_dir: Path | None = None) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        extra = ["--work-dir", str(work_dir)] if work_dir else []
        return f"localhost:{port}", self.start("dispatcher", "--port", str(port), *extra)

    def worker(self, dispatcher: str, port: int | None = None) -> subprocess.Popen[bytes]:
        port = port or free_port()
        address = f"localhost:{port}"
        return self.start(
            "worker", "--dispatcher", dispatcher, "--port", str(port), "--worker-address", address
        )

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = Servers(tmp_path_factory.mktemp("servers"))
    try:
        yield started
    finally:
        started.kill_all()


@pytest.fixture(scope="module")
def process_cluster(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fault-tolerant dispatcher and two workers, each its own process."""
    address, dispatcher = servers.dispatcher(tmp_path_factory.mktemp("journal"))
    workers = [servers.worker(address) for _ in range(2)]
    servers.wait_listening(dispatcher, *workers)
    return f"grpc://{address}"


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("mode", "times"), [("distributed_epoch", 1), ("parallel_epochs", 2)])
def test_separate_process_servers_serve_arrays(process_cluster: str, mode: str, times: int) -> None:
    served = distribute(numbered(), process_cluster, mode)
    assert rows_seen(list(served), 100).tolist() == [times] * 100


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_separate_process_servers_decode_image_files_with_tf_ops(
    process_cluster: str, tmp_path: Path
) -> None:
    files = [str(p) for p in write_photos(tmp_path, 10, sizes=(40, 90))]
    sequence = ImageFileSequence(
        files, np.arange(10), batch_size=4, image_size=(24, 32), shuffle=True, seed=0
    )
    served = distribute(feeders.adapt(sequence), process_cluster, "distributed_epoch")
    batches = list(served)
    labels = np.concatenate([y for _, y in batches])
    assert sorted(labels.tolist()) == list(range(10))
    for x, y in batches:
        for image, label in zip(x, y, strict=True):
            np.testing.assert_allclose(image, decode_tf(files[label], (24, 32)), atol=1e-5)


# -- worker death ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fragile_cluster(servers: Servers) -> tuple[str, int]:
    """A dispatcher and two workers of which the tests kill the second one."""
    address, dispatcher = servers.dispatcher()
    port = free_port()
    workers = [servers.worker(address), servers.worker(address, port)]
    servers.wait_listening(dispatcher, *workers)
    return f"grpc://{address}", port


def kill_worker(servers: Servers, port: int) -> None:
    for process in servers.processes:
        if process.poll() is None and f"localhost:{port}".encode() in process.log.read_bytes():  # type: ignore[attr-defined]
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_worker_restarted_on_its_address_lets_the_epoch_finish(
    servers: Servers, fragile_cluster: tuple[str, int]
) -> None:
    service, port = fragile_cluster
    served = distribute(numbered(2000, batch_size=4), service, "distributed_epoch", timeout=60)
    batches = []
    for batch in served:
        batches.append(batch)
        if len(batches) == 20:
            kill_worker(servers, port)
            servers.wait_listening(servers.worker(service.split("//")[1], port))
    seen = rows_seen(batches, 2000)
    assert seen.max() == 1  # nothing replayed
    assert seen.sum() >= 2000 - 200  # only what the dead worker held is lost


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_dead_worker_raises_a_bounded_error_naming_it(
    servers: Servers, fragile_cluster: tuple[str, int]
) -> None:
    service, port = fragile_cluster
    served = distribute(numbered(2000, batch_size=4), service, timeout=3.0, probe_timeout=2.0)
    batches = iter(served)
    for _ in range(10):
        next(batches)
    kill_worker(servers, port)  # mid-epoch
    started = time.monotonic()
    with pytest.raises(
        ServiceTimeoutError, match=rf"worker\(s\) localhost:{port} do not answer"
    ) as caught:
        for _ in batches:
            pass
    assert time.monotonic() - started < 30
    assert caught.value.dead_workers == [f"localhost:{port}"]
    # What model.fit sees: TensorFlow re-wraps the error, the message stays.
    with pytest.raises(tf.errors.UnknownError, match=rf"ServiceTimeoutError.*localhost:{port}"):
        list(served.get_tf_dataset())


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cli_servers_exit_cleanly_on_sigterm_and_ctrl_c(servers: Servers) -> None:
    address, dispatcher = servers.dispatcher()
    worker = servers.worker(address)
    servers.wait_listening(dispatcher, worker)
    assert rows_seen(list(distribute(numbered(), address)), 100).tolist() == [1] * 100
    worker.send_signal(signal.SIGTERM)
    dispatcher.send_signal(signal.SIGINT)
    for process, name in ((worker, "SIGTERM"), (dispatcher, "SIGINT")):
        assert process.wait(timeout=30) == 0
        log = process.log.read_text()  # type: ignore[attr-defined]
        assert f"{name} received, stopping" in log
        assert "feeders serve: stopped" in log


@pytest.mark.timeout(150)  # the last test: the module cluster stops in its teardown
def test_each_trainer_reads_its_shard_through_the_service(cluster: str) -> None:
    """Service workers decode; each trainer's job serves exactly its shard (masked rows weigh 0)."""
    x = np.arange(101, dtype=np.float32)[:, None]
    shards = [
        feeders.adapt(x, np.arange(101) % 3, batch_size=8, seed=1, shard=(i, 2)) for i in range(2)
    ]
    served = [list(distribute(f, cluster, "distributed_epoch")) for f in shards]
    assert len(served[0]) == len(served[1]) == 7  # ceil(101 / (2 * 8)) steps on each trainer
    trained = np.concatenate([b[0][:, 0][b[2] > 0] for s in served for b in s]).astype(int)
    assert sorted(trained.tolist()) == list(range(101))
    sequence = feeders.adapt(CountingSequence(), seed=1, shard=(0, 2))
    with pytest.raises(NotServableError, match="sharded Sequence"):
        distribute(sequence, cluster)
