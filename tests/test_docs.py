"""Reference pages are generated from the registries, and every registry entry is documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otelcost import _docgen

DOCS = Path(__file__).parent.parent / "docs"


@pytest.mark.parametrize("page", sorted(_docgen.PAGES))
def test_generated_page_is_current(page: str) -> None:
    # Rendered in a fresh interpreter, as `python -m otelcost._docgen` does: the CLI's help
    # text must not depend on which commands this test process happened to run before.
    expected = subprocess.run(
        [sys.executable, "-m", "otelcost._docgen", page], capture_output=True, text=True, check=True
    ).stdout
    actual = (DOCS / page).read_text(encoding="utf-8")
    assert actual == expected, f"docs/{page} is out of date: run `python -m otelcost._docgen`"


def test_architecture_page_names_every_package() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    packages = [
        p.name for p in (Path(__file__).parent.parent / "otelcost").iterdir() if (p / "__init__.py").exists()
    ]
    missing = [name for name in packages if f"{name}/" not in text and name not in {"cli", "_proto"}]
    assert not missing, f"docs/architecture.md does not mention {missing}"


def test_every_package_has_a_readme() -> None:
    root = Path(__file__).parent.parent / "otelcost"
    missing = [
        p.name
        for p in root.iterdir()
        if (p / "__init__.py").exists() and p.name != "_proto" and not (p / "README.md").exists()
    ]
    assert not missing, f"packages without README.md: {missing}"
