"""Resident memory of the budget evaluator per active scope instance.

Run::

    python -m benchmarks.budget_memory                      # 1,000,000 instances
    python -m benchmarks.budget_memory --instances 200000

One budget per instance key (``scope: {user_id: "*"}``, a daily window, thresholds at 80% and
100%), fed priced calls of ``--instances`` distinct users in batches of ``--batch`` rows, each
call with its own trace and span id (so the de-duplication index grows too: its share is
printed from its own counter). Measured in this process: RSS (``/proc/self/status`` ``VmRSS``)
after building the evaluator and one warm-up batch, then after every user has spent once, and
once more after a second call per user (instances already open: what a second call costs).
The evaluator runs without threads (``run_threads=False``); a snapshot is published after the
last batch so the decisions of every instance exist too.
"""

from __future__ import annotations

import argparse
import gc
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.budgets.evaluator import Evaluator
from otelcost.schema import RECORD_SCHEMA

START = datetime(2026, 12, 7, 9, tzinfo=UTC)

_TEMPLATE: dict[str, Any] = {
    "ts": START,
    "end_ts": START + timedelta(milliseconds=100),
    "received_at": START + timedelta(seconds=1),
    "duration_ms": 100.0,
    "span_name": "chat gpt-4o",
    "service": "svc",
    "environment": "production",
    "scope_name": "bench",
    "convention": "gen_ai",
    "provider": "openai",
    "operation": "chat",
    "request_model": "gpt-4o",
    "response_model": "gpt-4o",
    "model": "gpt-4o",
    "input_tokens": 100,
    "output_tokens": 50,
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "reasoning_tokens": 0,
    "cost_usd": Decimal("0.00075"),
    "effective_cost_usd": Decimal("0.00075"),
    "input_cost_usd": Decimal("0.00025"),
    "cache_read_cost_usd": Decimal(0),
    "cache_write_cost_usd": Decimal(0),
    "output_cost_usd": Decimal("0.0005"),
    "reasoning_cost_usd": Decimal(0),
    "pricing_status": "priced",
    "attribution_status": "complete",
    "status": "ok",
    "team": "team-0",
    "trace_id": "0" * 32,
    "span_id": "0" * 16,
}


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _batch(template: pa.Table, first_user: int, rows: int, round_no: int) -> pa.Table:
    table = template.take(pa.array([0] * rows))
    users = range(first_user, first_user + rows)
    changes = {
        "user_id": pa.array([f"user-{u:07d}" for u in users]),
        "trace_id": pa.array([f"{round_no:08x}{u:024x}" for u in users]),
        "span_id": pa.array([f"{u:016x}" for u in users]),
    }
    for name, values in changes.items():
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.schema.field(index), values)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    args = parser.parse_args()

    budget = BudgetConfig.model_validate(
        {
            "name": "user-daily",
            "scope": {"user_id": "*"},
            "window": "day",
            "limit": 1,
            "thresholds": [{"at": 0.8, "action": "notify"}, {"at": 1.0, "action": "block"}],
        }
    )
    clock = int(START.timestamp() * 1e9) + 2_000_000_000
    evaluator = Evaluator(
        budgets=[budget],
        settings=BudgetingConfig.model_validate({"dedup_max_ids": 4 * args.instances}),
        clock_ns=lambda: clock,
        run_threads=False,
    )
    evaluator.start()
    template = pa.Table.from_pylist([_TEMPLATE], schema=RECORD_SCHEMA)
    evaluator.consume(_batch(template, 10**8, 1_000, 9))
    gc.collect()
    base = _rss_bytes()
    figures = []
    for round_no in (1, 2):
        started = time.perf_counter()
        for first in range(0, args.instances, args.batch):
            evaluator.consume(_batch(template, first, min(args.batch, args.instances - first), round_no))
        evaluator.tick()
        seconds = time.perf_counter() - started
        gc.collect()
        figures.append((round_no, _rss_bytes(), seconds))
    counters = evaluator.counters()
    instances = len(evaluator.snapshot.decisions) if evaluator.snapshot else 0
    print(
        f"instances: {args.instances:,} users, one daily budget; "
        f"decisions (instances past a threshold): {instances:,}"
    )
    print(f"RSS after warm-up: {base / 2**20:,.0f} MiB")
    for round_no, rss, seconds in figures:
        grown = rss - base
        print(
            f"after call {round_no} per user: RSS {rss / 2**20:,.0f} MiB (+{grown / 2**20:,.0f} MiB, "
            f"{grown / args.instances:,.0f} bytes per instance), {args.instances / seconds:,.0f} calls/s"
        )
    print(f"de-duplication ids held: {counters.get('dedup_ids', 0):,}")


if __name__ == "__main__":
    main()
