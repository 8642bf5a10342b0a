"""``otelcost serve`` as a subprocess on free loopback ports, for the benchmarks.

The server runs with its default configuration (pipelines/default.yaml) except for the listen
addresses, a temporary data directory, ``log_level: warning`` and the budgets a benchmark asks
for, so whatever the default pipeline does (a durable spool, once it is wired in) is measured.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

__all__ = ["ServerProcess", "cpu_seconds", "free_port", "peak_rss_bytes", "process_tree", "read_metrics"]

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_bytes(pid: int) -> int:
    """Peak resident set size of a live process (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc status")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live children (a server's receiver workers), from /proc."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return [pid, *children]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process (all its threads) has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def read_metrics(url: str) -> dict[str, float]:
    """The unlabelled samples of a Prometheus text page (labelled ones summed by name)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0]
        values[name] = values.get(name, 0.0) + float(value)
    return values


class ServerProcess:
    """``python -m otelcost serve`` with a temporary data dir; stopped with SIGTERM on exit."""

    def __init__(
        self,
        *,
        budgets: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
        root: Path | None = None,
        workers: int = 0,
    ) -> None:
        self.root = root or ROOT
        """Where ``python -m otelcost`` runs: another checkout measures other code (before/after)."""
        self.tmp = tempfile.TemporaryDirectory(prefix="otelcost-bench-")
        self.data_dir = Path(self.tmp.name) / "data"
        self.grpc_port, self.http_port, self.api_port = free_port(), free_port(), free_port()
        config: dict[str, Any] = {
            "data_dir": str(self.data_dir),
            "log_level": "warning",
            "receiver": {
                "grpc": {"listen": f"127.0.0.1:{self.grpc_port}"},
                "http": {"listen": f"127.0.0.1:{self.http_port}"},
                **({"workers": workers} if workers else {}),  # older trees lack the key
            },
            "api": {"listen": f"127.0.0.1:{self.api_port}"},
            "budgets": budgets or [],
            **(extra or {}),
        }
        self.config_path = Path(self.tmp.name) / "otelcost.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    def __enter__(self) -> ServerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "otelcost", "serve", "--config", str(self.config_path)], cwd=self.root
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"otelcost serve exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.api}/readyz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("otelcost serve did not become ready in 60 s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def metrics(self) -> dict[str, float]:
        return read_metrics(f"{self.api}/metrics")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.tmp.cleanup()
