"""The audit log is a table of the lake (otelcost/lake/audit.py): every admin change through the
real API lands in it under the key's name, is queryable with `otelcost sql` and plain DuckDB,
survives restarts, takes in an older audit.jsonl once, and no lake job rewrites it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest
from click.testing import CliRunner

from otelcost.budgets.store import import_legacy_audit
from otelcost.cli import main
from otelcost.config import Config, LakeConfig
from otelcost.jobs.compact import compact_lake
from otelcost.jobs.retention import apply_retention
from otelcost.lake.audit import AUDIT_TABLE_NAME, AuditEntry, append_entries, read_entries
from otelcost.lake.layout import table_dir
from otelcost.lake.writer import LakeWriter
from otelcost.server import BackgroundServer
from tests.e2e.conftest import loopback_config
from tests.lake.rows import make_calls

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": "Bearer root-token"}
ALICE = {"Authorization": "Bearer alice-token"}
BUDGET = {"name": "ml-monthly", "scope": {"team": "ml"}, "window": "month", "limit": "100"}


def _config(data_dir: Path) -> Config:
    return loopback_config(
        data_dir,
        api={"listen": "127.0.0.1:0", "admin_token": "root-token", "admin_tokens": {"alice": "alice-token"}},
    )


def _audit_files(lake_dir: Path) -> dict[str, bytes]:
    root = table_dir(lake_dir, AUDIT_TABLE_NAME)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_admin_changes_are_rows_of_the_audit_table_under_the_tokens_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # An older otelcost's log, to be taken in at the first start.
    legacy = data_dir / "budgets" / "audit.jsonl"
    legacy.parent.mkdir(parents=True)
    old = {"at": "2026-10-01T08:00:00.000Z", "actor": "ops", "action": "budget.create", "target": "old"}
    legacy.write_text(json.dumps({**old, "before": None, "after": {"limit": "5"}}) + "\n", encoding="utf-8")

    config = _config(data_dir)
    with BackgroundServer(config) as server:
        api = f"http://127.0.0.1:{server.server.api_port}"
        with httpx.Client(base_url=api, timeout=10) as client:
            assert client.post("/v1/admin/budgets", json=BUDGET, headers=ALICE).status_code == 201
            changed = {**BUDGET, "limit": "250"}
            response = client.put(
                "/v1/admin/budgets/ml-monthly", json=changed, headers={**ADMIN, "X-Otelcost-Note": "launch"}
            )
            assert response.status_code == 200, response.text
            assert client.delete("/v1/admin/budgets/ml-monthly", headers=ALICE).status_code == 204
            served = client.get("/v1/admin/audit?limit=3", headers=ADMIN).json()["entries"]

    assert not legacy.exists() and legacy.with_name("audit.jsonl.imported").exists()
    expected = [
        ("alice", "budget.create", "ml-monthly"),
        ("admin", "budget.update", "ml-monthly"),
        ("alice", "budget.delete", "ml-monthly"),
    ]
    assert [(e["actor"], e["action"], e["target"]) for e in served] == expected

    # The same entries through `otelcost sql`, with the older one first.
    result = CliRunner().invoke(
        main,
        [
            "sql",
            "--data-dir",
            str(data_dir),
            "-f",
            "json",
            "SELECT actor, action, target, note, before::JSON ->> 'limit' AS was, "
            "after::JSON ->> 'limit' AS now FROM audit_log ORDER BY changed_at",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["actor"], r["action"], r["target"]) for r in rows] == [
        ("ops", "budget.create", "old"),
        *expected,
    ]
    assert [(r["was"], r["now"], r["note"]) for r in rows[1:]] == [
        (None, "100", None),
        ("100", "250", "launch"),
        ("250", None, None),
    ]

    # Plain DuckDB over the Parquet files needs nothing of ours.
    glob = str(table_dir(config.lake_dir, AUDIT_TABLE_NAME) / "*" / "*.parquet")
    with duckdb.connect() as connection:
        count = connection.execute(
            f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)"
        ).fetchone()
    assert count == (4,)

    # A restart neither imports the old log again nor loses an entry.
    with BackgroundServer(config) as server:
        api = f"http://127.0.0.1:{server.server.api_port}"
        entries = httpx.get(f"{api}/v1/admin/audit", headers=ADMIN, timeout=10).json()["entries"]
    assert [e["action"] for e in entries] == ["budget.create", *[action for _, action, _ in expected]]


def test_a_crash_between_import_and_rename_imports_nothing_twice(tmp_path: Path) -> None:
    lake_dir, legacy = tmp_path / "lake", tmp_path / "state" / "audit.jsonl"
    legacy.parent.mkdir()
    lines = [
        {"at": f"2026-10-0{day}T08:00:00.000Z", "actor": "ops", "action": "override.put", "target": f"o{day}"}
        for day in (1, 2)
    ]
    legacy.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    kept = legacy.read_bytes()

    assert import_legacy_audit(lake_dir, legacy) == 2
    legacy.write_bytes(kept)  # as if the rename had not happened
    assert import_legacy_audit(lake_dir, legacy) == 2
    assert [e["target"] for e in read_entries(lake_dir)] == ["o1", "o2"]
    assert len(_audit_files(lake_dir)) == 2  # one per day


def test_no_lake_job_rewrites_or_drops_the_audit_log(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    long_ago = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    append_entries(lake_dir, [AuditEntry("ops", "budget.create", "b", None, {"limit": "1"}, at=long_ago)])
    append_entries(lake_dir, [AuditEntry("ops", "budget.delete", "b", {"limit": "1"}, None, at=long_ago)])
    writer = LakeWriter(lake_dir=lake_dir, config=LakeConfig(flush_interval=timedelta(hours=1)))
    writer.start()
    try:
        for seed in range(3):  # three small files of one day: compaction merges them
            writer.consume(make_calls(10, day=long_ago.date(), seed=seed))
            writer.flush()
    finally:
        writer.shutdown()
    before = _audit_files(lake_dir)
    assert len(before) == 2

    compacted = compact_lake(lake_dir, min_files=2)
    assert any(result.files_before > result.files_after for result in compacted)
    plan = apply_retention(lake_dir, timedelta(days=30), datetime.now(UTC))
    assert plan.drops  # the day of calls went
    assert _audit_files(lake_dir) == before
    assert [e["action"] for e in read_entries(lake_dir)] == ["budget.create", "budget.delete"]
