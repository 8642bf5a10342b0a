"""The instrumentation tests again with the older releases users still run.

The test environment holds the current releases (pyproject's ``test`` extra). The older pinned
ones are installed, without their dependencies (they share them with the current ones), into a
directory of their own and put first on ``PYTHONPATH`` of a subprocess that runs the real-library
tests of ``tests/normalize/test_instrumentations.py``: the same assertions, the older client.
The wheels come from the package index, as every other test dependency does, and are kept
between runs under ``~/.cache/otelcost-tests``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
OLDER = {
    # package -> the pinned older release (the last openai 2.x; users of openai 2 are many)
    "openai": "2.54.0",
}


def _install(package: str, version: str) -> Path:
    target = Path.home() / ".cache" / "otelcost-tests" / f"{package}-{version}"
    if not (target / ".complete").exists():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade",
             "--target", str(target), f"{package}=={version}"],
            check=True,
            timeout=300,
        )  # fmt: skip
        (target / ".complete").touch()
    return target


@pytest.mark.parametrize(("package", "version"), sorted(OLDER.items()))
def test_instrumentations_with_an_older_release(package: str, version: str) -> None:
    target = _install(package, version)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    probe = subprocess.run(
        [sys.executable, "-c", f"import {package}; print({package}.__version__)"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert probe.stdout.strip() == version
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", package,
         "tests/normalize/test_instrumentations.py"],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
