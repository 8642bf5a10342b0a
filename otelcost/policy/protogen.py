"""Regenerate the Python protobuf module of the policy endpoint from ``proto/``.

The generated code is committed (``otelcost/_proto/``, excluded from ruff and mypy), so running
otelcost needs only the ``protobuf`` runtime. After editing
``proto/otelcost/policy/v1/decisions.proto``, regenerate with::

    python -m otelcost.policy.protogen

This needs ``grpcio-tools`` (its bundled ``protoc``; in the ``test`` extra). It writes
``decisions_pb2.py`` and its ``.pyi`` type stub under
``otelcost/_proto/otelcost/policy/v1/``, where the generated import path
(``otelcost._proto.otelcost.policy.v1``) mirrors the proto package. ``tests/policy`` checks that
the committed files are what this command produces.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from typing import Final

__all__ = ["PROTO_FILES", "generate"]

REPO: Final = Path(__file__).resolve().parent.parent.parent
PROTO_ROOT: Final = REPO / "proto"
OUTPUT_ROOT: Final = REPO / "otelcost" / "_proto"
PROTO_FILES: Final = ("otelcost/policy/v1/decisions.proto",)


def generate(output_root: Path = OUTPUT_ROOT) -> list[Path]:
    """Run protoc on :data:`PROTO_FILES` into ``output_root``; return the files written."""
    try:
        protoc = importlib.import_module("grpc_tools.protoc")
    except ImportError as exc:
        raise RuntimeError("regenerating needs grpcio-tools: pip install -e '.[test]'") from exc
    output_root.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={output_root}",
        f"--pyi_out={output_root}",
        *PROTO_FILES,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    written: list[Path] = []
    for proto in PROTO_FILES:
        stem = output_root / proto.removesuffix(".proto")
        written += [stem.with_name(stem.name + "_pb2.py"), stem.with_name(stem.name + "_pb2.pyi")]
        # Packages, so that setuptools ships the generated modules.
        package = stem.parent
        while package != output_root.parent:
            (package / "__init__.py").touch()
            package = package.parent
    return written


def _check() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        fresh = generate(Path(scratch))
        stale = []
        for path in fresh:
            committed = OUTPUT_ROOT / path.relative_to(scratch)
            if not committed.exists() or committed.read_bytes() != path.read_bytes():
                stale.append(path.name)
    print("out of date: " + ", ".join(stale) if stale else "up to date")
    return 1 if stale else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        raise SystemExit(_check())
    for path in generate():
        print(path.relative_to(REPO))
