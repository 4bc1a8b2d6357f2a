"""Regenerate feeders/datasets/data/mnist_sample.npz from the full MNIST file.

The sample is the first 8,000 training and first 2,000 test images with their
labels, in canonical order. The archive is written with fixed zip timestamps so
that rerunning the script on the same input gives the same bytes (no git diff).

Usage: python tools/make_mnist_sample.py [PATH]
PATH is mnist.npz or a folder holding it; default $FEEDERS_DATA_DIR, else
../shared/data/mnist.npz next to the repository. Plain NumPy, so it runs without
feeders installed.
"""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "feeders" / "datasets" / "data" / "mnist_sample.npz"
SIZES = {"x_train": 8_000, "y_train": 8_000, "x_test": 2_000, "y_test": 2_000}


def main(argv: list[str]) -> int:
    default = os.environ.get("FEEDERS_DATA_DIR") or ROOT.parent / "shared" / "data"
    source = Path(argv[1] if len(argv) > 1 else default)
    if source.is_dir():
        source = source / "mnist.npz"
    with np.load(source, allow_pickle=False) as full:
        arrays = {key: full[key][:n] for key, n in SIZES.items()}
    for key, array in arrays.items():
        want = (SIZES[key], 28, 28) if key.startswith("x") else (SIZES[key],)
        if array.shape != want or array.dtype != np.uint8:
            sys.exit(
                f"{source}: {key} must start with uint8 {want}, got {array.dtype} {array.shape}"
            )
    with zipfile.ZipFile(OUT, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array))
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size:,} bytes")
    print(f"sha256 {hashlib.sha256(OUT.read_bytes()).hexdigest()}")
    print(f"from {source}, sha256 {hashlib.sha256(source.read_bytes()).hexdigest()}")
    print(f"first train labels {arrays['y_train'][:10].tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
