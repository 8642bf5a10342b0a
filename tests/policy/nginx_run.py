"""A real nginx running the ``nginx`` block of docs/gateway-integration.md, for the tests that
put a gateway in front of otelcost (``tests/policy/test_nginx.py``, ``tests/security/test_roles.py``).
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.waiting import wait_until

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "gateway-integration.md"


def documented_config() -> str:
    """The page's one ``nginx`` block, as written."""
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```nginx\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


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


@contextmanager
def nginx_serving(directory: Path, block: str, *, api_address: str, upstream: str) -> Iterator[str]:
    """nginx with ``block`` pointed at otelcost on ``api_address`` (HOST:PORT) and the provider at
    ``upstream``, listening on a free loopback port; yields its URL, stops it on exit."""
    port = free_port()
    block = (
        block.replace("server 127.0.0.1:4320;", f"server {api_address};")
        .replace("listen 8080;", f"listen 127.0.0.1:{port};")
        .replace("https://api.openai.com", upstream)
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "logs").mkdir()
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
master_process off;
error_log {directory}/logs/error.log warn;
pid {directory}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    {block}
}}
""",
        encoding="utf-8",
    )
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(directory), "-c", str(conf)], check=False, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(["nginx", "-p", str(directory), "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: accepts(port), timeout=10, poll=0.05, what=f"nginx to listen on port {port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def provider_double() -> Iterator[tuple[str, list[str]]]:
    """The LLM provider behind the gateway: answers every POST 200 ``{"upstream": "ok"}``;
    yields its URL and the ``Authorization`` headers it was sent, in order."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append(self.headers.get("Authorization", ""))
            body = b'{"upstream": "ok"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
