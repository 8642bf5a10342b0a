"""Authenticated ingest and token-bound attribution, through the real OTLP exporters.

A key bound to a team that sends spans claiming another team is charged to its own team, and the
lake row says what the span had claimed; a missing, wrong, revoked or role-less key is refused
with the protocol's own status (HTTP 401/403, gRPC UNAUTHENTICATED/PERMISSION_DENIED) and nothing
of its request lands; a rotated key works under both digests until the old one is removed, and a
reload (the admin path, and SIGHUP to a real ``otelcost serve`` with receiver workers) puts the
new keys in force without a restart.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelcost.auth.binding import stamp_principal
from otelcost.auth.keys import Principal, key_digest, new_key
from otelcost.cli import main
from otelcost.config import Config, load_config
from otelcost.errors import ConfigError
from otelcost.server import BackgroundServer
from tests.security.traffic import landed, send_chats
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

SEARCH_KEY = new_key()
BILLING_KEY = new_key()
GATEWAY_KEY = new_key()
ADMIN_KEY = new_key()
ROTATING_OLD = new_key()
ROTATING_NEW = new_key()
TRACE_SERVICE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def key_entries(*, rotating: tuple[str, ...] = (ROTATING_OLD, ROTATING_NEW)) -> list[dict[str, Any]]:
    return [
        {
            "name": "search-prod",
            "digest": key_digest(SEARCH_KEY),
            "roles": ["ingest"],
            "bind": {"team": "search", "tenant_id": "acme"},
        },
        {"name": "billing-worker", "digest": key_digest(BILLING_KEY), "bind": {"service": "billing"}},
        {"name": "edge-gateway", "digest": key_digest(GATEWAY_KEY), "roles": ["gateway"]},
        {"name": "rotating", "digest": [key_digest(key) for key in rotating]},
    ]


def write_keys(path: Path, entries: list[dict[str, Any]]) -> None:
    path.write_text(yaml.safe_dump(entries), encoding="utf-8")


def server_config(data_dir: Path, keys_file: Path, **extra: Any) -> Config:
    layer: dict[str, Any] = {
        "data_dir": str(data_dir),
        "receiver": {"grpc": {"listen": "127.0.0.1:0"}, "http": {"listen": "127.0.0.1:0"}},
        "api": {"listen": "127.0.0.1:0"},
        "lake": {"flush_interval": "100ms"},
        # Deny even on loopback, so the tests (all on loopback) see what a remote caller sees.
        "auth": {"anonymous": {"ingest": "deny", "api": "allow"}, "keys_file": str(keys_file)},
        **extra,
    }
    return load_config(None, overrides=layer, environ={})


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "keys.yaml"
    write_keys(path, key_entries())
    return path


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, keys_file: Path) -> Iterator[BackgroundServer]:
    data_dir = tmp_path_factory.mktemp("ingest-auth") / "data"
    with BackgroundServer(server_config(data_dir, keys_file)) as server:
        yield server


def grpc_port(running: BackgroundServer) -> int:
    port = running.server.otlp_port("grpc")
    assert port is not None
    return port


def http_url(running: BackgroundServer) -> str:
    return f"http://127.0.0.1:{running.server.otlp_port('http')}/v1/traces"


def exporter(running: BackgroundServer, protocol: str, key: str | None) -> SpanExporter:
    """The SDK's exporter as an OpenTelemetry Collector's ``bearertokenauth`` would send it."""
    if protocol == "grpc":
        return GrpcSpanExporter(
            endpoint=f"127.0.0.1:{grpc_port(running)}",
            insecure=True,
            headers={"authorization": f"Bearer {key}"} if key else None,
            timeout=5,
        )
    return HttpSpanExporter(
        endpoint=http_url(running), headers={"Authorization": f"Bearer {key}"} if key else None, timeout=5
    )


def export_chat(
    exporter: SpanExporter, *, marker: str, service: str = "search-api", team: str = "payments"
) -> SpanExportResult:
    """One chat span claiming ``team`` (and a tenant), tagged ``marker`` to find its row."""
    resource = {
        "service.name": service,
        # A sender that tries to pass as another key is stripped of this by the receiver.
        "otelcost.key.name": "forged-admin",
        "otelcost.key.bind.team": "forged-team",
    }
    span = {"app.team": team, "app.tenant": "globex", "test.marker": marker}
    [result] = send_chats(exporter, resource=resource, spans=[span])
    return result


def rows(running: BackgroundServer, marker: str) -> list[dict[str, Any]]:
    return landed(
        running,
        "SELECT service, team, tenant_id, ingest_key, bound_dimensions, resource_attributes "
        f"FROM llm_calls WHERE attributes['test.marker'] = '{marker}'",
    )


def as_map(value: Any) -> dict[str, Any]:
    """A DuckDB MAP as ``otelcost sql --format json`` prints it."""
    if isinstance(value, dict):
        return value
    return {entry["key"]: entry["value"] for entry in value}


def raw_export(running: BackgroundServer, metadata: tuple[tuple[str, str], ...]) -> grpc.RpcError | None:
    """One empty-bodied Export over a plain grpcio channel; the error, or None on success."""
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port(running)}") as channel:
        call = channel.unary_unary(TRACE_SERVICE_EXPORT)
        try:
            call(ExportTraceServiceRequest().SerializeToString(), metadata=metadata, timeout=5)
        except grpc.RpcError as exc:
            return exc
    return None


def metric(running: BackgroundServer, name: str, labels: str = "") -> float:
    port = running.server.api_port
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + ("{" + labels if labels else "")) and (labels or line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# -- token-bound attribution ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_team_key_claiming_another_team_is_charged_to_its_own_team(
    running: BackgroundServer, protocol: str
) -> None:
    overrides_before = metric(running, "otelcost_attribution_key_overrides_total", 'dimension="team"')

    result = export_chat(exporter(running, protocol, SEARCH_KEY), marker=f"spoof-{protocol}")

    assert result is SpanExportResult.SUCCESS
    [row] = wait_until(lambda: rows(running, f"spoof-{protocol}"), what="the spoofed call in the lake")
    assert (row["team"], row["tenant_id"], row["ingest_key"]) == ("search", "acme", "search-prod")
    # What the span had claimed, per bound dimension: the spoof is on record.
    assert as_map(row["bound_dimensions"]) == {"team": "payments", "tenant_id": "globex"}
    # The sender's own otelcost.key.* attributes were removed before anything read them.
    resource = as_map(row["resource_attributes"])
    assert not [key for key in resource if key.startswith("otelcost.key.")]
    overrides_after = metric(running, "otelcost_attribution_key_overrides_total", 'dimension="team"')
    assert overrides_after == overrides_before + 1
    assert metric(running, "otelcost_ingest_key_calls_total", 'key="search-prod"') >= 1


def test_a_key_bound_to_a_service_replaces_the_service_the_spans_name(running: BackgroundServer) -> None:
    result = export_chat(exporter(running, "http", BILLING_KEY), marker="service-bound", service="checkout")

    assert result is SpanExportResult.SUCCESS
    [row] = wait_until(lambda: rows(running, "service-bound"), what="the service-bound call")
    assert (row["service"], row["ingest_key"]) == ("billing", "billing-worker")
    assert as_map(row["bound_dimensions"]) == {"service": "checkout"}
    # Nothing else is bound: the span's own team stands.
    assert row["team"] == "payments"


def test_a_key_agreeing_with_its_spans_is_recorded_but_not_counted_as_an_override(
    running: BackgroundServer,
) -> None:
    before = metric(running, "otelcost_attribution_key_overrides_total", 'dimension="team"')

    export_chat(exporter(running, "grpc", SEARCH_KEY), marker="honest", team="search")

    [row] = wait_until(lambda: rows(running, "honest"), what="the honest call")
    assert as_map(row["bound_dimensions"])["team"] == "search"
    assert metric(running, "otelcost_attribution_key_overrides_total", 'dimension="team"') == before


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", "Bearer otc_not-a-key"),), grpc.StatusCode.UNAUTHENTICATED),
        ((("x-otelcost-key", "otc_not-a-key"),), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", f"Bearer {GATEWAY_KEY}"),), grpc.StatusCode.PERMISSION_DENIED),
    ],
    ids=["no-key", "wrong-bearer", "wrong-header", "gateway-role"],
)
def test_grpc_refuses_without_a_valid_ingest_key(
    running: BackgroundServer, metadata: tuple[tuple[str, str], ...], code: grpc.StatusCode
) -> None:
    error = raw_export(running, metadata)

    assert error is not None and error.code() is code
    assert "otc_not-a-key" not in (error.details() or "")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer otc_not-a-key"}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": f"Bearer {GATEWAY_KEY}"}, 403),
    ],
    ids=["no-key", "wrong-key", "basic-scheme", "gateway-role"],
)
def test_http_refuses_without_a_valid_ingest_key(
    running: BackgroundServer, headers: dict[str, str], status: int
) -> None:
    body = ExportTraceServiceRequest().SerializeToString()

    response = httpx.post(
        http_url(running), content=body, headers={"Content-Type": "application/x-protobuf", **headers}
    )

    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="otelcost"'
    assert b"otc_not-a-key" not in response.content


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_the_exporters_do_not_retry_a_refused_key_and_nothing_lands(
    running: BackgroundServer, protocol: str
) -> None:
    refused_before = metric(running, "otelcost_receiver_requests_total", 'outcome="unauthenticated"')

    result = export_chat(exporter(running, protocol, "otc_wrong"), marker=f"refused-{protocol}")

    assert result is SpanExportResult.FAILURE
    # Exactly one more refusal: 401 / UNAUTHENTICATED are not retryable, so the exporter gave up.
    assert metric(running, "otelcost_receiver_requests_total", 'outcome="unauthenticated"') == (
        refused_before + 1
    )
    assert rows(running, f"refused-{protocol}") == []


# -- rotation and revocation ---------------------------------------------------------------------


def test_a_rotated_key_works_under_both_digests_until_the_old_one_is_removed(
    running: BackgroundServer, keys_file: Path
) -> None:
    for marker, key in (("rotate-old", ROTATING_OLD), ("rotate-new", ROTATING_NEW)):
        assert export_chat(exporter(running, "http", key), marker=marker) is SpanExportResult.SUCCESS

    write_keys(keys_file, key_entries(rotating=(ROTATING_NEW,)))
    try:
        names = running.server.reload_keys()

        assert "rotating" in names
        assert (
            export_chat(exporter(running, "grpc", ROTATING_OLD), marker="old-after")
            is SpanExportResult.FAILURE
        )
        assert (
            export_chat(exporter(running, "grpc", ROTATING_NEW), marker="new-after")
            is SpanExportResult.SUCCESS
        )
        wait_until(lambda: rows(running, "new-after"), what="the new key's call")
        assert rows(running, "old-after") == []
        assert {row["ingest_key"] for m in ("rotate-old", "rotate-new") for row in rows(running, m)} == {
            "rotating"
        }
    finally:
        write_keys(keys_file, key_entries())
        running.server.reload_keys()


def test_a_broken_keys_file_keeps_the_keys_in_force(running: BackgroundServer, keys_file: Path) -> None:
    keys_file.write_text("- name: pasted-the-key\n  digest: " + SEARCH_KEY + "\n", encoding="utf-8")
    try:
        with pytest.raises(ConfigError, match=r"auth\.keys_file") as raised:
            running.server.reload_keys()
        # The error names the problem without echoing what was pasted.
        assert SEARCH_KEY not in str(raised.value)
        assert export_chat(exporter(running, "http", SEARCH_KEY), marker="after-bad-reload") is (
            SpanExportResult.SUCCESS
        )
    finally:
        write_keys(keys_file, key_entries())
        running.server.reload_keys()


# -- the clear key is never shown ----------------------------------------------------------------


def test_config_show_and_metrics_never_hold_a_clear_key(running: BackgroundServer, keys_file: Path) -> None:
    config_file = keys_file.parent / "otelcost.yaml"
    config_file.write_text(
        yaml.safe_dump({"auth": {"keys": [{"name": "inline", "digest": key_digest(SEARCH_KEY)}]}}),
        encoding="utf-8",
    )
    shown = CliRunner().invoke(main, ["config", "show", "--config", str(config_file)])
    scraped = httpx.get(f"http://127.0.0.1:{running.server.api_port}/metrics", timeout=5).text

    assert shown.exit_code == 0, shown.output
    assert key_digest(SEARCH_KEY) in shown.output
    for text in (shown.output, scraped):
        for key in (SEARCH_KEY, BILLING_KEY, GATEWAY_KEY, ROTATING_NEW):
            assert key not in text


def test_a_clear_key_pasted_as_a_digest_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"auth\.keys\[0\]\.digest") as raised:
        load_config(None, overrides={"auth": {"keys": [{"name": "x", "digest": SEARCH_KEY}]}}, environ={})
    assert SEARCH_KEY not in str(raised.value)


def test_loopback_anonymous_ingest_is_the_default_and_records_no_key(tmp_path: Path) -> None:
    config = load_config(
        None,
        overrides={
            "data_dir": str(tmp_path / "data"),
            "receiver": {"grpc": {"listen": "127.0.0.1:0"}, "http": {"listen": "127.0.0.1:0"}},
            "api": {"listen": "127.0.0.1:0"},
        },
        environ={},
    )
    assert config.auth.anonymous.ingest == "loopback"
    with BackgroundServer(config) as running:
        assert export_chat(exporter(running, "http", None), marker="anonymous") is SpanExportResult.SUCCESS
        [row] = wait_until(lambda: rows(running, "anonymous"), what="the anonymous call")
    assert (row["team"], row["ingest_key"], row["bound_dimensions"]) == ("payments", None, None)


def test_a_stamp_is_stripped_from_every_resource_of_a_request() -> None:
    request = ExportTraceServiceRequest()
    for _ in range(3):
        resource = request.resource_spans.add().resource
        resource.attributes.append(KeyValue(key="otelcost.key.bind.team"))
        resource.attributes.append(KeyValue(key="service.name"))

    stamp_principal(request, Principal(name="k", roles=frozenset({"ingest"}), bind={"team": "t"}))

    for resource_spans in request.resource_spans:
        pairs = [(kv.key, kv.value.string_value) for kv in resource_spans.resource.attributes]
        assert pairs == [("service.name", ""), ("otelcost.key.name", "k"), ("otelcost.key.bind.team", "t")]


# -- SIGHUP to a real serve process with receiver workers ----------------------------------------


def test_sighup_and_the_admin_api_revoke_keys_in_the_receiver_workers_and_are_audited(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.yaml"
    admin_entry = {"name": "ops-admin", "digest": key_digest(ADMIN_KEY), "roles": ["admin"]}
    write_keys(keys_file, [*key_entries(), admin_entry])
    ports = {}
    for name in ("grpc", "http", "api"):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports[name] = probe.getsockname()[1]
    config_file = tmp_path / "otelcost.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "receiver": {
                    "grpc": {"listen": f"127.0.0.1:{ports['grpc']}"},
                    "http": {"listen": f"127.0.0.1:{ports['http']}"},
                    "workers": 1,
                },
                "api": {"listen": f"127.0.0.1:{ports['api']}"},
                "auth": {"anonymous": {"ingest": "deny"}, "keys_file": str(keys_file)},
            }
        ),
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "otelcost", "serve", "--config", str(config_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTELCOST_")},
    )
    url = f"http://127.0.0.1:{ports['http']}/v1/traces"
    body = ExportTraceServiceRequest().SerializeToString()

    def status(key: str) -> int:
        headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {key}"}
        return httpx.post(url, content=body, headers=headers, timeout=5).status_code

    def ready() -> bool:
        assert process.poll() is None, process.communicate()
        try:
            return httpx.get(f"http://127.0.0.1:{ports['api']}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout=30, poll=0.1, what="serve with one receiver worker")
        assert status(SEARCH_KEY) == 200

        write_keys(keys_file, [e for e in [*key_entries(), admin_entry] if e["name"] != "search-prod"])
        process.send_signal(signal.SIGHUP)

        wait_until(lambda: status(SEARCH_KEY) == 401, timeout=10, what="the worker to drop the revoked key")
        assert status(BILLING_KEY) == 200
        assert process.poll() is None  # SIGHUP reloads, it does not stop anything

        # The admin API's reload reaches the workers too.
        write_keys(keys_file, [admin_entry])
        reloaded = httpx.post(
            f"http://127.0.0.1:{ports['api']}/v1/admin/auth/reload",
            headers={"Authorization": f"Bearer {ADMIN_KEY}", "X-Otelcost-Note": "billing rotated"},
            timeout=10,
        )
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["keys"] == ["ops-admin"]
        wait_until(lambda: status(BILLING_KEY) == 401, timeout=10, what="the worker to drop the billing key")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert SEARCH_KEY not in stderr
    audit = CliRunner().invoke(
        main,
        [
            "sql",
            "--data-dir",
            str(tmp_path / "data"),
            "--format",
            "json",
            "SELECT actor, action, note FROM audit_log ORDER BY changed_at",
        ],
    )
    assert audit.exit_code == 0, audit.output
    assert json.loads(audit.output) == [
        {"actor": "signal:SIGHUP", "action": "auth.reload", "note": None},
        {"actor": "ops-admin", "action": "auth.reload", "note": "billing rotated"},
    ]
