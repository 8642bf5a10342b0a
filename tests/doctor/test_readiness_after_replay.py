"""``/readyz`` (the Kubernetes readiness probe of deploy/kubernetes/, the doctor's readiness
check) turns 200 only after the spool replay, while ``/healthz`` (liveness) answers throughout.

tests/e2e/test_startup.py holds the start at lake recovery, before the replay; this test lets a
real replay run: a pipeline takes requests into its spool and stops the way a crash would
(nothing flushed, nothing checkpointed: ``abandon`` of tests/e2e/test_spool_replay.py), then a
real server starts on the same data directory while a thread polls the probes and ``/metrics``.
If readiness came before the replay, a poll would see 200 with records still to replay.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from otelcost.lake.query import run_query
from otelcost.pipeline import Pipeline
from otelcost.server import BackgroundServer
from tests.e2e.test_spool_replay import abandon, export, make_request, pipeline_config
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

RECORDS = 60
SPANS_PER_RECORD = 200


def _gauge(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None


def test_readyz_turns_ready_only_after_the_spool_replay(tmp_path: Path) -> None:
    config = pipeline_config(tmp_path / "data")
    crashed = Pipeline(config)
    crashed.start()
    requests_to_spool = [make_request(SPANS_PER_RECORD) for _ in range(RECORDS)]
    for request in requests_to_spool:
        export(crashed, request)
    abandon(crashed)

    background = BackgroundServer(config)
    starter = threading.Thread(target=background.start)
    starter.start()
    # (readyz status, healthz status, spool depth, replayed records) as seen during the start.
    seen: list[tuple[int, int, float | None, float | None]] = []
    try:
        api_port = wait_until(lambda: background.server.api_port, timeout=20, poll=0.005)
        api = f"http://127.0.0.1:{api_port}"
        while True:
            readyz = requests.get(f"{api}/readyz", timeout=10).status_code
            healthz = requests.get(f"{api}/healthz", timeout=10).status_code
            metrics = requests.get(f"{api}/metrics", timeout=30).text
            depth = _gauge(metrics, "otelcost_spool_depth_records")
            replayed = _gauge(metrics, "otelcost_spool_replayed_records_total")
            seen.append((readyz, healthz, depth, replayed))
            if readyz == 200:
                break
        starter.join(timeout=60)
        assert all(healthz == 200 for _, healthz, _, _ in seen), seen
        assert seen[0][0] == 503, "the server was ready before the first poll"
        # The polls saw the start with every record still to replay, and not ready then.
        assert any(readyz == 503 and depth == RECORDS for readyz, _, depth, _ in seen), seen
        # Ready means replayed: every record handed to the lake and checkpointed.
        assert seen[-1][2:] == (0, RECORDS), seen[-1]
        assert [s for s in seen if s[0] == 200 and s[3] != RECORDS] == []
        table = run_query(config.lake_dir, "SELECT count(*) AS n FROM llm_calls")
        assert table.column("n")[0].as_py() == RECORDS * SPANS_PER_RECORD
    finally:
        starter.join(timeout=60)
        background.stop()
