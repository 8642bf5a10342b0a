"""Three ``otelcost serve`` processes, one Redis budget store, one lake root, one SIGKILL.

The deployment docs/scale-out.md describes, on loopback: three real serve processes, each with
its own data directory (spool), sharing a ``redis-server`` the test starts
(``budgeting.store``) and one ``lake.root``. Sender threads drive OTLP/gRPC load through one
grpc channel with the ``round_robin`` policy over the three, so consecutive calls land on
different processes. A call that fails is retried as it was (the same spans), as an SDK or a
Collector retries, and so may land on another process: that is what the store's once-only
checks are for. In the middle of the load the second process is SIGKILLed and started again on
its data directory. Afterwards:

* every span sent was acknowledged (retries included), and every one is in the lake; the lake
  may hold a span twice only when its first delivery's ack was lost (at-least-once delivery,
  docs/durability.md), and counting distinct spans removes exactly those;
* every process's budget totals (cost and calls per team) equal the lake's sums over distinct
  spans, to the picodollar: nothing the killed process had applied is applied again by its
  replay, nothing retried elsewhere is counted twice;
* the three publish the same decisions with the same ETag;
* a budget crossed through one process blocks in all three within ``DECISION_BOUND_S``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from decimal import Decimal
from functools import partial
from pathlib import Path

import grpc
import pytest
import requests
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.e2e.test_crash import Load, budget_totals, build_request, metric, sql, start_serve
from tests.e2e.test_serve_process import free_port
from tests.redis_run import RedisServer
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

SENDERS = 3
LOAD_SECONDS = 3.0
DECISION_BOUND_S = 1.0
"""docs/scale-out.md: how long two processes may disagree about a decision once it changed."""

CONFIG = """
lake:
  root: {lake}
  flush_interval: 400ms
budgeting:
  store: {store}
  store_prefix: {prefix}
  snapshot_refresh: 100ms
  tick_interval: 100ms
budgets:
  # A first threshold at the smallest spend makes every team's total visible in /v1/decisions.
  - name: cost-per-team
    scope: {{team: "*"}}
    window: day
    metric: cost_usd
    limit: 1000000
    thresholds: [{{at: 0.000000000001, action: notify, alert: false}}]
  - name: calls-per-team
    scope: {{team: "*"}}
    window: day
    metric: requests
    limit: 1000000000000
    thresholds: [{{at: 0.000000000001, action: notify, alert: false}}]
  - name: runaway
    scope: {{service: runaway-agent}}
    window: day
    metric: requests
    limit: 25
    thresholds: [{{at: 1, action: block, alert: false}}]
"""


class RoundRobinLoad(Load):
    """Senders over one round_robin channel; a failed call is retried with the same spans."""

    def __init__(self, grpc_ports: list[int]) -> None:
        target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in grpc_ports)
        options = (("grpc.lb_policy_name", "round_robin"),)
        super().__init__(0, target=target, options=options, senders=SENDERS)
        self.retries = 0

    def _deliver(
        self, request: trace_service_pb2.ExportTraceServiceRequest, ids: list[tuple[str, str]]
    ) -> None:
        """Until acknowledged: a sender that gave up would make "every span sent" unknowable."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                response = self.stub.Export(request, timeout=5)
            except grpc.RpcError:
                with self._lock:
                    self.retries += 1
                time.sleep(0.05)
                continue
            assert response.partial_success.rejected_spans == 0
            with self._lock:
                self.acked.update(ids)
            return
        raise AssertionError("a request was not acknowledged within 30 s of retries")


def _ports() -> dict[str, int]:
    return {"grpc": free_port(), "http": free_port(), "api": free_port()}


def _decisions(api_port: int) -> dict[str, object]:
    body: dict[str, object] = requests.get(f"http://127.0.0.1:{api_port}/v1/decisions", timeout=5).json()
    return body


def _holds(api_port: int, expected: dict[tuple[str, str], Decimal]) -> bool:
    return budget_totals(api_port) == expected


def _blocked(api_port: int) -> bool:
    decisions = _decisions(api_port)["decisions"]
    assert isinstance(decisions, list)
    return any(d["budget"] == "runaway" and d["action"] == "block" for d in decisions)


Node = tuple[Path, dict[str, int], Path]


def _deployment(
    tmp_path: Path, processes: list[subprocess.Popen[str]], redis_server: RedisServer, count: int
) -> tuple[Path, list[Node]]:
    config = tmp_path / "otelcost.yaml"
    config.write_text(
        CONFIG.format(lake=tmp_path / "lake", store=redis_server.url, prefix=f"e2e{secrets.token_hex(3)}")
    )
    nodes = [(tmp_path / f"node{i}", _ports(), tmp_path / f"node{i}.log") for i in range(count)]
    processes.extend(start_serve(config, data_dir, ports, log) for data_dir, ports, log in nodes)
    return config, nodes


def _stop(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=30)


def test_three_processes_share_totals_through_redis_and_survive_a_sigkill(
    tmp_path: Path, processes: list[subprocess.Popen[str]], redis_server: RedisServer
) -> None:
    config, nodes = _deployment(tmp_path, processes, redis_server, 3)
    load = RoundRobinLoad([ports["grpc"] for _, ports, _ in nodes])
    load.start()
    time.sleep(LOAD_SECONDS / 2)  # load on all three
    victim = processes[1]
    victim_dir, victim_ports, victim_log = nodes[1]
    applied_before = metric(victim_ports["api"], "otelcost_budget_store_changes_sent_total")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    time.sleep(0.5)  # the others carry the load, and the retries of the calls it dropped
    processes.append(start_serve(config, victim_dir, victim_ports, victim_log))
    # Records spooled (and sent to Redis) but not yet in the lake at the kill: the replay hands
    # them to the lake again, and the store must not count them again.
    replayed = metric(victim_ports["api"], "otelcost_spool_replayed_records_total")
    assert replayed > 0, "nothing was replayed: the kill came between flushes, the test proves too little"
    time.sleep(LOAD_SECONDS / 2)
    load.stop()
    assert applied_before > 0, "the killed process had sent nothing to Redis: the test proves too little"
    rows, duplicates = _check_totals(config, nodes, load)

    exposed = [
        line.split()[2]
        for line in requests.get(
            f"http://127.0.0.1:{nodes[0][1]['api']}/metrics", timeout=5
        ).text.splitlines()
        if line.startswith("# HELP ")
    ]
    documented = (Path(__file__).parent.parent.parent / "docs" / "metrics.md").read_text()
    assert "otelcost_budget_store_online" in exposed
    assert [name for name in exposed if f"`{name}`" not in documented] == []

    # A runaway agent crosses its budget through one process; all three must block it.
    runaway = build_request(10**8)[0]
    for resource_spans in runaway.resource_spans:
        resource_spans.resource.attributes[0].value.string_value = "runaway-agent"
    single = grpc.insecure_channel(f"127.0.0.1:{nodes[2][1]['grpc']}")
    trace_service_pb2_grpc.TraceServiceStub(single).Export(runaway, timeout=5)  # 20 calls of 25
    assert not any(_blocked(p["api"]) for _, p, _ in nodes)
    for span in runaway.resource_spans[0].scope_spans[0].spans:
        span.span_id = os.urandom(8)
    crossed_at = time.monotonic()
    trace_service_pb2_grpc.TraceServiceStub(single).Export(runaway, timeout=5)  # 40 of 25
    single.close()
    lags = {}
    for _, ports, _ in nodes:
        wait_until(partial(_blocked, ports["api"]), timeout=5, poll=0.01, what="the block everywhere")
        lags[ports["api"]] = time.monotonic() - crossed_at
    assert max(lags.values()) <= DECISION_BOUND_S, lags
    _stop(processes)
    print(  # the numbers the report quotes (pytest -s)
        f"\nsent={len(load.sent)} retries={load.retries} lake_rows={len(rows)} "
        f"duplicates_in_lake={duplicates} victim_changes_before_kill={int(applied_before)} "
        f"replayed={int(replayed)} block_lag_s={max(lags.values()):.3f}"
    )


def test_redis_killed_under_load_goes_stale_and_reconciles_to_the_lake(
    tmp_path: Path, processes: list[subprocess.Popen[str]], redis_server: RedisServer
) -> None:
    config, nodes = _deployment(tmp_path, processes, redis_server, 2)
    load = RoundRobinLoad([ports["grpc"] for _, ports, _ in nodes])
    load.start()
    time.sleep(LOAD_SECONDS / 3)
    redis_server.kill()
    for _, ports, _ in nodes:
        wait_until(partial(_stale, ports["api"]), timeout=10, poll=0.05, what="the decisions marked stale")
    outage_sent = len(load.sent)
    time.sleep(LOAD_SECONDS / 3)  # both count locally meanwhile
    assert len(load.sent) > outage_sent, "no load during the outage: the test proves too little"
    pending = [metric(ports["api"], "otelcost_budget_store_pending") for _, ports, _ in nodes]
    assert any(pending), f"no process holds changes for Redis: the test proves too little ({pending})"
    redis_server.start()
    for _, ports, _ in nodes:
        wait_until(partial(_fresh, ports["api"]), timeout=15, poll=0.05, what="fresh decisions")
    time.sleep(LOAD_SECONDS / 3)
    load.stop()
    _check_totals(config, nodes, load)
    _stop(processes)


def test_a_process_killed_while_redis_is_down_adds_its_batches_after_both_return(
    tmp_path: Path, processes: list[subprocess.Popen[str]], redis_server: RedisServer
) -> None:
    config, nodes = _deployment(tmp_path, processes, redis_server, 2)
    load = RoundRobinLoad([ports["grpc"] for _, ports, _ in nodes])
    load.start()
    time.sleep(LOAD_SECONDS / 3)
    redis_server.kill()
    victim_dir, victim_ports, victim_log = nodes[0]
    wait_until(partial(_stale, victim_ports["api"]), timeout=5, poll=0.05, what="the decisions marked stale")
    # Batches counted only here, and flushed to the lake (400 ms), but held in the spool.
    wait_until(
        lambda: (
            metric(victim_ports["api"], "otelcost_lake_rows_written_total") > 0
            and metric(victim_ports["api"], "otelcost_budget_store_pending") > 0
        ),
        timeout=5,
        what="pending batches in the lake",
    )
    time.sleep(0.5)  # more flushes: the lake alone would checkpoint the spool past them
    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait(timeout=10)
    redis_server.start()
    processes.append(start_serve(config, victim_dir, victim_ports, victim_log))
    time.sleep(LOAD_SECONDS / 3)
    load.stop()
    _check_totals(config, nodes, load)
    _stop(processes)


def _stale(api_port: int) -> bool:
    return bool(_decisions(api_port)["stale"])


def _fresh(api_port: int) -> bool:
    return not _stale(api_port)


def _check_totals(config: Path, nodes: list[Node], load: RoundRobinLoad) -> tuple[list[tuple[str, str]], int]:
    """Every span acknowledged and in the lake; every process's totals = the lake's distinct sums;
    one ETag. Returns the lake's rows and how many of them repeat a span."""
    assert load.acked == load.sent, f"{len(load.sent - load.acked)} spans never acknowledged"

    def in_lake() -> list[tuple[str, str]]:
        rows = sql(config, "SELECT trace_id, span_id FROM llm_calls")
        return [(row["trace_id"], row["span_id"]) for row in rows]

    # The lake flushes every 400 ms: wait until every span is there.
    wait_until(lambda: set(in_lake()) >= load.acked, timeout=15, poll=0.2, what="every span in the lake")
    rows = in_lake()
    assert set(rows) == load.sent, "the lake holds spans that were never sent"
    sums = sql(
        config,
        "SELECT team, sum(cost_usd)::VARCHAR AS cost, count(*) AS calls FROM "
        "(SELECT DISTINCT ON (trace_id, span_id) team, cost_usd FROM llm_calls "
        " WHERE ts >= current_date::TIMESTAMPTZ) GROUP BY team",
    )
    expected = {("cost-per-team", r["team"]): Decimal(r["cost"]) for r in sums} | {
        ("calls-per-team", r["team"]): Decimal(r["calls"]) for r in sums
    }
    assert sum(v for (budget, _), v in expected.items() if budget == "calls-per-team") == len(load.sent)
    for _, ports, _ in nodes:
        api_port = ports["api"]
        what = f"process on :{api_port} to hold the lake's totals {expected}"
        wait_until(partial(_holds, api_port, expected), timeout=10, poll=0.1, what=what)
    etags = {
        requests.get(f"http://127.0.0.1:{p['api']}/v1/decisions", timeout=5).headers["ETag"]
        for _, p, _ in nodes
    }
    assert len(etags) == 1, f"the processes publish different snapshots for the same totals: {etags}"
    return rows, len(rows) - len(set(rows))
