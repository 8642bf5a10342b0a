"""What was exported, per period: immutable, numbered versions of a FOCUS dataset.

::

    <statements_dir>/focus/<FOCUS version>/<granularity>/<period>/v<N>/
        focus.parquet    every row exported for the period so far (originals + corrections)
        manifest.json    period, version, row counts, totals, sha256 of focus.parquet

Version N+1 holds version N's rows unchanged plus the correction rows of N+1
(corrections.py), so what a FinOps tool loaded before stays true and the new rows say what
changed. An export that finds nothing changed writes no version. Versions are written like
the chargeback statements (a hidden temporary directory, fsynced, renamed into place; the
closing lock of ``reports/chargeback/store.py`` keeps two exports of one period apart), and
a version is never rewritten; reading checks the manifest's sha256.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from otelcost.errors import ReportError
from otelcost.fsync import publish_directory

__all__ = ["DATASET", "LedgerVersion", "latest_version", "ledger_dir", "write_version"]

DATASET: Final = "focus.parquet"
MANIFEST: Final = "manifest.json"
_VERSION_RE: Final = re.compile(r"^v([1-9][0-9]*)$")
_LABEL_RE: Final = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.-]*$")


@dataclass(frozen=True, slots=True)
class LedgerVersion:
    """One stored version, read back and verified."""

    version: int
    path: Path
    table: pa.Table
    manifest: dict[str, Any]


def ledger_dir(statements_dir: Path, focus_version: str, granularity: str, label: str) -> Path:
    """Where the versions of one period's export live."""
    for part in (focus_version, granularity, label):
        if not _LABEL_RE.match(part):
            raise ReportError(f"{part!r} cannot name a FOCUS export ledger directory")
    return Path(statements_dir) / "focus" / focus_version / granularity / label


def _versions(directory: Path) -> list[int]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ReportError(f"cannot list {directory}: {exc.strerror or exc}") from exc
    return sorted(int(match[1]) for name in names if (match := _VERSION_RE.match(name)))


def latest_version(directory: Path) -> LedgerVersion | None:
    """The newest version in ``directory``, its dataset checked against its manifest."""
    versions = _versions(directory)
    if not versions:
        return None
    path = directory / f"v{versions[-1]}"
    try:
        manifest = json.loads((path / MANIFEST).read_bytes())
        data = (path / DATASET).read_bytes()
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read the FOCUS export ledger {path}: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256", {}).get(DATASET):
        raise ReportError(f"{path / DATASET} does not match the sha256 in its manifest")
    return LedgerVersion(versions[-1], path, pq.read_table(io.BytesIO(data)), manifest)


def write_version(directory: Path, version: int, dataset: bytes, manifest: dict[str, Any]) -> Path:
    """Store ``dataset`` as version ``version`` atomically; the caller holds the closing lock."""
    final = directory / f"v{version}"
    manifest = dict(manifest, sha256={DATASET: hashlib.sha256(dataset).hexdigest()})
    contents = {
        DATASET: dataset,
        MANIFEST: (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"),
    }
    try:
        return publish_directory(final, contents)
    except FileExistsError as exc:
        raise ReportError(f"{final} already exists; an exported version is never rewritten") from exc
    except OSError as exc:
        raise ReportError(f"cannot write the FOCUS export ledger {final}: {exc.strerror or exc}") from exc
