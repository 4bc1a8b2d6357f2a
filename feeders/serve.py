"""tf.data service servers (`feeders serve dispatcher|worker`) and the probes clients use.

Why its own module: the servers change for operational reasons (ports, fault tolerance,
signals, logging), `feeders.distributed` for data reasons; and the command line must not
import TensorFlow before it is asked to serve. The servers are TensorFlow's own
(`tf.data.experimental.service.DispatchServer`/`WorkerServer`); this module only gives them
the right config, says where they listen, and stops them cleanly on SIGTERM or Ctrl-C.

The probes speak gRPC to the dispatcher (its `GetWorkers` method) and open a channel to each
worker, each bounded by a timeout, so a client can name the address that does not answer
instead of waiting on it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("feeders.serve")

DEFAULT_PROBE_TIMEOUT = 5.0  # seconds; a dispatcher or worker that takes longer is "not answering"
_GET_WORKERS = "/tensorflow.data.DispatcherService/GetWorkers"


# -- servers -------------------------------------------------------------------------------
def start_dispatcher(port: int, work_dir: str | None = None) -> Any:
    """A started `DispatchServer` on `port` (0: any free port), fault tolerant with `work_dir`.

    With a work dir the dispatcher journals its state (registered datasets, jobs, split
    positions) there before answering, so a restarted dispatcher resumes where it stopped.
    """
    import tensorflow as tf

    config = tf.data.experimental.service.DispatcherConfig(
        port=_check_port(port, "port"),
        work_dir=work_dir,
        fault_tolerant_mode=work_dir is not None,
    )
    return tf.data.experimental.service.DispatchServer(config)


def start_worker(dispatcher: str, port: int, worker_address: str | None = None) -> Any:
    """A started `WorkerServer` on `port` that registers with `dispatcher` (`host:port`).

    `worker_address` is what the dispatcher tells clients to connect to; the default is this
    host's name and the bound port, which clients on other hosts can reach (TensorFlow's own
    default, `localhost`, only works on one machine).
    """
    import tensorflow as tf

    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=strip_protocol(dispatcher),
        worker_address=worker_address or f"{socket.gethostname()}:%port%",
        port=_check_port(port, "port"),
    )
    return tf.data.experimental.service.WorkerServer(config)


def serve_until_signalled(start: Callable[[], Any], describe: Callable[[Any], str]) -> int:
    """Start a server, log where it listens, block until SIGTERM or SIGINT, stop it; 0.

    The handlers go in before the (slow) start, so a signal during start-up still ends in a
    clean stop. Why a polled event instead of `server.join()`: `join` blocks inside
    TensorFlow, where Python cannot run a signal handler, so Ctrl-C would never stop it.
    """
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = start()
        logger.info("%s; stop with Ctrl-C or SIGTERM", describe(server))
        while not stop.wait(0.5):
            pass
        logger.info("%s received, stopping", received[0])
        server.stop()
        logger.info("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


# -- probes ----------------------------------------------------------------------------------
def strip_protocol(service: str) -> str:
    """`grpc://host:port` or `host:port` → `host:port`."""
    return service.split("://", 1)[-1]


def list_workers(service: str, timeout: float = DEFAULT_PROBE_TIMEOUT) -> list[str]:
    """The worker addresses the dispatcher at `service` knows, dead ones included.

    Raises:
        ConnectionError: the dispatcher did not answer within `timeout` seconds.
    """
    import grpc

    address = strip_protocol(service)
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            _GET_WORKERS, request_serializer=_identity, response_deserializer=_identity
        )
        try:
            reply = call(b"", timeout=timeout)
        except grpc.RpcError as err:
            raise ConnectionError(
                f"The tf.data dispatcher at {address!r} did not answer within {timeout:g}s "
                f"({err.code().name}). Start it (feeders serve dispatcher --port "
                f"{address.rsplit(':', 1)[-1]}), check the host and port, or raise the timeout."
            ) from err
    return _worker_addresses(reply)


def answers(address: str, timeout: float = DEFAULT_PROBE_TIMEOUT) -> bool:
    """Whether a gRPC server at `address` accepts a connection within `timeout` seconds."""
    import grpc

    with grpc.insecure_channel(strip_protocol(address)) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            return False
    return True


def _identity(data: bytes) -> bytes:
    return data


def _worker_addresses(reply: bytes) -> list[str]:
    """Decode `GetWorkersResponse {repeated WorkerInfo workers = 1}`, `WorkerInfo {string
    address = 1}` from protobuf wire format (TensorFlow ships no Python module for it)."""
    return [
        inner.decode()
        for number, outer in _fields(reply)
        if number == 1
        for field, inner in _fields(outer)
        if field == 1
    ]


def _fields(data: bytes) -> list[tuple[int, bytes]]:
    """The length-delimited fields of a protobuf message; other wire types are skipped."""
    out, at = [], 0
    while at < len(data):
        key, at = _varint(data, at)
        wire = key & 7
        if wire == 2:
            size, at = _varint(data, at)
            out.append((key >> 3, data[at : at + size]))
            at += size
        elif wire == 0:
            _, at = _varint(data, at)
        else:
            at += {1: 8, 5: 4}[wire]
    return out


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7


def _check_port(port: Any, arg: str) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(
            f"`{arg}` must be an int in [0, 65535] (0: any free port), but got {arg}={port!r}."
        )
    return port


# -- command line ----------------------------------------------------------------------------
def add_parser(commands: Any) -> None:
    """Add `serve dispatcher|worker` to the `feeders` command's sub-commands."""
    serve = commands.add_parser("serve", help="run a tf.data service dispatcher or worker")
    kinds = serve.add_subparsers(dest="server", required=True)
    d = kinds.add_parser("dispatcher", help="the server that hands out jobs and splits")
    d.add_argument("--port", type=int, required=True, help="port to listen on (0: any)")
    d.add_argument(
        "--work-dir",
        default=None,
        help="journal the dispatcher's state here (fault-tolerant mode: a restart resumes)",
    )
    d.set_defaults(run=_run(_dispatcher))
    w = kinds.add_parser("worker", help="a server that runs the dataset graph and sends batches")
    w.add_argument("--dispatcher", required=True, help="the dispatcher's host:port")
    w.add_argument("--port", type=int, required=True, help="port to listen on (0: any)")
    w.add_argument(
        "--worker-address",
        default=None,
        help="host:port clients connect to (default: this host's name and --port)",
    )
    w.set_defaults(run=_run(_worker))


def _dispatcher(args: argparse.Namespace) -> int:
    mode = f"fault tolerant, work dir {args.work_dir}" if args.work_dir else "state in memory"
    return serve_until_signalled(
        lambda: start_dispatcher(args.port, args.work_dir),
        lambda server: f"tf.data dispatcher listening on {server.target} ({mode})",
    )


def _worker(args: argparse.Namespace) -> int:
    def describe(server: Any) -> str:
        port = server._address.rsplit(":", 1)[-1]  # the bound port, also for --port 0
        address = args.worker_address or f"{socket.gethostname()}:{port}"
        return (
            f"tf.data worker listening on port {port} as {address.replace('%port%', port)}, "
            f"dispatcher {args.dispatcher}"
        )

    return serve_until_signalled(
        lambda: start_worker(args.dispatcher, args.port, args.worker_address), describe
    )


def _run(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        logging.basicConfig(format="%(asctime)s feeders serve: %(message)s", level=logging.INFO)
        return command(args)

    return run
