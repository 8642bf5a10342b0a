"""One lake of known traffic for the reconciliation tests, built once per session.

Sent through the real pipeline (``tests/reports/traffic.build_lake``: the OpenTelemetry SDK over
OTLP/gRPC to a real ``otelcost serve``). Every number below is priced by hand from the shipped
catalog's published rates (USD per 1M tokens), and the invoice fixtures in ``fixtures/`` are
written from the same numbers:

OpenAI (``provider = openai``), 2026-11-02 .. 2026-11-04:
    * support-bot, gpt-4o-mini (0.15 input / 0.075 cached / 0.60 output): 10 calls a day of
      100,000 input (20,000 of them cache reads) and 10,000 output. A day: input 800,000 =
      0.12, cache_read 200,000 = 0.015, output 100,000 = 0.06; 0.195 USD.
    * checkout, gpt-4o (2.50 / 1.25 / 10.00): 4 calls a day of 20,000 input and 5,000 output
      (1,000 of them reasoning: counted as output). A day: input 80,000 = 0.20, output 20,000 =
      0.20; 0.40 USD.
    * eval-runner, gpt-4o, 2026-11-03 only: 2 calls of 10,000 input, 1,000 output: input
      20,000 = 0.05, output 2,000 = 0.02; 0.07 USD (test traffic).
    Lake: 0.595 + 0.665 + 0.595 = 1.855 USD.
Anthropic (``anthropic``), claude-sonnet-4-5 (3.00 / 0.30 read / 3.75 write / 15.00):
    * code-review, 2026-11-02 and 2026-11-03: 5 calls a day of 20,000 input (5,000 cache
      reads, 2,000 cache writes) and 2,000 output. A day: input 65,000 = 0.195, cache_read
      25,000 = 0.0075, cache_write 10,000 = 0.0375, output 10,000 = 0.15; 0.39 USD.
    * labs, claude-mythos-9 (no catalog entry: unpriced, 0 USD in the lake), 2026-11-02:
      2 calls of 10,000 input, 1,000 output.
Bedrock (``aws.bedrock``), 2026-11-02:
    * us.anthropic.claude-sonnet-4-5-20250929-v1:0 (regional: 3.30 / 0.33 / 16.50): 4 calls of
      10,000 input (2,000 cache reads), 1,000 output: input 32,000 = 0.1056, cache_read 8,000 =
      0.00264, output 4,000 = 0.066.
    * global.anthropic.claude-sonnet-4-5-20250929-v1:0 (3.00 / 15.00): 2 calls of 10,000 input,
      1,000 output: input 20,000 = 0.06, output 2,000 = 0.03.
Azure OpenAI (``azure.ai.openai``), 2026-11-02:
    * deployment "chat-prod" serving gpt-4o-mini-2024-07-18: 5 calls of 100,000 input (40,000
      cached), 10,000 output: input 300,000 = 0.045, cache_read 200,000 = 0.015, output 50,000 =
      0.03.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from otelcost.config import Config
from tests.reports.traffic import Call, build_lake, day_start

FIXTURES = Path(__file__).parent / "fixtures"
NOVEMBER = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def _at(day: int, index: int) -> datetime:
    return day_start(date(2026, 11, day)) + timedelta(hours=9, minutes=index)


def known_traffic() -> list[Call]:
    calls: list[Call] = []
    for day in (2, 3, 4):
        for i in range(10):
            calls.append(
                Call(
                    _at(day, i),
                    "support-bot",
                    "care",
                    "triage",
                    model="gpt-4o-mini",
                    input_tokens=100_000,
                    output_tokens=10_000,
                    cache_read_tokens=20_000,
                )
            )
        for i in range(4):
            calls.append(
                Call(
                    _at(day, 20 + i),
                    "checkout",
                    "payments",
                    "explain",
                    model="gpt-4o",
                    input_tokens=20_000,
                    output_tokens=5_000,
                    attributes=(("gen_ai.usage.reasoning.output_tokens", 1_000),),
                )
            )
    for i in range(2):
        calls.append(
            Call(
                _at(3, 40 + i),
                "eval-runner",
                "platform",
                "evals",
                model="gpt-4o",
                input_tokens=10_000,
                output_tokens=1_000,
                environment="test",
            )
        )
    for day in (2, 3):
        for i in range(5):
            calls.append(
                Call(
                    _at(day, 50 + i),
                    "code-review",
                    "platform",
                    "review",
                    model="claude-sonnet-4-5",
                    input_tokens=20_000,
                    output_tokens=2_000,
                    cache_read_tokens=5_000,
                    attributes=(("gen_ai.usage.cache_creation.input_tokens", 2_000),),
                )
            )
    unpriced = (("gen_ai.request.model", "claude-mythos-9"), ("gen_ai.response.model", "claude-mythos-9"))
    for i in range(2):
        calls.append(
            Call(
                _at(2, 60 + i),
                "labs",
                "research",
                "probe",
                model="claude-sonnet-4-5",
                input_tokens=10_000,
                output_tokens=1_000,
                attributes=unpriced,
            )
        )
    for i in range(6):
        profile = "us" if i < 4 else "global"
        calls.append(
            Call(
                _at(2, 70 + i),
                "docs-bot",
                "support",
                "answer",
                model="claude-sonnet-4-5",
                input_tokens=10_000,
                output_tokens=1_000,
                cache_read_tokens=2_000 if i < 4 else 0,
                attributes=(
                    ("gen_ai.provider.name", "aws.bedrock"),
                    ("gen_ai.request.model", f"{profile}.anthropic.claude-sonnet-4-5-20250929-v1:0"),
                    ("gen_ai.response.model", f"{profile}.anthropic.claude-sonnet-4-5-20250929-v1:0"),
                ),
            )
        )
    for i in range(5):
        calls.append(
            Call(
                _at(2, 80 + i),
                "chat-web",
                "growth",
                "chat",
                model="gpt-4o-mini",
                input_tokens=100_000,
                output_tokens=10_000,
                cache_read_tokens=40_000,
                attributes=(
                    ("gen_ai.provider.name", "azure.ai.openai"),
                    ("gen_ai.request.model", "chat-prod"),
                    ("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
                ),
            )
        )
    return calls


@dataclass(frozen=True)
class Lake:
    config: Config

    @property
    def dir(self) -> Path:
        return self.config.lake_dir


@pytest.fixture(scope="session")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return Lake(build_lake(tmp_path_factory.mktemp("reconcile") / "data", known_traffic()))
