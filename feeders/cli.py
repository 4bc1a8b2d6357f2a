"""The ``feeders`` command: ``demo`` (the main job) and the tools later issues add.

Why argparse with one function per sub-command: each command stays a thin,
testable shell around library calls.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from feeders.bench import add_parser as add_bench_parser
from feeders.quiet import silence

QUIET_COMMANDS = ("demo", "validate", "bench")
"""Commands whose TensorFlow start-up lines are filtered (``serve`` keeps its servers' logs)."""


def demo(args: argparse.Namespace) -> int:
    """Train the guide's MNIST model through the array feeder and print the result."""
    from rich.console import Console
    from rich.table import Table

    from feeders.harness import run_mnist
    from feeders.harness.progress import EpochProgress, progress_bar

    console = Console()
    with progress_bar(console) as progress:
        shown = [] if args.verbose else [EpochProgress(progress, "MNIST", log_epochs=True)]
        result = run_mnist(
            args.data,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            verbose=2 if args.verbose else 0,
            callbacks=shown,
        )
    table = Table(title=f"MNIST reference model through feeders.adapt (data: {result.data})")
    table.add_column("epoch", justify="right")
    for metric in result.history:
        table.add_column(metric.replace("sparse_categorical_accuracy", "accuracy"), justify="right")
    for epoch in range(len(next(iter(result.history.values())))):
        table.add_row(
            str(epoch + 1), *(f"{values[epoch]:.4f}" for values in result.history.values())
        )
    console.print(table)
    console.print(
        f"test: loss {result.test_loss:.4f}, accuracy {result.test_accuracy:.4f} "
        f"({result.num_train:,} train / {result.num_validation:,} validation / "
        f"{result.num_test:,} test images)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feeders", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("demo", help="train the guide's MNIST model through feeders (offline)")
    p.add_argument(
        "--data",
        default=None,
        help="mnist.npz or a folder with it (default: $FEEDERS_DATA_DIR, then the bundled sample)",
    )
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--verbose",
        action="store_true",
        help="TensorFlow's start-up logs and Keras' own per-epoch lines instead of the bar",
    )
    p.set_defaults(run=demo)
    from feeders.harness.validate import add_parser as add_validate_parser

    add_validate_parser(commands)
    add_bench_parser(commands)
    from feeders.serve import add_parser as add_serve_parser

    add_serve_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``feeders`` command. From the command line (``argv`` None), quiet unless ``--verbose``.

    Quiet (:func:`feeders.quiet.silence`) is left out when ``argv`` is given, so
    a caller's (or pytest's) stderr is never redirected behind its back.
    """
    args = build_parser().parse_args(argv)
    if argv is None and args.command in QUIET_COMMANDS and not args.verbose:
        silence()
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
