"""A real LiteLLM proxy on loopback, started from deploy/litellm/config.yaml.

The deployed configuration is loaded and only what a test machine needs is changed: the model's
``api_base`` points at the loopback fake provider (tests/normalize/fake_providers.py), and a
custom auth module (written next to the configuration) stands in for LiteLLM's virtual keys,
which need a database: it maps each test API key to a team, as a virtual key of that team would.
The proxy runs as a subprocess (``litellm --config``), exporting its OTel spans to otelcost.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOYED_CONFIG = ROOT / "deploy" / "litellm" / "config.yaml"
MASTER_KEY = "sk-otelcost-test-master-key-0123456789abcdef"

AUTH_MODULE = """
from litellm.proxy._types import UserAPIKeyAuth

KEYS = {KEYS!r}


async def user_api_key_auth(request, api_key):
    token = api_key.removeprefix("Bearer ").strip()
    if token not in KEYS:
        raise Exception("unknown API key")
    team = KEYS[token]
    return UserAPIKeyAuth(api_key=token, team_id="id-" + team, team_alias=team, key_alias="app-" + team)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def litellm_command() -> list[str] | None:
    """``litellm`` of this interpreter's environment, None when it is not installed."""
    found = shutil.which("litellm", path=str(Path(sys.executable).parent))
    return [found] if found else None


def proxy_config(provider_url: str, directory: Path, keys: Mapping[str, str]) -> Path:
    """The deployed config with the fake provider and the test keys; returns its path."""
    config: dict[str, Any] = yaml.safe_load(DEPLOYED_CONFIG.read_text())
    for model in config["model_list"]:
        model["litellm_params"]["api_base"] = f"{provider_url}/v1"
        model["litellm_params"]["api_key"] = "sk-fake-provider"
    config["general_settings"]["custom_auth"] = "otelcost_test_keys.user_api_key_auth"
    (directory / "otelcost_test_keys.py").write_text(AUTH_MODULE.replace("{KEYS!r}", repr(dict(keys))))
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def litellm_proxy(
    config: Path, *, otlp_http_port: int, api_url: str, extra_env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Start ``litellm --config`` on a free loopback port; yields its base URL."""
    command = litellm_command()
    assert command is not None
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELCOST_"))},
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price map from the internet
        # As deploy/litellm/config.yaml says: LiteLLM's OpenTelemetry v2 spans over OTLP/HTTP.
        "LITELLM_OTEL_V2": "true",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_http_port}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTELCOST_LITELLM_URL": api_url,
        "PYTHONPATH": str(config.parent),
        **(extra_env or {}),
    }
    log = (config.parent / "litellm.log").open("wb")
    process = subprocess.Popen(
        [*command, "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
        cwd=config.parent,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise AssertionError(f"litellm exited: {(config.parent / 'litellm.log').read_text()[-3000:]}")
            try:
                if requests.get(f"{url}/health/liveliness", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"litellm did not start: {(config.parent / 'litellm.log').read_text()[-3000:]}"
                )
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
