"""The kustomize layout in deploy/kubernetes/ agrees with the server it deploys.

kubectl and kustomize are not installed on the CI machines, so nothing here builds or applies the
layout; what can drift is checked from the YAML itself: every document parses and has a kind and
a name, every file a kustomization names exists (and the issue-17 placeholders are not named),
the probes point at the API listener's real paths and port (liveness on ``/healthz``, readiness
on ``/readyz``), the volume is mounted at the data directory the image's environment configures,
the selectors of the Service and the PodDisruptionBudget pick the StatefulSet's pods, and the
environment of base and overlay loads as a valid configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from otelcost.config import load_config
from otelcost.errors import ConfigError
from tests.test_deploy import dockerfile_env, dockerfile_exposed_ports, port_of

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAY = KUBERNETES / "overlays" / "production"
PLACEHOLDERS = OVERLAY / "scale-out-placeholders.yaml"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomization(directory: Path) -> dict[str, Any]:
    (doc,) = documents(directory / "kustomization.yaml")
    assert doc["kind"] == "Kustomization"
    return doc


def base_objects() -> dict[str, dict[str, Any]]:
    objects: dict[str, dict[str, Any]] = {}
    for name in kustomization(BASE)["resources"]:
        for doc in documents(BASE / name):
            assert doc["kind"] not in objects, doc["kind"]
            objects[doc["kind"]] = doc
    return objects


def container(statefulset: dict[str, Any]) -> dict[str, Any]:
    (only,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def test_every_file_parses_into_named_kubernetes_objects() -> None:
    files = sorted(KUBERNETES.rglob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        for doc in documents(path):
            assert doc.get("apiVersion") and doc.get("kind"), path
            if doc["kind"] != "Kustomization":
                assert doc["metadata"]["name"] == "otelcost", path


def test_the_kustomizations_name_only_existing_files_and_never_the_placeholders() -> None:
    assert {doc["kind"] for doc in base_objects().values()} == {
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
    }
    overlay = kustomization(OVERLAY)
    assert overlay["resources"] == ["../../base"]
    named = [patch["path"] for patch in overlay["patches"]]
    assert all((OVERLAY / path).is_file() for path in named)
    assert PLACEHOLDERS.name not in named and PLACEHOLDERS.name not in str(overlay.get("components", []))
    objects = base_objects()
    for patch in overlay["patches"]:
        (patched,) = documents(OVERLAY / patch["path"])
        target = objects[patch["target"]["kind"]]
        assert patched["metadata"]["name"] == target["metadata"]["name"] == patch["target"]["name"]
        assert {c["name"] for c in patched["spec"]["template"]["spec"]["containers"]} == {
            container(target)["name"]
        }


def test_probes_ports_and_scrape_annotations_match_the_server_defaults() -> None:
    objects = base_objects()
    pod = objects["StatefulSet"]["spec"]["template"]
    main = container(objects["StatefulSet"])
    config = load_config(environ={**dockerfile_env(), **env_of(main)})
    api_port = port_of(config.api.listen)
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": api_port}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": api_port}
    assert "startupProbe" not in main  # /healthz already answers while the spool replays
    exposed = {port_of(config.receiver.grpc.listen), port_of(config.receiver.http.listen), api_port}
    assert {port["containerPort"] for port in main["ports"]} == exposed == dockerfile_exposed_ports()
    assert {port["targetPort"] for port in objects["Service"]["spec"]["ports"]} == exposed
    annotations = pod["metadata"]["annotations"]
    assert (int(annotations["prometheus.io/port"]), annotations["prometheus.io/path"]) == (
        api_port,
        "/metrics",
    )


def test_the_data_volume_is_a_claim_mounted_at_the_configured_data_dir() -> None:
    statefulset = base_objects()["StatefulSet"]
    main = container(statefulset)
    config = load_config(environ={**dockerfile_env(), **env_of(main)})
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    (mount,) = main["volumeMounts"]
    assert mount["name"] == claim["metadata"]["name"]
    assert Path(mount["mountPath"]) == config.data_dir
    # The spool and the lake are both under the data dir, so both are on the claim.
    assert config.spool_dir.parent == config.lake_dir.parent == config.data_dir
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert statefulset["spec"]["replicas"] == 1


def test_selectors_pick_the_pods_and_the_disruption_budget_protects_the_one_replica() -> None:
    objects = base_objects()
    labels = objects["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        objects["StatefulSet"]["spec"]["selector"]["matchLabels"],
        objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        objects["Service"]["spec"]["selector"],
    ):
        assert selector.items() <= labels.items()
    pdb = objects["PodDisruptionBudget"]["spec"]
    assert pdb["minAvailable"] == 1 and pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def _memory_mib(value: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    return int(value[:-2]) * units[value[-2:]]


@pytest.mark.parametrize("path", [BASE / "statefulset.yaml", OVERLAY / "resources.yaml"])
def test_resources_request_cpu_and_memory_within_the_limit(path: Path) -> None:
    (statefulset,) = documents(path)
    resources = container(statefulset)["resources"]
    assert float(resources["requests"]["cpu"]) >= 1
    assert _memory_mib(resources["requests"]["memory"]) <= _memory_mib(resources["limits"]["memory"])


def test_the_overlay_environment_is_a_valid_configuration() -> None:
    (patched,) = documents(OVERLAY / "resources.yaml")
    env = {
        **dockerfile_env(),
        **env_of(container(base_objects()["StatefulSet"])),
        **env_of(container(patched)),
    }
    config = load_config(environ=env)
    workers = config.receiver.workers
    assert workers == 2
    # deploy/README.md: N workers want N+1 CPUs.
    assert float(container(patched)["resources"]["requests"]["cpu"]) == workers + 1


def test_the_issue_17_placeholders_are_marked_and_not_available_yet() -> None:
    text = PLACEHOLDERS.read_text()
    assert text.startswith("# NOT AVAILABLE YET (issue 17)")
    (patched,) = documents(PLACEHOLDERS)
    placeholders = env_of(container(patched))
    lines = text.splitlines()

    def comment_above(name: str) -> str:
        return lines[next(i for i, line in enumerate(lines) if f"name: {name}" in line) - 1]

    # The Redis budget store is built: its placeholder loads and says so.
    store = placeholders["OTELCOST_BUDGETING__STORE"]
    assert "Available" in comment_above("OTELCOST_BUDGETING__STORE")
    assert load_config(environ={**dockerfile_env(), "OTELCOST_BUDGETING__STORE": store}).budgeting.shared
    # lake.root exists; an s3:// root loads (otelcost sql, lake compact, lake retention), but serve,
    # which needs config.lake_dir, still refuses it.
    assert "not available yet (issue 17)" in comment_above("OTELCOST_LAKE__ROOT")
    # When serve runs on S3 this loads: then update the placeholders and docs/operations.md.
    s3_root = load_config(
        environ={**dockerfile_env(), "OTELCOST_LAKE__ROOT": placeholders["OTELCOST_LAKE__ROOT"]}
    )
    with pytest.raises(ConfigError, match="only otelcost sql, lake compact and lake retention work"):
        _ = s3_root.lake_dir


def test_the_single_file_manifest_agrees_with_the_base() -> None:
    legacy = {doc["kind"]: doc for doc in documents(KUBERNETES / "otelcost.yaml")}
    base = base_objects()
    for probe in ("livenessProbe", "readinessProbe"):
        assert (
            container(legacy["StatefulSet"])[probe]["httpGet"]
            == container(base["StatefulSet"])[probe]["httpGet"]
        )
    assert legacy["Service"]["spec"]["ports"] == base["Service"]["spec"]["ports"]
