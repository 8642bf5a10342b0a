"""One lake of known traffic shared by the showback, unit-economics, optimize and API tests.

Built once per test session through the real pipeline (``traffic.build_lake``): two months of
the steady company (October and November 2026) plus a few planted groups whose numbers the
tests compute by hand:

* ``triage-agent`` runs: traces of three calls each, half of them carrying
  ``app.outcome=resolved_ticket``;
* ``sku-tagger``: a background job on gpt-4o with short answers and no user or session (a
  right-sizing and a batch candidate);
* ``legacy``: a team that spent in October and not in November;
* ``o'brien``: a team whose name needs SQL quoting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from otelcost.config import Config, report_context
from otelcost.reports import ReportContext
from otelcost.server import BackgroundServer
from tests.e2e.conftest import loopback_config
from tests.reports.traffic import Call, build_lake, day_start, steady_company

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def planted() -> list[Call]:
    calls: list[Call] = []
    for index in range(40):  # 40 triage runs in November, 3 calls each
        start = day_start(date(2026, 11, 1) + timedelta(days=index % 28)) + timedelta(hours=10, minutes=index)
        outcome = (("app.outcome", "resolved_ticket"),) if index % 2 == 0 else ()
        for step in range(3):
            calls.append(
                Call(
                    ts=start + timedelta(seconds=5 * step),
                    service="support-bot",
                    team="customer-care",
                    feature="auto-triage",
                    model="gpt-4o-mini",
                    input_tokens=2_000 + 100 * step,
                    output_tokens=150,
                    tenant="tenant-00",
                    user="user-900",
                    session=f"triage-{index}",
                    workflow="triage-agent",
                    trace=f"triage-{index}",
                    attributes=outcome,
                )
            )
    for index in range(60):  # a nightly job: gpt-4o, 40-token answers, nobody waiting
        calls.append(
            Call(
                ts=day_start(date(2026, 11, 1) + timedelta(days=index % 30))
                + timedelta(hours=2, minutes=index),
                service="catalog-jobs",
                team="merchandising",
                feature="sku-tagger",
                model="gpt-4o",
                input_tokens=500,
                output_tokens=40,
            )
        )
    for index in range(10):
        calls.append(
            Call(
                ts=day_start(date(2026, 10, 3 + index)) + timedelta(hours=9),
                service="old-app",
                team="legacy",
                feature="old-feature",
                model="claude-haiku-4-5",
                input_tokens=800,
                output_tokens=100,
            )
        )
        calls.append(
            Call(
                ts=day_start(date(2026, 11, 3 + index)) + timedelta(hours=9),
                service="irish-app",
                team="o'brien",
                feature="blarney",
                model="gpt-4o-mini",
                input_tokens=700,
                output_tokens=70,
                environment="staging",
            )
        )
    return calls


@dataclass(frozen=True)
class Company:
    calls: list[Call]
    config: Config

    @property
    def context(self) -> ReportContext:
        return replace(report_context(self.config), now=lambda: NOW)

    def in_month(self, month: int) -> list[Call]:
        return [call for call in self.calls if call.ts.year == 2026 and call.ts.month == month]


@pytest.fixture(scope="session")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Company]:
    calls = steady_company(date(2026, 10, 1), 61) + planted()
    data_dir: Path = tmp_path_factory.mktemp("company")
    yield Company(calls, build_lake(data_dir, calls))


@contextmanager
def api_over(data_dir: Path) -> Iterator[httpx.Client]:
    """A real ``otelcost serve`` over the lake in ``data_dir``, and an HTTP client of its API."""
    with BackgroundServer(loopback_config(data_dir)) as running:
        assert running.server.api_port is not None
        with httpx.Client(base_url=f"http://127.0.0.1:{running.server.api_port}", timeout=30) as client:
            yield client
