"""The generated protobuf module is current, the public surfaces are pinned, lifecycles hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import otelcost.policy
import otelcost.policy.client
import otelcost.policy.decisions
from otelcost.budgets.evaluator import Evaluator
from otelcost.policy import protogen
from otelcost.stages import Sink


def test_generated_protobuf_module_is_current(tmp_path: Path) -> None:
    for fresh in protogen.generate(tmp_path):
        committed = protogen.OUTPUT_ROOT / fresh.relative_to(tmp_path)
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"{committed} is out of date: run python -m otelcost.policy.protogen"
        )


def test_gateway_client_surface_is_pinned() -> None:
    assert otelcost.policy.client.__all__ == ["HttpResponse", "PolicyClient", "Transport", "UrllibTransport"]
    assert otelcost.policy.decisions.__all__ == [
        "Action",
        "CheckResult",
        "Decision",
        "Exemption",
        "ScopeValue",
        "Snapshot",
        "format_scope",
    ]


def test_policy_sits_below_budgets_and_the_api() -> None:
    """Gateways import the client cheaply, and the budgets may import the decision model."""
    package = Path(otelcost.policy.__path__[0])
    modules = sorted(f"otelcost.policy.{path.stem}" for path in package.glob("*.py"))
    above = ("aiohttp", "otelcost.budgets", "otelcost.api", "otelcost.server")
    probe = (
        f"import sys\nfor name in {modules!r}: __import__(name)\n"
        f"print(*sorted(m for m in sys.modules if m.startswith({above!r})))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == []


def test_the_evaluator_is_a_sink_with_a_safe_lifecycle() -> None:
    evaluator = Evaluator(budgets=[])
    assert isinstance(evaluator, Sink)
    evaluator.shutdown()  # before start
    evaluator.start()
    evaluator.shutdown()
    evaluator.shutdown()  # twice
