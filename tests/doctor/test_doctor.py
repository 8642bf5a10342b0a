"""``otelcost doctor`` against a real ``otelcost serve`` on loopback, with one planted problem of
each kind: an unreachable port, an old price catalog, spans of an unknown model, spans whose
timestamps are an hour behind, a lake that cannot be written (which also leaves the spool stuck)
and then a full spool.

One server for the module, started from a real configuration file (the doctor reads the same
file, as an operator would). The baseline is taken before anything is planted; traffic goes over
real OTLP/HTTP. The lake is made unwritable by putting a file where its table directory should
be (tests/lake/test_writer.py does the same): the tests run as root on CI, where removing write
permission changes nothing.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner, Result

from otelcost.cli.doctor import doctor
from otelcost.config import load_config
from otelcost.lake.layout import table_dir
from otelcost.lake.query import run_query
from otelcost.server import BackgroundServer
from tests.normalize.otlp_builders import SpanSpec, request
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

SPOOL_MAX_SIZE = 96 * 1024
HOUR_NS = 3600 * 10**9
# A healthy baseline whatever the shipped catalog's age: the old-catalog test uses the default.
LENIENT_CATALOG = ["--catalog-max-age-days", "36500"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def llm_span(model: str, *, end_ns: int, team: str = "payments") -> SpanSpec:
    return SpanSpec(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 1_000,
            "gen_ai.usage.output_tokens": 200,
            "app.team": team,
            "app.feature": "doctor-test",
        },
        name=f"chat {model}",
        start_ns=end_ns - 800_000_000,
        end_ns=end_ns,
        trace_id=os.urandom(16),
        span_id=os.urandom(8),
    )


@dataclass
class Deployment:
    config_file: Path
    data_dir: Path
    http_port: int
    api: str
    baseline: Result | None = None

    def post(self, spans: list[SpanSpec], service: str = "checkout") -> int:
        body = request(spans, resource={"service.name": service}).SerializeToString()
        response = requests.post(
            f"http://127.0.0.1:{self.http_port}/v1/traces",
            data=body,
            headers={"Content-Type": "application/x-protobuf"},
            timeout=10,
        )
        return response.status_code

    def metric(self, name: str) -> float:
        text = requests.get(f"{self.api}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{")
        )

    def calls_in_lake(self) -> int:
        table = run_query(self.data_dir / "lake", "SELECT count(*) AS n FROM llm_calls")
        return int(table.column("n")[0].as_py())


def run_doctor(*args: str, config_file: Path) -> tuple[Result, dict[str, dict[str, str]]]:
    result = CliRunner().invoke(doctor, ["-c", str(config_file), "--format", "json", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    decoded = json.loads(result.output)
    return result, {check["check"]: check for check in decoded["checks"]}


def statuses(checks: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: check["status"] for name, check in checks.items()}


ALL_OK = {
    name: "ok"
    for name in (
        "api",
        "otlp-grpc",
        "otlp-http",
        "readiness",
        "spool",
        "budget-store",
        "disk",
        "lake-writable",
        "lake-lag",
        "catalog",
        "unpriced",
        "clock-skew",
    )
}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("doctor")
    grpc_port, http_port, api_port = free_port(), free_port(), free_port()
    config_file = root / "otelcost.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(root / "data"),
                "receiver": {
                    "grpc": {"listen": f"127.0.0.1:{grpc_port}"},
                    "http": {"listen": f"127.0.0.1:{http_port}"},
                },
                "api": {"listen": f"127.0.0.1:{api_port}"},
                "lake": {"flush_interval": "200ms"},
                "spool": {"max_size": SPOOL_MAX_SIZE, "segment_size": SPOOL_MAX_SIZE // 4},
            }
        )
    )
    with BackgroundServer(load_config(config_file, environ={})):
        api = f"http://127.0.0.1:{api_port}"
        deployment = Deployment(config_file, root / "data", http_port, api)
        now = time.time_ns()
        assert deployment.post([llm_span("gpt-4o-mini", end_ns=now - 10**9) for _ in range(5)]) == 200
        wait_until(lambda: deployment.calls_in_lake() == 5, timeout=20, poll=0.1, what="5 calls in the lake")
        wait_until(
            lambda: deployment.metric("otelcost_spool_depth_records") == 0,
            timeout=20,
            what="the spool drained",
        )
        deployment.baseline, _ = run_doctor(*LENIENT_CATALOG, config_file=config_file)
        yield deployment


def test_a_healthy_deployment_passes_every_check(deployment: Deployment) -> None:
    result = deployment.baseline
    assert result is not None
    assert result.exit_code == 0, result.output
    checks = {c["check"]: c for c in json.loads(result.output)["checks"]}
    assert statuses(checks) == ALL_OK, result.output
    assert "5 calls since start is priced" in checks["unpriced"]["message"]
    assert checks["readiness"]["message"].startswith("ready")
    assert all(check["fix"] == "" for check in checks.values())
    text = CliRunner().invoke(doctor, ["-c", str(deployment.config_file), *LENIENT_CATALOG])
    assert text.exit_code == 0 and "fix:" not in text.output
    assert text.output.splitlines()[0].split()[:2] == ["ok", "api"]


def test_an_unreachable_port_fails_with_its_address(deployment: Deployment) -> None:
    closed = free_port()
    result, checks = run_doctor(
        "--otlp-grpc", f"127.0.0.1:{closed}", *LENIENT_CATALOG, config_file=deployment.config_file
    )
    assert result.exit_code == 1
    assert checks["otlp-grpc"]["status"] == "fail"
    assert f"127.0.0.1:{closed} does not accept connections" in checks["otlp-grpc"]["message"]
    assert checks["otlp-grpc"]["fix"]
    assert checks["otlp-http"]["status"] == "ok"

    # The API itself unreachable: every check that needs it fails, the file checks still run.
    result, checks = run_doctor(
        "--api", f"http://127.0.0.1:{closed}", *LENIENT_CATALOG, config_file=deployment.config_file
    )
    assert result.exit_code == 1
    assert (checks["api"]["status"], checks["spool"]["status"]) == ("fail", "fail")
    assert "readiness" not in checks
    assert checks["disk"]["status"] == "ok"

    bad = CliRunner().invoke(doctor, ["-c", str(deployment.config_file), "--api", "localhost:4320"])
    assert bad.exit_code == 2 and "expected http://HOST:PORT, got 'localhost:4320'" in bad.output

    # Run from where the data directory is not mounted: the file checks say they were skipped.
    result, checks = run_doctor("--no-files", *LENIENT_CATALOG, config_file=deployment.config_file)
    assert result.exit_code == 0
    skipped = {"disk", "lake-writable", "lake-lag", "clock-skew"}
    assert {name for name, check in checks.items() if check["message"].startswith("skipped")} == skipped
    assert all(checks[name]["status"] == "warn" for name in skipped)


def test_an_old_catalog_warns_with_the_provider_and_its_age(deployment: Deployment, tmp_path: Path) -> None:
    catalog = tmp_path / "acme.yaml"
    catalog.write_text(
        "provider: acme\ncurrency: USD\n"
        "source: {url: https://acme.example/pricing, read: 2024-01-01}\n"
        "models:\n  - id: acme-1\n    versions:\n      - prices: {input: '1', output: '2'}\n"
    )
    config = yaml.safe_load(deployment.config_file.read_text())
    config["pricing"] = {"catalogs": [str(catalog)]}
    config_file = tmp_path / "with-old-catalog.yaml"
    config_file.write_text(yaml.safe_dump(config))
    result, checks = run_doctor(config_file=config_file)
    age = (datetime.now(UTC).date() - date(2024, 1, 1)).days
    assert checks["catalog"]["status"] == "warn"
    assert f"acme, read 2024-01-01 ({age} days ago), over 90 days" in checks["catalog"]["message"]
    assert result.exit_code == 0  # a warning is not a failure


def test_unknown_models_and_skewed_clocks_warn_naming_model_and_service(deployment: Deployment) -> None:
    now = time.time_ns()
    before = deployment.calls_in_lake()
    assert deployment.post([llm_span("mystery-model-9", end_ns=now - 10**9) for _ in range(3)]) == 200
    # A sender whose clock is an hour behind: its spans end an hour before they arrive.
    skewed = [llm_span("gpt-4o-mini", end_ns=now - HOUR_NS) for _ in range(4)]
    assert deployment.post(skewed, service="batch-scorer") == 200
    wait_until(lambda: deployment.calls_in_lake() == before + 7, timeout=20, poll=0.1, what="7 more calls")
    result, checks = run_doctor(*LENIENT_CATALOG, config_file=deployment.config_file)
    assert result.exit_code == 0
    assert checks["unpriced"]["status"] == "warn"
    assert "mystery-model-9 (3)" in checks["unpriced"]["message"]
    unpriced = deployment.metric('otelcost_calls_by_pricing_status_total{status="unknown_model"}')
    assert unpriced == 3
    assert checks["clock-skew"]["status"] == "warn"
    message = checks["clock-skew"]["message"]
    assert "batch-scorer +36" in message and "over 4 calls" in message, message
    seconds = int(message.split("batch-scorer +")[1].split(" s")[0])
    assert 3600 <= seconds < 3630  # an hour, plus the time the request took to arrive
    assert "checkout" not in message  # the on-time service is not blamed
    assert {n: s for n, s in statuses(checks).items() if s != "ok"} == {
        "unpriced": "warn",
        "clock-skew": "warn",
    }


def test_an_unwritable_lake_fails_and_leaves_the_spool_stuck_then_full(deployment: Deployment) -> None:
    root = table_dir(deployment.data_dir / "lake")
    aside = root.with_name("llm_calls.aside")
    os.rename(root, aside)
    root.write_text("in the way")
    try:
        assert deployment.post([llm_span("gpt-4o-mini", end_ns=time.time_ns())]) == 200
        wait_until(lambda: deployment.metric("otelcost_lake_flush_errors_total") > 0, timeout=20, poll=0.1)
        time.sleep(1.1)  # past --max-lake-lag 1
        result, checks = run_doctor(
            "--max-lake-lag", "1", *LENIENT_CATALOG, config_file=deployment.config_file
        )
        assert result.exit_code == 1
        assert checks["lake-writable"]["status"] == "fail"
        assert "cannot create a file in" in checks["lake-writable"]["message"]
        assert checks["spool"]["status"] == "fail"
        assert checks["spool"]["message"].startswith("stuck: 1 records wait for the lake")
        assert checks["lake-lag"]["status"] == "fail"

        # Keep sending: the spool fills up to spool.max_size and then refuses (HTTP 503).
        codes = [deployment.post([llm_span("gpt-4o-mini", end_ns=time.time_ns())]) for _ in range(400)]
        assert 503 in codes, "the spool never filled"
        result, checks = run_doctor(*LENIENT_CATALOG, config_file=deployment.config_file)
        assert result.exit_code == 1
        assert checks["spool"]["status"] == "fail"
        assert checks["spool"]["message"].startswith("full: ")
        assert f"of {SPOOL_MAX_SIZE} bytes wait for the lake" in checks["spool"]["message"]
    finally:
        root.unlink()
        os.rename(aside, root)
    wait_until(
        lambda: deployment.metric("otelcost_spool_depth_records") == 0,
        timeout=30,
        poll=0.2,
        what="the spool drained into the repaired lake",
    )
    result, checks = run_doctor(*LENIENT_CATALOG, config_file=deployment.config_file)
    assert result.exit_code == 0, result.output
    assert checks["lake-writable"]["status"] == "warn"  # recovered, the failures stay counted
    assert checks["spool"]["status"] == "warn" and "refused as full" in checks["spool"]["message"]
    assert checks["lake-lag"]["status"] == "ok"
