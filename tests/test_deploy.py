"""The files in deploy/ agree with the code they deploy.

No container engine or cluster runs on the CI machines, so the images are not built here. What
can drift silently is checked instead: the image's environment is a valid configuration that
listens on the ports it exposes, the Kubernetes manifest probes and scrapes endpoints the server
has, and the Collector's filter names only attribute keys the normalizer recognizes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from otelcost.config import load_config
from otelcost.normalize.conventions import MARKER_BITS, USAGE_KEYS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def dockerfile_env() -> dict[str, str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line))
    return env


def dockerfile_exposed_ports() -> set[int]:
    (line,) = [
        line for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line.startswith("EXPOSE ")
    ]
    return {int(port) for port in line.split()[1:]}


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def test_the_image_environment_is_a_valid_configuration_listening_on_exposed_ports() -> None:
    env = dockerfile_env()
    assert env, "no ENV lines found in deploy/Dockerfile"
    config = load_config(ROOT / "pipelines" / "default.yaml", environ=env)
    listens = [config.receiver.grpc.listen, config.receiver.http.listen, config.api.listen]
    assert all(listen.startswith("0.0.0.0:") for listen in listens), listens
    assert {port_of(listen) for listen in listens} == dockerfile_exposed_ports()
    assert str(config.data_dir) == "/data"


def kubernetes_documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / "otelcost.yaml").read_text()) if doc]


def test_the_kubernetes_manifest_uses_the_image_ports_and_real_endpoints() -> None:
    docs = {doc["kind"]: doc for doc in kubernetes_documents()}
    pod = docs["StatefulSet"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    exposed = dockerfile_exposed_ports()
    assert {port["containerPort"] for port in container["ports"]} == exposed
    assert {port["targetPort"] for port in docs["Service"]["spec"]["ports"]} == exposed
    api_port = port_of(load_config(environ=dockerfile_env()).api.listen)
    # The endpoints tests/e2e/test_serve_process.py checks on a running server.
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert container[probe]["httpGet"] == {"path": path, "port": api_port}
    annotations = pod["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == api_port
    assert annotations["prometheus.io/path"] == "/metrics"
    assert container["volumeMounts"][0]["mountPath"] == "/data"


def test_the_collector_filter_names_only_keys_the_normalizer_recognizes() -> None:
    config = yaml.safe_load((DEPLOY / "otelcol-forward.yaml").read_text())
    (condition,) = config["processors"]["filter/llm_only"]["traces"]["span"]
    keys = re.findall(r'attributes\["([^"]+)"\]', condition)
    assert len(keys) >= 5
    known = set(USAGE_KEYS) | set(MARKER_BITS)
    assert [key for key in keys if key not in known] == []
