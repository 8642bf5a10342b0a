"""The live anomaly detectors of ``otelcost serve``: runaway loops and spend spikes, alerted once.

The end-to-end test runs the real server on loopback with ``budgeting.alerts.webhook_url``
pointing at a real HTTP server that records every POST, and sends it spans through the
OpenTelemetry SDK (``tests/reports/traffic.py``): steady traffic of the last twenty minutes
raises nothing, a trace calling a model 45 times in twenty seconds is one runaway alert, twelve
expensive calls of one team in the current minute are one spike alert (naming every scope those
calls share), and what follows of the same incidents, before and after a restart, is not sent
again. Expected amounts are computed by hand from the list prices (``traffic.cost_of``).

The other tests hand batches in RECORD_SCHEMA straight to :class:`StreamingDetector`, with a
clock the test sets, for what the end-to-end test cannot wait for: old traffic (the replay at
start) never alerts, a workflow's learned norm raises its limit, memory stays bounded, and a
retried span counts once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from otelcost.config import Config
from otelcost.lake.query import run_query
from otelcost.reports.anomalies.streaming import LiveAnomalies, StreamingDetector
from otelcost.reports.config import AnomaliesConfig
from otelcost.schema import RECORD_SCHEMA
from otelcost.server import BackgroundServer
from tests.budgets.harness import WebhookReceiver
from tests.e2e.conftest import loopback_config
from tests.reports.traffic import Call, cost_of, send
from tests.waiting import wait_until

# -- end to end -----------------------------------------------------------------------------------

ANOMALIES = {
    "spike_window": "1m",
    "spike_baseline": "20m",
    "spike_min_baseline": "10m",
    "spike_min_usd": "1",
    "runaway_min_calls_per_minute": 30,
}
STEADY = (
    # service, team, feature, model, calls per minute, input, output
    ("support-bot", "customer-care", "ticket-triage", "gpt-4o-mini", 4, 1_200, 250),
    ("checkout", "payments", "fraud-explain", "gpt-4o", 3, 2_000, 400),
    ("search", "discovery", "query-rewrite", "claude-haiku-4-5", 3, 600, 80),
)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def steady_traffic(window_start: datetime, minutes: int) -> list[Call]:
    """Every team's calls in each of the ``minutes`` minutes before ``window_start``: the same
    count each minute, tokens varying a little, each call its own trace, sessions of a few users."""
    calls = []
    for minute in range(minutes, 0, -1):
        start = window_start - timedelta(minutes=minute)
        for service, team, feature, model, per_minute, input_tokens, output_tokens in STEADY:
            for index in range(per_minute):
                user = f"user-{(minute + index) % 6}"
                calls.append(
                    Call(
                        ts=start + timedelta(seconds=5 + index * 50 // per_minute),
                        service=service,
                        team=team,
                        feature=feature,
                        model=model,
                        input_tokens=input_tokens + 10 * ((minute * 7 + index) % 5),
                        output_tokens=output_tokens,
                        tenant=f"tenant-{(minute + index) % 4}",
                        user=user,
                        session=f"s-{team}-{user}",
                    )
                )
    return calls


def runaway_trace(end: datetime, calls: int, *, trace: str, session: str) -> list[Call]:
    """An agent calling its model again and again: ``calls`` calls in the 20 s before ``end``."""
    return [
        Call(
            ts=end - timedelta(seconds=20) + timedelta(milliseconds=index * 20_000 // calls),
            service="support-bot",
            team="customer-care",
            feature="ticket-triage",
            model="gpt-4o-mini",
            input_tokens=3_000,
            output_tokens=150,
            tenant="tenant-1",
            user="user-9",
            session=session,
            workflow="triage-agent",
            trace=trace,
        )
        for index in range(calls)
    ]


def spike_calls(window_start: datetime, now: datetime, count: int) -> list[Call]:
    """``count`` expensive calls of payments between ``window_start`` and ``now``."""
    step = (now - window_start) / (count + 1)
    return [
        Call(
            ts=window_start + step * (index + 1),
            service="checkout",
            team="payments",
            feature="fraud-explain",
            model="gpt-4o",
            input_tokens=60_000,
            output_tokens=400,
            tenant="tenant-7",
            user="user-1",
        )
        for index in range(count)
    ]


def query(config: Config, sql: str) -> list[dict[str, Any]]:
    return list(run_query(config.lake_dir, sql).to_pylist())


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def wait_for_calls(anomalies: LiveAnomalies, total: int) -> None:
    wait_until(
        lambda: anomalies.counters().calls_seen >= total,
        timeout=15,
        what=f"{total} calls seen by the live detectors",
    )


@pytest.mark.slow
def test_serve_alerts_a_runaway_loop_and_a_spike_once_each(tmp_path: Path, webhook: WebhookReceiver) -> None:
    now = datetime.now(UTC)
    window_start = minute_of(now)
    config = loopback_config(
        tmp_path / "data",
        budgeting={"alerts": {"webhook_url": webhook.url, "initial_backoff": "100ms"}},
        reports={"anomalies": ANOMALIES},
    )
    steady = steady_traffic(window_start, minutes=20)
    loop = runaway_trace(now, 45, trace="loop", session="s-loop")
    spike = spike_calls(window_start, now, 12)
    sent = 0
    with BackgroundServer(config) as running:
        anomalies = running.server.anomalies
        assert anomalies is not None
        grpc = running.server.grpc
        assert grpc is not None

        send(steady, grpc.port)
        sent += len(steady)
        wait_for_calls(anomalies, sent)
        assert anomalies.counters().raised == {"runaway_loop": 0, "spike": 0}

        send(loop, grpc.port)
        sent += len(loop)
        assert webhook.wait_for(1, timeout=10), "no runaway alert"
        runaway = webhook.requests[0]
        assert runaway["kind"] == "runaway_loop"
        assert runaway["dimension"] == "trace_id"
        assert runaway["scope"]["session_id"] == "s-loop"
        assert runaway["scope"]["workflow"] == "triage-agent"
        assert runaway["scope"]["service"] == "support-bot"
        assert set(runaway["scopes"]) == {"trace_id", "session_id"}  # one alert for both
        assert 30 <= runaway["calls"] <= 45
        assert Decimal(runaway["size_usd"]) == runaway["calls"] * cost_of(loop[0])
        assert runaway["limit_calls_per_minute"] == 30  # no norm learned yet: the floor
        assert "runaway loop" in runaway["text"] and runaway["scope"]["trace_id"] in runaway["text"]
        headers = {name.lower(): value for name, value in webhook.headers[0].items()}
        assert headers["x-otelcost-alert-id"] == runaway["alert_id"]

        send(spike, grpc.port)
        sent += len(spike)
        assert webhook.wait_for(2, timeout=10), "no spike alert"
        alert = webhook.requests[1]
        assert alert["kind"] == "spike"
        assert alert["start"] == window_start.isoformat().replace("+00:00", "Z")
        assert alert["scope"]["team"] == "payments"
        assert alert["scope"]["tenant_id"] == "tenant-7"
        # Every dimension of those calls spiked together: one alert names them all.
        assert set(alert["scopes"]) == {"team", "feature", "model", "tenant_id", "service"}
        unit = cost_of(spike[0])
        spent = Decimal(alert["size_usd"])
        assert spent % unit == 0 and 7 <= spent / unit <= 12  # 1 USD is 7 of these calls
        # team leads (the first of reports.anomalies.dimensions); its baseline is the median of
        # payments' twenty steady minutes.
        assert alert["dimension"] == "team"
        per_minute = sorted(
            sum((cost_of(c) for c in steady if c.team == "payments" and minute_of(c.ts) == start), Decimal(0))
            for start in {minute_of(c.ts) for c in steady}
        )
        assert len(per_minute) == 20
        assert Decimal(alert["baseline_usd"]) == (per_minute[9] + per_minute[10]) / 2
        assert alert["ratio"] == pytest.approx(float(spent / ((per_minute[9] + per_minute[10]) / 2)))
        wait_for_calls(anomalies, sent)
        assert anomalies.counters().raised == {"runaway_loop": 1, "spike": 1}

        # The evidence SQL reproduces the alerts from the lake.
        def lake_has(n: int) -> bool:
            return bool(query(config, "SELECT count(*) AS n FROM llm_calls")[0]["n"] >= n)

        wait_until(lambda: lake_has(sent), timeout=15, what="every call in the lake")
        (evidence,) = query(config, runaway["evidence"])
        assert evidence["calls"] >= runaway["calls"]
        assert evidence["cost_usd"] == evidence["calls"] * cost_of(loop[0])
        windows = query(config, alert["evidence"])
        assert windows[-1]["cost_usd"] >= spent
        assert len(windows) >= 10

        # More of the same incidents: a second loop in the same session, more spend of the team.
        send(runaway_trace(datetime.now(UTC), 40, trace="loop-2", session="s-loop"), grpc.port)
        send(spike_calls(window_start, datetime.now(UTC), 8), grpc.port)
        sent += 48
        wait_for_calls(anomalies, sent)
        counters = anomalies.counters()
        assert counters.raised == {"runaway_loop": 1, "spike": 1}
        assert counters.suppressed["runaway_loop"] >= 1
        time.sleep(0.5)  # letting delivery time pass is the point: nothing more arrives
        assert len(webhook.requests) == 2

    # After a restart the journal remembers both alerts and the spike baselines come back from
    # the lake: still nothing new for the same incidents.
    with BackgroundServer(config) as running:
        anomalies = running.server.anomalies
        assert anomalies is not None
        grpc = running.server.grpc
        assert grpc is not None
        assert anomalies.counters().tracked["scope"] >= len(STEADY)
        send(spike_calls(window_start, datetime.now(UTC), 8), grpc.port)
        wait_for_calls(anomalies, 8)
        assert anomalies.counters().raised == {"runaway_loop": 0, "spike": 0}
        time.sleep(0.5)  # as above: nothing more arrives
    assert len(webhook.requests) == 2
    assert len({request["alert_id"] for request in webhook.requests}) == 2


# -- the detector alone ---------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def batch(*rows: dict[str, Any]) -> pa.Table:
    """RECORD_SCHEMA rows: what is given, plus the non-null columns a priced call always has."""
    full = []
    for number, row in enumerate(rows):
        record: dict[str, Any] = {
            "span_id": f"{number:016x}",
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 0,
            "pricing_status": "priced",
            "attribution_status": "complete",
            "status": "ok",
            "received_at": row["ts"],
            **{name: Decimal(0) for name in RECORD_SCHEMA.names if name.endswith("cost_usd")},
        }
        record.update(row)
        full.append(record)
    return pa.Table.from_pylist(full, schema=RECORD_SCHEMA)


def loop_rows(
    trace: str, start: datetime, calls: int, *, seconds: int = 50, workflow: str = "agent"
) -> pa.Table:
    return batch(
        *(
            {
                "ts": start + timedelta(milliseconds=index * seconds * 1000 // calls),
                "trace_id": trace,
                "span_id": f"{index:016x}",
                "workflow": workflow,
                "service": "svc",
                "cost_usd": Decimal("0.001"),
            }
            for index in range(calls)
        )
    )


def test_old_traffic_teaches_but_never_alerts() -> None:
    """What the spool replays at start, or a sender delivers late, is judged by when it happened."""
    detector = StreamingDetector(AnomaliesConfig())
    old = loop_rows("a" * 32, T0 - timedelta(minutes=30), 100)
    assert detector.observe(old, ns(T0)) == []
    assert detector.calls_seen == 100 and detector.calls_ignored["stale"] == 0
    ancient = loop_rows("b" * 32, T0 - timedelta(hours=3), 100)
    assert detector.observe(ancient, ns(T0)) == []
    assert detector.calls_ignored["stale"] == 100
    (fresh,) = detector.observe(loop_rows("c" * 32, T0 - timedelta(minutes=1), 100), ns(T0))
    assert fresh.kind == "runaway_loop" and fresh.scope["trace_id"] == "c" * 32
    assert fresh.payload()["calls"] == 100
    assert fresh.payload()["size_usd"] == "0.1"


def test_a_workflow_norm_raises_its_runaway_limit() -> None:
    """Five finished traces at 12 calls a minute: 40 a minute is not 10x that; 130 is."""
    detector = StreamingDetector(AnomaliesConfig())
    now = T0
    for number in range(5):
        assert detector.observe(loop_rows(f"{number:032x}", now - timedelta(seconds=55), 12), ns(now)) == []
        now += timedelta(minutes=3)  # each trace idles out before the next one: its peak is learned
    assert detector.observe(loop_rows("e" * 32, now - timedelta(seconds=55), 40), ns(now)) == []
    (alert,) = detector.observe(loop_rows("f" * 32, now - timedelta(seconds=55), 130), ns(now))
    payload = alert.payload()
    assert payload["typical_calls_per_minute"] == 12
    assert payload["limit_calls_per_minute"] == 121
    assert payload["ratio"] == pytest.approx(130 / 12)
    assert payload["norm"] == "workflow=agent"
    # Another workflow has no norm yet: the floor decides.
    (other,) = detector.observe(
        loop_rows("9" * 32, now - timedelta(seconds=55), 40, workflow="other"), ns(now)
    )
    assert other.payload()["limit_calls_per_minute"] == 30


def test_memory_is_bounded_and_what_is_forgotten_is_counted() -> None:
    detector = StreamingDetector(AnomaliesConfig(stream_max_keys=100, dimensions=["team"]))
    rows = batch(
        *(
            {
                "ts": T0,
                "trace_id": f"{n:032x}",
                "session_id": f"s{n}",
                "team": f"t{n}",
                "cost_usd": Decimal("0.01"),
            }
            for n in range(250)
        )
    )
    detector.observe(rows, ns(T0))
    assert detector.tracked == {"trace": 100, "session": 100, "scope": 100, "workflow": 0}
    assert detector.evicted == {"trace": 150, "session": 150, "scope": 150, "workflow": 0}
    later = T0 + timedelta(minutes=3)
    detector.observe(batch({"ts": later, "trace_id": "f" * 32}), ns(later))
    # The idle ones are done; their peaks taught the norms (traces and sessions of no workflow).
    assert detector.tracked == {"trace": 1, "session": 0, "scope": 100, "workflow": 2}


def test_a_retried_span_counts_once() -> None:
    detector = StreamingDetector(AnomaliesConfig())
    rows = loop_rows("d" * 32, T0 - timedelta(seconds=50), 20)
    assert detector.observe(rows, ns(T0)) == []
    assert detector.observe(rows, ns(T0)) == []  # 40 calls a minute if the retry counted
    assert detector.calls_ignored["duplicate"] == 20


def test_folded_spans_and_attribution_changes_are_not_calls() -> None:
    detector = StreamingDetector(AnomaliesConfig())
    rows = loop_rows("7" * 32, T0 - timedelta(seconds=50), 60)
    marked = [
        {**row, "duplicate_of_span_id": "0" * 16} if index % 2 else {**row, "attribution_change": "after"}
        for index, row in enumerate(rows.to_pylist())
    ]
    assert detector.observe(pa.Table.from_pylist(marked, schema=RECORD_SCHEMA), ns(T0)) == []
    assert detector.calls_seen == 0


def test_a_spike_against_its_own_median() -> None:
    """Ten minutes at 0.10 USD a minute, then 1.20 USD in the current one."""
    config = AnomaliesConfig(
        dimensions=["team"],
        spike_window=timedelta(minutes=1),
        spike_baseline=timedelta(minutes=10),
        spike_min_baseline=timedelta(minutes=5),
        stream_cooldown=timedelta(minutes=5),
    )
    detector = StreamingDetector(config)
    history = [
        {
            "ts": T0 - timedelta(minutes=m, seconds=-s),
            "trace_id": f"{m:08x}{s:024x}",
            "team": "ml",
            "cost_usd": Decimal("0.05"),
        }
        for m in range(10, 0, -1)
        for s in (10, 40)
    ]
    now = T0 + timedelta(seconds=30)
    assert detector.observe(batch(*history), ns(now)) == []
    spend = [
        {"ts": T0 + timedelta(seconds=s), "trace_id": f"{s:032x}", "team": "ml", "cost_usd": Decimal("0.3")}
        for s in range(1, 5)
    ]
    assert detector.observe(batch(*spend[:3]), ns(now)) == []  # 0.90 USD: under the 1 USD floor
    (alert,) = detector.observe(batch(spend[3]), ns(now))
    payload = alert.payload()
    assert payload["size_usd"] == "1.2"
    assert payload["baseline_usd"] == "0.1"
    assert payload["ratio"] == pytest.approx(12.0)
    assert payload["start"] == "2026-03-02T12:00:00Z"
    assert payload["baseline_windows"] == 10

    # The spike goes on in the next minute: the same incident, quiet for stream_cooldown (5 min).
    later = T0 + timedelta(minutes=1, seconds=30)
    more = [
        {
            "ts": T0 + timedelta(minutes=1, seconds=s),
            "trace_id": f"{s:031x}1",
            "team": "ml",
            "cost_usd": Decimal("0.5"),
        }
        for s in (1, 2, 3)
    ]
    assert detector.observe(batch(*more), ns(later)) == []
    # Six minutes on (no traffic in between: those minutes are not part of the baseline), it is
    # a new incident: 2 USD against a median of 0.10 (four quiet minutes, the two spikes).
    again = T0 + timedelta(minutes=6)
    (second,) = detector.observe(
        batch({"ts": again, "trace_id": "a" * 32, "team": "ml", "cost_usd": Decimal("2")}), ns(again)
    )
    assert second.payload()["start"] == "2026-03-02T12:06:00Z"
    assert second.payload()["baseline_windows"] == 6
    assert second.payload()["baseline_usd"] == "0.1"
    assert second.alert_id != alert.alert_id
