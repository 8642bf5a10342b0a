"""``otelcost doctor`` on a server whose budget totals live in a real redis-server, killed and
started again: the budget-store check fails while Redis is away, and passes once it is back."""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml

from otelcost.config import load_config
from otelcost.server import BackgroundServer
from tests.doctor.test_doctor import LENIENT_CATALOG, free_port, run_doctor
from tests.redis_run import RedisServer
from tests.waiting import wait_until


def test_the_budget_store_check_follows_redis(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    config_file = tmp_path / "otelcost.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "receiver": {
                    "grpc": {"listen": f"127.0.0.1:{free_port()}"},
                    "http": {"listen": f"127.0.0.1:{free_port()}"},
                },
                "api": {"listen": f"127.0.0.1:{free_port()}"},
                "budgeting": {
                    "store": redis_server.url,
                    "store_prefix": f"doc{secrets.token_hex(3)}",
                    "store_timeout": "200ms",
                },
            }
        )
    )
    try:
        with BackgroundServer(load_config(config_file, environ={})):
            _, checks = run_doctor(*LENIENT_CATALOG, config_file=config_file)
            assert checks["budget-store"]["status"] == "ok"
            assert "shared through Redis" in checks["budget-store"]["message"]
            redis_server.kill()

            def failing() -> dict[str, str] | None:
                _, found = run_doctor(*LENIENT_CATALOG, config_file=config_file)
                return found["budget-store"] if found["budget-store"]["status"] == "fail" else None

            check = wait_until(failing, timeout=10, poll=0.2, what="the budget-store check to fail")
            assert check is not None
            assert "Redis cannot be reached" in check["message"] and check["fix"]
            redis_server.start()
            wait_until(
                lambda: (
                    run_doctor(*LENIENT_CATALOG, config_file=config_file)[1]["budget-store"]["status"] == "ok"
                ),
                timeout=15,
                poll=0.2,
                what="the check to pass again",
            )
    finally:
        redis_server.stop()
