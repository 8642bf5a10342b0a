"""TLS and mTLS on every listener, and certificates changed on disk without a restart.

The certificates are made with the openssl commands of docs/security.md (``tls_pki.py``). Real
servers on loopback, real clients: grpcio, httpx, plain ``ssl`` sockets (to see which
certificate a listener serves) and the OpenTelemetry SDK's OTLP exporters, whose spans are read
back from the lake. Shown here: a bad TLS file stops the start with the key named and nothing
bound; spans sent over TLS and mTLS land, with receiver workers too; mTLS refuses a client
without a certificate or with one of another CA; a renewed certificate, a removed client CA and
a broken replacement are handled at the next connection, without a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import grpc
import httpx
import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourcePb
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelcost.auth.config import TlsConfig
from otelcost.auth.tls import ListenerTls
from otelcost.cli.doctor import doctor
from otelcost.config import Config, load_config
from otelcost.errors import ConfigError
from otelcost.server import BackgroundServer, Server
from tests.security.tls_pki import (
    Pki,
    file_fingerprint,
    http_admitted,
    make_pki,
    renew_server,
    replace_file,
    served_fingerprint,
)
from tests.security.traffic import landed, send_chats
from tests.waiting import wait_until

Listener = Literal["grpc", "http", "api"]
LISTENERS: tuple[Listener, ...] = ("grpc", "http", "api")
DOTTED: dict[Listener, str] = {"grpc": "receiver.grpc.tls", "http": "receiver.http.tls", "api": "api.tls"}
TRACE_SERVICE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RELOAD = "200ms"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki") / "ours")


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Another CA, its server and its client: trusted by nobody unless a test says so."""
    return make_pki(tmp_path_factory.mktemp("pki") / "stranger")


@pytest.fixture(autouse=True)
def _no_ca_bundle_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests (under the SDK's HTTP exporter) prefers these to certificate_file.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def tls_block(
    files: Pki, *, client_ca: Path | None = None, reload_interval: str = "30s", **extra: str
) -> dict[str, str]:
    block = {
        "cert_file": str(files.server_cert),
        "key_file": str(files.server_key),
        "reload_interval": reload_interval,
        **extra,
    }
    if client_ca is not None:
        block["client_ca_file"] = str(client_ca)
    return block


def tls_config(
    data_dir: Path,
    tls: dict[Listener, dict[str, str]],
    *,
    workers: int = 0,
    http_enabled: bool = True,
    **extra: Any,
) -> Config:
    grpc_section: dict[str, Any] = {"listen": "127.0.0.1:0"}
    http_section: dict[str, Any] = {"listen": "127.0.0.1:0", "enabled": http_enabled}
    api_section: dict[str, Any] = {"listen": "127.0.0.1:0"}
    for listener, section in (("grpc", grpc_section), ("http", http_section), ("api", api_section)):
        if listener in tls:
            section["tls"] = tls[listener]
    layer: dict[str, Any] = {
        "data_dir": str(data_dir),
        "receiver": {"grpc": grpc_section, "http": http_section, "workers": workers},
        "api": api_section,
        "lake": {"flush_interval": "100ms"},
        **extra,
    }
    return load_config(None, overrides=layer, environ={})


def port_of(running: BackgroundServer, listener: Listener) -> int:
    port = running.server.api_port if listener == "api" else running.server.otlp_port(listener)
    assert port is not None
    return port


# -- clients -----------------------------------------------------------------------------------


def llm_request(team: str, span_number: int) -> ExportTraceServiceRequest:
    """One chat call of ``team`` as OTLP protobuf, for the clients that are not the SDK."""

    def attribute(key: str, value: str | int) -> KeyValue:
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    start = time.time_ns()
    span = Span(
        trace_id=(0x5B8EFFF798038103D269B633813F0000 + span_number).to_bytes(16, "big"),
        span_id=(0x1000 + span_number).to_bytes(8, "big"),
        name="chat gpt-4o",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=start + 1_000_000,
        attributes=[
            attribute("gen_ai.provider.name", "openai"),
            attribute("gen_ai.operation.name", "chat"),
            attribute("gen_ai.request.model", "gpt-4o"),
            attribute("gen_ai.usage.input_tokens", 1000),
            attribute("gen_ai.usage.output_tokens", 100),
            attribute("app.team", team),
        ],
    )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=ResourcePb(attributes=[attribute("service.name", "tls-test")]),
                scope_spans=[ScopeSpans(spans=[span])],
            )
        ]
    )


def channel_credentials(pki: Pki, present: Pki | None) -> grpc.ChannelCredentials:
    if present is None:
        return grpc.ssl_channel_credentials(pki.ca.read_bytes())
    return grpc.ssl_channel_credentials(
        pki.ca.read_bytes(), present.client_key.read_bytes(), present.client_cert.read_bytes()
    )


def grpcio_export(port: int, credentials: grpc.ChannelCredentials, request: ExportTraceServiceRequest) -> Any:
    """One Export over a fresh grpcio channel: the response, or the status code it failed with."""
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        call = channel.unary_unary(TRACE_SERVICE_EXPORT)
        try:
            answer = call(request.SerializeToString(), timeout=5)
        except grpc.RpcError as exc:
            return exc.code()
    return ExportTraceServiceResponse.FromString(answer)


def httpx_client(context: ssl.SSLContext) -> httpx.Client:
    return httpx.Client(verify=context, timeout=5)


def send_with_sdk(exporter: SpanExporter, team: str, count: int) -> list[SpanExportResult]:
    spans = [{"gen_ai.usage.input_tokens": 1000 + number, "app.team": team} for number in range(count)]
    return send_chats(exporter, resource={"service.name": "tls-test"}, spans=spans)


def calls_by_team(running: BackgroundServer) -> Counter[str]:
    rows = landed(running, "SELECT team, count(*) AS n FROM llm_calls GROUP BY team")
    return Counter({row["team"]: row["n"] for row in rows})


# -- a bad TLS configuration stops the start -----------------------------------------------------


def _encrypted_key(pki: Pki, directory: Path) -> Path:
    target = directory / "encrypted.key"
    subprocess.run(
        [
            "openssl",
            "pkey",
            "-in",
            str(pki.server_key),
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            str(target),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return target


BAD_FILES: dict[str, tuple[str, str]] = {
    # case: (the key the error must name, what it must say)
    "missing cert": ("cert_file", "cannot read"),
    "key of another certificate": ("key_file", "is not the private key of"),
    "a key where the certificate belongs": ("cert_file", "holds no PEM certificate"),
    "encrypted key": ("key_file", "encrypted"),
    "client CA without a certificate": ("client_ca_file", "holds no PEM certificate"),
}


@pytest.mark.parametrize("listener", LISTENERS)
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_unusable_tls_files_are_a_config_error_naming_the_key_before_anything_binds(
    pki: Pki, stranger: Pki, tmp_path: Path, listener: Listener, case: str
) -> None:
    block = tls_block(pki)
    if case == "missing cert":
        block["cert_file"] = str(tmp_path / "absent.crt")
    elif case == "key of another certificate":
        block["key_file"] = str(stranger.server_key)
    elif case == "a key where the certificate belongs":
        block["cert_file"] = str(pki.server_key)
    elif case == "encrypted key":
        block["key_file"] = str(_encrypted_key(pki, tmp_path))
    else:
        block["client_ca_file"] = str(pki.client_key)
    server = Server(tls_config(tmp_path / "data", {listener: block}))
    with pytest.raises(ConfigError) as raised:
        asyncio.run(server.start())
    field, says = BAD_FILES[case]
    assert str(raised.value).startswith(f"{DOTTED[listener]}.{field}: "), str(raised.value)
    assert says in str(raised.value)
    # Refused before the first listener (the API) and the pipeline start, not half way.
    assert server.api_port is None
    assert not server.pipeline_started
    assert (server.grpc is None or server.grpc._server is None) and (
        server.http is None or server.http._runner is None
    )


def test_a_bad_file_of_a_disabled_listener_does_not_stop_the_start(pki: Pki, tmp_path: Path) -> None:
    broken = tls_block(pki, cert_file=str(tmp_path / "absent.crt"))
    config = tls_config(tmp_path / "data", {"http": broken, "grpc": tls_block(pki)}, http_enabled=False)
    with BackgroundServer(config) as running:
        assert served_fingerprint(
            port_of(running, "grpc"), pki.client_context(), alpn=["h2"]
        ) == file_fingerprint(pki.server_cert)


# -- spans over TLS and mTLS land ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_spans_over_mtls_from_every_client_land_in_the_lake(pki: Pki, tmp_path: Path, workers: int) -> None:
    mtls = tls_block(pki, client_ca=pki.ca)
    config = tls_config(tmp_path / "data", {"grpc": mtls, "http": mtls, "api": mtls}, workers=workers)
    with BackgroundServer(config, start_timeout=60) as running:
        grpc_port, http_port = port_of(running, "grpc"), port_of(running, "http")

        answer = grpcio_export(grpc_port, channel_credentials(pki, present=pki), llm_request("grpcio", 1))
        assert isinstance(answer, ExportTraceServiceResponse), answer
        assert not answer.HasField("partial_success")

        with httpx_client(pki.client_context(present=pki)) as client:
            response = client.post(
                f"https://127.0.0.1:{http_port}/v1/traces",
                content=llm_request("httpx", 2).SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert response.status_code == 200, response.text
            assert response.extensions["network_stream"].get_extra_info("ssl_object").version() == "TLSv1.3"
            health = client.get(f"https://localhost:{port_of(running, 'api')}/healthz")
            assert health.status_code == 200, health.text

        grpc_exporter = GrpcSpanExporter(
            endpoint=f"127.0.0.1:{grpc_port}",
            credentials=grpc.ssl_channel_credentials(
                pki.ca.read_bytes(), pki.client_key.read_bytes(), pki.client_cert.read_bytes()
            ),
            timeout=10,
        )
        assert send_with_sdk(grpc_exporter, "sdk-grpc", 3) == [SpanExportResult.SUCCESS] * 3
        http_exporter = HttpSpanExporter(
            endpoint=f"https://127.0.0.1:{http_port}/v1/traces",
            certificate_file=str(pki.ca),
            client_certificate_file=str(pki.client_cert),
            client_key_file=str(pki.client_key),
            timeout=10,
        )
        assert send_with_sdk(http_exporter, "sdk-http", 2) == [SpanExportResult.SUCCESS] * 2

        expected = Counter({"grpcio": 1, "httpx": 1, "sdk-grpc": 3, "sdk-http": 2})
        wait_until(
            lambda: calls_by_team(running) == expected, timeout=20, what=f"the lake to hold {expected}"
        )


@pytest.mark.slow
def test_tls_without_client_ca_serves_any_client_and_refuses_plaintext(pki: Pki, tmp_path: Path) -> None:
    tls = tls_block(pki)
    with BackgroundServer(tls_config(tmp_path / "data", {"grpc": tls, "http": tls, "api": tls})) as running:
        grpc_port, http_port, api_port = (port_of(running, listener) for listener in LISTENERS)
        exporter = GrpcSpanExporter(
            endpoint=f"127.0.0.1:{grpc_port}",
            credentials=grpc.ssl_channel_credentials(pki.ca.read_bytes()),
            timeout=10,
        )
        assert send_with_sdk(exporter, "tls-grpc", 1) == [SpanExportResult.SUCCESS]
        http_exporter = HttpSpanExporter(
            endpoint=f"https://127.0.0.1:{http_port}/v1/traces", certificate_file=str(pki.ca), timeout=10
        )
        assert send_with_sdk(http_exporter, "tls-http", 1) == [SpanExportResult.SUCCESS]
        with httpx_client(pki.client_context()) as client:
            assert client.get(f"https://127.0.0.1:{api_port}/healthz").status_code == 200
            response = client.get(f"https://127.0.0.1:{api_port}/healthz")
            assert response.extensions["network_stream"].get_extra_info("ssl_object").version() == "TLSv1.3"

        # Plaintext to a TLS port gets no answer of ours, and a client that does not trust the CA
        # refuses the server.
        for port in (http_port, api_port):
            with pytest.raises(httpx.HTTPError), httpx.Client(timeout=5) as plain:
                plain.get(f"http://127.0.0.1:{port}/healthz")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://127.0.0.1:{api_port}/healthz", verify=ssl.create_default_context(), timeout=5)
        assert grpcio_export(grpc_port, grpc.ssl_channel_credentials(), llm_request("untrusted", 3)) == (
            grpc.StatusCode.UNAVAILABLE
        )
        # A TLS 1.2 client is served where no client certificate is asked for.
        old = pki.client_context()
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        assert http_admitted(api_port, old)

        wait_until(
            lambda: calls_by_team(running) == Counter({"tls-grpc": 1, "tls-http": 1}),
            timeout=20,
            what="both calls in the lake and nothing else",
        )


# -- mTLS refuses who it should -----------------------------------------------------------------


@pytest.fixture(scope="module")
def mtls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    mtls = tls_block(pki, client_ca=pki.ca)
    data_dir = tmp_path_factory.mktemp("mtls") / "data"
    with BackgroundServer(tls_config(data_dir, {"grpc": mtls, "http": mtls, "api": mtls})) as running:
        yield running


@pytest.mark.parametrize("listener", LISTENERS)
def test_mtls_admits_only_clients_with_a_certificate_of_the_client_ca(
    mtls_server: BackgroundServer, pki: Pki, stranger: Pki, listener: Listener
) -> None:
    port = port_of(mtls_server, listener)
    if listener == "grpc":
        for who, present in (("nobody", None), ("stranger", stranger)):
            assert grpcio_export(port, channel_credentials(pki, present), llm_request(who, 10)) == (
                grpc.StatusCode.UNAVAILABLE
            ), f"a client presenting {who}'s certificate was let in"
        assert isinstance(
            grpcio_export(port, channel_credentials(pki, pki), llm_request("ours", 11)),
            ExportTraceServiceResponse,
        )
    else:
        assert not http_admitted(port, pki.client_context())
        assert not http_admitted(port, pki.client_context(present=stranger))
        old = pki.client_context(present=pki)
        old.maximum_version = ssl.TLSVersion.TLSv1_2  # no TLS 1.2 with mTLS: it would resume
        assert not http_admitted(port, old)
        assert http_admitted(port, pki.client_context(present=pki))
        with pytest.raises(httpx.HTTPError), httpx_client(pki.client_context()) as client:
            client.get(f"https://127.0.0.1:{port}/healthz")
        with httpx_client(pki.client_context(present=pki)) as client:
            assert client.get(f"https://127.0.0.1:{port}/healthz").status_code in (200, 404)


def test_refused_clients_send_nothing_that_lands(
    mtls_server: BackgroundServer, pki: Pki, stranger: Pki
) -> None:
    grpc_port, http_port = port_of(mtls_server, "grpc"), port_of(mtls_server, "http")
    for who, present in (("refused-anonymous", None), ("refused-stranger", stranger)):
        refused = grpcio_export(grpc_port, channel_credentials(pki, present), llm_request(who, 30))
        assert refused == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(httpx.HTTPError), httpx_client(pki.client_context(present=present)) as client:
            client.post(
                f"https://127.0.0.1:{http_port}/v1/traces",
                content=llm_request(who, 31).SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
    admitted = grpcio_export(grpc_port, channel_credentials(pki, pki), llm_request("admitted", 32))
    assert isinstance(admitted, ExportTraceServiceResponse)

    def landed() -> Counter[str] | None:
        found = calls_by_team(mtls_server)
        return found if found["admitted"] == 1 else None

    teams = wait_until(landed, timeout=20, what="the admitted call in the lake")
    assert teams is not None
    assert not [team for team in teams if team.startswith("refused")], teams


# -- changed files, without a restart ---------------------------------------------------------


def served(running: BackgroundServer, listener: Listener, context: ssl.SSLContext) -> str:
    return served_fingerprint(
        port_of(running, listener), context, alpn=["h2"] if listener == "grpc" else None
    )


@pytest.fixture
def live_files(pki: Pki, tmp_path: Path) -> Pki:
    """A copy of ``pki`` the test may overwrite."""
    directory = tmp_path / "live"
    directory.mkdir()
    for name in ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key"):
        (directory / name).write_bytes((pki.directory / name).read_bytes())
    return Pki(directory)


def reloading_server(
    tmp_path: Path, listener: Listener, files: Pki, *, client_ca: Path | None = None
) -> BackgroundServer:
    block = tls_block(files, client_ca=client_ca, reload_interval=RELOAD)
    return BackgroundServer(tls_config(tmp_path / "data", {listener: block}))


@pytest.mark.parametrize("listener", LISTENERS)
def test_a_renewed_certificate_is_served_to_new_connections_without_a_restart(
    tmp_path: Path, live_files: Pki, listener: Listener
) -> None:
    trust = live_files.client_context()
    before = file_fingerprint(live_files.server_cert)
    with reloading_server(tmp_path, listener, live_files) as running:
        assert served(running, listener, trust) == before
        renewed = renew_server(live_files, tmp_path / "renewed")
        after = file_fingerprint(renewed.server_cert)
        assert after != before
        held = None
        if listener != "grpc":  # a connection opened before the change keeps its certificate
            raw = socket.create_connection(("127.0.0.1", port_of(running, listener)), timeout=5)
            held = trust.wrap_socket(raw, server_hostname="localhost")
        changed_at = time.monotonic()
        replace_file(live_files.server_key, renewed.server_key.read_bytes())
        replace_file(live_files.server_cert, renewed.server_cert.read_bytes())
        wait_until(
            lambda: served(running, listener, trust) == after, timeout=10, what="the renewed certificate"
        )
        # Looked at every 200ms, on the next connection: well under the 30s default.
        assert time.monotonic() - changed_at < 5
        if held is not None:
            with held:
                der = held.getpeercert(binary_form=True)
                assert der is not None and hashlib.sha256(der).hexdigest() == before
                held.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                assert held.recv(16).startswith(b"HTTP/1.1 ")


@pytest.mark.parametrize("listener", LISTENERS)
def test_a_client_ca_removed_from_the_file_stops_admitting_its_clients(
    tmp_path: Path, pki: Pki, stranger: Pki, listener: Listener
) -> None:
    bundle = tmp_path / "clients-ca.crt"
    bundle.write_bytes(pki.ca.read_bytes() + stranger.ca.read_bytes())

    def admitted(present: Pki) -> bool:
        port = port_of(running, listener)
        if listener == "grpc":
            answer = grpcio_export(
                port, channel_credentials(pki, present), llm_request(present.directory.name, 20)
            )
            return isinstance(answer, ExportTraceServiceResponse)
        return http_admitted(port, pki.client_context(present=present))

    with reloading_server(tmp_path, listener, pki, client_ca=bundle) as running:
        assert admitted(pki) and admitted(stranger)
        replace_file(bundle, pki.ca.read_bytes())
        wait_until(lambda: not admitted(stranger), timeout=10, what="the removed CA's client to be refused")
        assert admitted(pki)


@pytest.mark.parametrize("listener", ["grpc", "http"])
def test_a_broken_replacement_keeps_the_old_certificate_until_the_files_are_whole(
    tmp_path: Path, live_files: Pki, listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="otelcost.tls")
    trust = live_files.client_context()
    before = file_fingerprint(live_files.server_cert)
    renewed = renew_server(live_files, tmp_path / "renewed")

    def logged(text: str) -> Callable[[], bool]:
        def check() -> bool:
            served(running, listener, trust)  # the files are looked at when a client connects
            return text in caplog.text

        return check

    with reloading_server(tmp_path, listener, live_files) as running:
        replace_file(live_files.server_cert, b"-----BEGIN CERTIFICATE-----\nbroken\n")
        wait_until(logged(f"{DOTTED[listener]}.cert_file"), timeout=10, what="the broken file's error")
        assert "still serving certificate" in caplog.text
        assert served(running, listener, trust) == before

        # The new certificate before its key: the pair does not match yet.
        replace_file(live_files.server_cert, renewed.server_cert.read_bytes())
        wait_until(logged("is not the private key of"), timeout=10, what="the mismatch error")
        assert served(running, listener, trust) == before

        replace_file(live_files.server_key, renewed.server_key.read_bytes())
        after = file_fingerprint(renewed.server_cert)
        wait_until(lambda: served(running, listener, trust) == after, timeout=10, what="the whole new pair")


# -- the reload clock, without a server ---------------------------------------------------------


def test_files_are_looked_at_once_per_reload_interval(live_files: Pki, stranger: Pki) -> None:
    now = [0.0]
    config = TlsConfig(
        cert_file=live_files.server_cert,
        key_file=live_files.server_key,
        reload_interval=timedelta(seconds=30),
    )
    tls = ListenerTls(config, "api.tls", clock=lambda: now[0])
    before = tls.current.fingerprint
    replace_file(live_files.server_key, stranger.server_key.read_bytes())
    replace_file(live_files.server_cert, stranger.server_cert.read_bytes())
    now[0] = 29.0
    assert tls.refresh().fingerprint == before, "looked before reload_interval had passed"
    now[0] = 30.0
    assert tls.refresh().fingerprint != before
    assert (tls.reloads, tls.failures) == (1, 0)
    assert tls.refresh(force=True) is tls.current, "unchanged files are not loaded again"
    assert tls.reloads == 1
    served_now = tls.current.fingerprint
    live_files.server_cert.unlink()
    assert tls.refresh(force=True).fingerprint == served_now, "a file gone: keep serving"
    assert tls.refresh(force=True).fingerprint == served_now
    assert (tls.reloads, tls.failures) == (1, 1), "the same failure is counted (and logged) once"


# -- otelcost doctor against an HTTPS API -----------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def doctor_api_check(config_file: Path, *args: str) -> dict[str, str]:
    result = CliRunner().invoke(doctor, ["-c", str(config_file), "--format", "json", "--no-files", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    checks: dict[str, dict[str, str]] = {
        check["check"]: check for check in json.loads(result.output)["checks"]
    }
    return checks["api"]


@pytest.mark.parametrize("mtls", [False, True], ids=["tls", "mtls"])
def test_doctor_speaks_https_to_an_api_with_tls(pki: Pki, stranger: Pki, tmp_path: Path, mtls: bool) -> None:
    api_tls = tls_block(pki, client_ca=pki.ca if mtls else None)
    config_file = tmp_path / "otelcost.yaml"
    config_file.write_text(
        json.dumps(  # JSON is YAML
            {
                "data_dir": str(tmp_path / "data"),
                "receiver": {
                    "grpc": {"listen": f"127.0.0.1:{free_port()}"},
                    "http": {"listen": f"127.0.0.1:{free_port()}"},
                },
                "api": {"listen": f"127.0.0.1:{free_port()}", "tls": api_tls},
            }
        ),
        encoding="utf-8",
    )
    with BackgroundServer(load_config(config_file, environ={})):
        client = ["--client-cert", str(pki.client_cert), "--client-key", str(pki.client_key)] if mtls else []
        # From the configuration alone: https, and the served certificate trusted as itself.
        check = doctor_api_check(config_file, *client)
        assert check["status"] == "ok", check
        assert check["message"].startswith("https://127.0.0.1:")
        assert doctor_api_check(config_file, "--ca-file", str(pki.ca), *client)["status"] == "ok"
        wrong = doctor_api_check(config_file, "--ca-file", str(stranger.ca), *client)
        assert (wrong["status"], "--ca-file" in wrong["fix"]) == ("fail", True), wrong
        if mtls:
            anonymous = doctor_api_check(config_file)
            assert (anonymous["status"], "--client-cert" in anonymous["fix"]) == ("fail", True), anonymous
