"""Overshoot of a budget at N concurrent calls, with and without reservations.

Run::

    python benchmarks/gateway_overshoot.py                 # 50 callers, $0.05 per team, 3 rounds
    python benchmarks/gateway_overshoot.py --workers 100 --rounds 5

Each run (tests/integrations/overshoot.py) starts ``--workers`` callers of one team against a real
``otelcost serve`` in this process: check (or reserve) → the loopback fake provider →
50 ms of "model time" → one GenAI span over OTLP/HTTP (batch span processor, 200 ms delay). It
prints, per mode, the calls admitted, the spend from the lake and the overshoot past the limit
(one call: $0.0002832). Modes: checking the decision only, reserving with a decision already
held (the budget has spend in its window), and reserving from a cold start (no decision yet).
docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integrations.overshoot import gateway, run_overshoot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--limit", type=Decimal, default=Decimal("0.05"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle-after", type=float, default=2.0)
    args = parser.parse_args()
    modes = [("check", False, True), ("reserve", True, True), ("reserve-cold", True, False)]
    with tempfile.TemporaryDirectory() as tmp, gateway(Path(tmp) / "data", limit=args.limit) as gw:
        for round_number in range(args.rounds):
            for name, reserve, prime in modes:
                run = run_overshoot(
                    gw,
                    f"{name}-{round_number}",
                    reserve=reserve,
                    prime=prime,
                    workers=args.workers,
                    settle_after=args.settle_after,
                )
                print(run.describe(), flush=True)


if __name__ == "__main__":
    main()
