"""The exception tree in otelcost/errors.py's docstring names every error otelcost raises."""

from __future__ import annotations

import importlib
import pkgutil

import otelcost
from otelcost import errors
from otelcost.errors import OtelcostError


def _all_subclasses(base: type[BaseException]) -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for sub in base.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


def test_the_docstring_tree_names_every_otelcost_error() -> None:
    for module in pkgutil.walk_packages(otelcost.__path__, "otelcost."):
        if "._proto" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    ours = {cls for cls in _all_subclasses(OtelcostError) if cls.__module__.startswith("otelcost.")}
    assert len(ours) >= 20  # the walk above imported the whole package
    tree = errors.__doc__ or ""
    missing = sorted(cls.__name__ for cls in ours if f"── {cls.__name__} " not in tree)
    assert missing == [], f"add these to the tree in otelcost/errors.py: {missing}"
