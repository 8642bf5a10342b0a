"""The nginx configuration in docs/gateway-integration.md, run in a real nginx.

Skipped when no nginx (with the auth_request module) is installed. The configuration block is
read from the document itself, so the documentation is what is tested.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.budgets.rows import calls
from tests.policy.conftest import START, Running
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "gateway-integration.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def upstream() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = b'{"upstream": "ok"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def documented_config() -> str:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```nginx\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


@pytest.fixture
def nginx(tmp_path: Path, running: Running, upstream: str) -> Iterator[str]:
    port = free_port()
    snippet = (
        documented_config()
        .replace("server 127.0.0.1:4320;", f"server 127.0.0.1:{running.server.port};")
        .replace("listen 8080;", f"listen 127.0.0.1:{port};")
        .replace("https://api.openai.com", upstream)
    )
    (tmp_path / "logs").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
master_process off;
error_log {tmp_path}/logs/error.log warn;
pid {tmp_path}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    {snippet}
}}
""",
        encoding="utf-8",
    )
    check = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], check=False, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: accepts(port), timeout=10, poll=0.05, what=f"nginx to listen on port {port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_documented_nginx_config_allows_and_refuses_with_429(running: Running, nginx: str) -> None:
    allowed = requests.post(f"{nginx}/v1/chat/completions", headers={"X-Team": "ml"}, json={}, timeout=5)
    assert allowed.status_code == 200 and allowed.json() == {"upstream": "ok"}
    running.evaluator.consume(calls(1, at=START, cost="130", team="ml"))
    refused = requests.post(f"{nginx}/v1/chat/completions", headers={"X-Team": "ml"}, json={}, timeout=5)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(18 * 86400 - 10 * 3600)
    assert refused.headers["X-Otelcost-Action"] == "block"
    assert "budget exceeded: budget team-monthly (team=ml)" in refused.text
    other_team = requests.post(
        f"{nginx}/v1/chat/completions", headers={"X-Team": "search"}, json={}, timeout=5
    )
    assert other_team.status_code == 200
