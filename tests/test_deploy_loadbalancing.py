"""deploy/otelcol-loadbalancing.yaml routes traces to otelcost instances as documented, and the
lakes of several instances can be read together as docs/operations.md says.

No Collector binary runs on the CI machines (deploy/otelcol-forward.yaml is not run either), so
the Collector configuration is parsed, not started: the pipeline wiring, the routing key, the
ports of the instances (from otelcost's own receiver model) and every key against an allow-list
taken from the exporter's source. The commented `dns` and `k8s` resolver variants are parsed
too, so they stay valid when uncommented.

The multi-lake query is real: two ``otelcost serve`` processes each write their own lake, and
plain DuckDB reads both through one glob.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import duckdb
import pytest
import yaml

from otelcost.lake.query import run_query
from otelcost.receiver.config import GrpcReceiverConfig
from tests.reports.traffic import Call, build_lake

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CONFIG_FILE = DEPLOY / "otelcol-loadbalancing.yaml"
EXPORTER = "loadbalancing/otelcost"

# Keys the loadbalancing exporter accepts, from exporter/loadbalancingexporter/config.go of
# github.com/open-telemetry/opentelemetry-collector-contrib (Config, ResolverSettings,
# StaticResolver, DNSResolver, K8sSvcResolver): the top level squashes exporterhelper's
# TimeoutConfig (`timeout`) and has `retry_on_failure` (configretry.BackOffConfig) and
# `sending_queue` (exporterhelper.QueueBatchConfig). Only keys of released upstream versions are
# listed, not the newer routing algorithms some forks add.
EXPORTER_KEYS: Final = {
    "routing_key",
    "routing_attributes",
    "protocol",
    "resolver",
    "timeout",
    "retry_on_failure",
    "sending_queue",
}
RESOLVER_KEYS: Final = {
    "static": {"hostnames"},
    "dns": {"hostname", "port", "interval", "timeout"},
    "k8s": {"service", "ports", "timeout", "return_hostnames"},
    "aws_cloud_map": {"namespace", "service_name", "health_status", "interval", "timeout", "port"},
}
# configretry.BackOffConfig and exporterhelper.QueueBatchConfig (go.opentelemetry.io/collector).
RETRY_KEYS: Final = {
    "enabled",
    "initial_interval",
    "randomization_factor",
    "multiplier",
    "max_interval",
    "max_elapsed_time",
}
QUEUE_KEYS: Final = {
    "enabled",
    "num_consumers",
    "queue_size",
    "storage",
    "block_on_overflow",
    "sizer",
    "wait_for_result",
    "batch",
}
# The OTLP exporter template (otlpexporter.Config: configgrpc.ClientConfig squashed, timeout,
# retry, queue). `endpoint` is deliberately absent: the README says the resolver sets it.
OTLP_KEYS: Final = {
    "timeout",
    "tls",
    "headers",
    "compression",
    "keepalive",
    "balancer_name",
    "authority",
    "auth",
    "wait_for_ready",
    "retry_on_failure",
    "sending_queue",
}
# extension/storage/filestorage/config.go.
FILE_STORAGE_KEYS: Final = {
    "directory",
    "timeout",
    "compaction",
    "fsync",
    "create_directory",
    "directory_permissions",
}


def collector_config() -> dict[str, Any]:
    loaded = yaml.safe_load(CONFIG_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def commented_variants() -> dict[str, dict[str, Any]]:
    """The commented resolver blocks after ``# variant: NAME`` lines, uncommented and parsed."""
    variants: dict[str, dict[str, Any]] = {}
    lines = CONFIG_FILE.read_text().splitlines()
    for index, line in enumerate(lines):
        marker = re.fullmatch(r"(\s*)# variant: (\w+)", line)
        if not marker:
            continue
        indent = marker.group(1)
        block: list[str] = []
        for following in lines[index + 1 :]:
            if not following.startswith(indent + "# ") or "# variant:" in following:
                break
            block.append(following[len(indent) + 2 :])
        variants[marker.group(2)] = yaml.safe_load("\n".join(block))
    return variants


def otelcost_grpc_port() -> int:
    return int(GrpcReceiverConfig().listen.rsplit(":", 1)[1])


def unknown_keys(section: dict[str, Any], allowed: set[str], where: str) -> list[str]:
    return [f"{where}.{key}" for key in section if key not in allowed]


def test_the_pipeline_sends_the_otlp_receiver_to_the_loadbalancing_exporter() -> None:
    config = collector_config()
    pipelines = config["service"]["pipelines"]
    (pipeline,) = [p for name, p in pipelines.items() if name.split("/")[0] == "traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["exporters"] == [EXPORTER]
    assert set(pipeline["processors"]) <= set(config["processors"])
    assert "grpc" in config["receivers"]["otlp"]["protocols"]


def test_traces_are_routed_by_trace_id() -> None:
    exporter = collector_config()["exporters"][EXPORTER]
    assert exporter["routing_key"] == "traceID"


def test_every_instance_is_addressed_on_otelcosts_otlp_grpc_port() -> None:
    port = otelcost_grpc_port()
    resolver = collector_config()["exporters"][EXPORTER]["resolver"]
    hostnames = resolver["static"]["hostnames"]
    assert len(hostnames) == 3
    assert len(set(hostnames)) == len(hostnames)
    assert [host for host in hostnames if int(host.rsplit(":", 1)[1]) != port] == []
    variants = commented_variants()
    assert set(variants) == {"dns", "k8s"}
    assert int(variants["dns"]["dns"]["port"]) == port
    assert variants["k8s"]["k8s"]["ports"] == [port]


def test_the_k8s_variant_names_the_service_of_the_kubernetes_base() -> None:
    service = yaml.safe_load((DEPLOY / "kubernetes" / "base" / "service.yaml").read_text())
    name = commented_variants()["k8s"]["k8s"]["service"].split(".")[0]
    assert name == service["metadata"]["name"]
    assert otelcost_grpc_port() in {port["port"] for port in service["spec"]["ports"]}


def test_no_key_is_unknown_to_the_exporter_or_the_storage_extension() -> None:
    config = collector_config()
    exporter = config["exporters"][EXPORTER]
    problems = unknown_keys(exporter, EXPORTER_KEYS, EXPORTER)
    problems += unknown_keys(exporter["retry_on_failure"], RETRY_KEYS, "retry_on_failure")
    problems += unknown_keys(exporter["sending_queue"], QUEUE_KEYS, "sending_queue")
    assert set(exporter["protocol"]) == {"otlp"}
    otlp = exporter["protocol"]["otlp"]
    problems += unknown_keys(otlp, OTLP_KEYS, "protocol.otlp")
    problems += unknown_keys(otlp["retry_on_failure"], RETRY_KEYS, "protocol.otlp.retry_on_failure")
    problems += unknown_keys(otlp["sending_queue"], QUEUE_KEYS, "protocol.otlp.sending_queue")
    resolvers = [exporter["resolver"], *commented_variants().values()]
    for resolver in resolvers:
        for kind, settings in resolver.items():
            assert kind in RESOLVER_KEYS, kind
            problems += unknown_keys(settings, RESOLVER_KEYS[kind], f"resolver.{kind}")
    for name, settings in config["extensions"].items():
        assert name.split("/")[0] == "file_storage", name
        problems += unknown_keys(settings, FILE_STORAGE_KEYS, name)
    assert problems == []


def test_the_queue_is_on_disk_and_the_per_instance_exporters_do_not_queue_in_memory() -> None:
    config = collector_config()
    exporter = config["exporters"][EXPORTER]
    storage = exporter["sending_queue"]["storage"]
    assert storage in config["extensions"]
    assert storage in config["service"]["extensions"]
    assert config["extensions"][storage]["fsync"] is True
    assert exporter["protocol"]["otlp"]["sending_queue"] == {"enabled": False}
    assert exporter["retry_on_failure"]["enabled"] is True


def _calls(service: str, count: int) -> list[Call]:
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    return [
        Call(ts=start + timedelta(minutes=i), service=service, team="platform", feature="lb")
        for i in range(count)
    ]


@pytest.mark.slow
def test_plain_duckdb_reads_the_lakes_of_several_instances_through_one_glob(tmp_path: Path) -> None:
    """docs/operations.md, "Running several instances": `otelcost sql` reads one lake; plain
    DuckDB reads several with one glob over the instances' data directories."""
    counts = {"otelcost-0": 3, "otelcost-1": 5}
    lakes = {name: build_lake(tmp_path / name, _calls(name, n)).lake_dir for name, n in counts.items()}
    for name, lake in lakes.items():
        only = run_query(lake, "SELECT count(*) AS n FROM llm_calls").column("n")[0].as_py()
        assert only == counts[name]
    glob = str(tmp_path / "otelcost-*" / "lake" / "llm_calls" / "*" / "*.parquet")
    with duckdb.connect(":memory:") as connection:
        rows = connection.execute(
            f"SELECT service, count(*) AS n, min(date) AS day FROM read_parquet('{glob}', "
            "hive_partitioning = true, union_by_name = true, hive_types = {'date': DATE}) "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [(service, n) for service, n, _ in rows] == sorted(counts.items())
    assert {day for _, _, day in rows} == {datetime(2026, 3, 2).date()}
