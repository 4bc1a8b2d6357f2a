"""Build the API reference (HTML, from the docstrings, with pdoc) and fail on a broken reference.

Why a checker of our own: pdoc renders a cross-reference it cannot resolve
(``:class:`~feeders.Feedr``` or ``:meth:`Feeder.bnd```) as plain code, silently.
Here every Sphinx-style role in the documented docstrings is resolved by
import (absolute, then relative to its module and class, as pdoc does); any that
does not resolve fails the build with its place. pdoc's own warnings are errors.

Run: ``python tools/build_docs.py [--out docs/api]`` (CI runs it; ``docs/api`` is
not committed). Open ``docs/api/index.html``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

MODULES = [
    "feeders",
    "feeders.dispatch",
    "feeders.feeder",
    "feeders.registry",
    "feeders.structure",
    "feeders.weights",
    "feeders.errors",
    "feeders.callbacks",
    "feeders.monitor",
    "feeders.distributed",
    "feeders.images",
    "feeders.workers",
    "feeders.sources",
    "feeders.datasets",
    "feeders.harness",
    "feeders.bench",
    "feeders.profiler",
    "feeders.quiet",
]
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`~?([\w.]+)(?:\(\))?`")


def broken_references(names: list[str]) -> list[str]:
    """``module.object: :role:`target``` for each role in a docstring that resolves to nothing."""
    broken = []
    for name in names:
        module = importlib.import_module(name)
        for owner, where, doc in _docstrings(module):
            for target in ROLE.findall(doc):
                if _resolve(target, module, owner) is None:
                    broken.append(f"{where}: `{target}` resolves to nothing")
    return sorted(set(broken))


def _docstrings(module: ModuleType) -> Iterator[tuple[Any, str, str]]:
    """(owner, where, docstring) for the module and its own classes, functions and methods."""
    yield None, module.__name__, module.__doc__ or ""
    for key, value in list(vars(module).items()):
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(value):
            yield value, f"{module.__name__}.{key}", value.__doc__ or ""
            for attr, member in list(vars(value).items()):
                function = member.fget if isinstance(member, property) else member
                function = getattr(function, "__func__", function)
                if callable(function) or isinstance(member, property):
                    where = f"{module.__name__}.{key}.{attr}"
                    yield value, where, getattr(function, "__doc__", None) or ""
        elif inspect.isfunction(value):
            yield None, f"{module.__name__}.{key}", value.__doc__ or ""


def _resolve(target: str, module: ModuleType, owner: Any) -> Any:
    parts = target.split(".")
    for split in range(len(parts), 0, -1):  # absolute: the longest importable module prefix
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        found = _walk(found, parts[split:])
        if found is not None:
            return found
    for start in (owner, module):  # relative to the class, then the module
        found = _walk(start, parts) if start is not None else None
        if found is not None:
            return found
    return None


def _walk(obj: Any, attrs: list[str]) -> Any:
    for attr in attrs:
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            annotations = getattr(obj, "__annotations__", {})  # a dataclass field, a TypedDict key
            if attr in annotations:
                obj = annotations[attr]
            elif inspect.isclass(obj) and _sets_in_init(obj, attr):
                obj = f"{obj.__qualname__}.{attr}"  # an instance attribute: documented by name
            else:
                return None
    return obj


def _sets_in_init(cls: type, attr: str) -> bool:
    try:
        source = inspect.getsource(cls.__init__)
    except (OSError, TypeError):
        return False
    return re.search(rf"\bself\.{attr}\b(?:: [^=]+)? = ", source) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/api"))
    args = parser.parse_args(argv)
    import pdoc
    import pdoc.render

    broken = broken_references(MODULES)
    if broken:
        print(
            f"{len(broken)} broken references in docstrings:", *broken, sep="\n  ", file=sys.stderr
        )
        return 1
    pdoc.render.configure(docformat="restructuredtext", show_source=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pdoc warns about what it cannot import or parse
        # A module listed here and also reached from its package's __all__: one page, fine.
        warnings.filterwarnings("ignore", message="The module specification .* already been added")
        pdoc.pdoc(*MODULES, output_directory=args.out)
    print(f"API reference: {args.out / 'index.html'} ({len(MODULES)} modules)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
