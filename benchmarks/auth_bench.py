"""What API keys cost at ingest: ``python -m benchmarks.auth_bench``.

The LLM-only workload of ``benchmarks/ingest.py`` through a real ``otelcost serve``, twice per
run and protocol, alternating: anonymous (loopback, the default) and with a key bound to a team
and a tenant (``auth.anonymous.ingest: deny``, every request ``Authorization: Bearer``), so
every span pays the key's lookup, the resource stamp and the binding. Prints LLM spans/s durable
and budgeted for each, and the keyed/anonymous ratio of each run (same machine, same run).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
from typing import Any

from benchmarks.ingest import run_pipeline
from benchmarks.workload import build_workload
from otelcost.auth.keys import key_digest, new_key


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--llm-spans", type=int, default=40_000)
    parser.add_argument("--protocols", default="grpc,http")
    args = parser.parse_args()
    key = new_key()
    keyed: dict[str, Any] = {
        "auth": {
            "anonymous": {"ingest": "deny"},
            "keys": [
                {
                    "name": "bench",
                    "digest": key_digest(key),
                    "bind": {"team": "search", "tenant_id": "acme"},
                }
            ],
        }
    }
    workload = build_workload(args.llm_spans, spans_per_request=512, seed=1)
    print(
        f"auth benchmark: {workload.llm_spans:,} LLM spans in {len(workload.payloads)} requests, "
        f"{args.runs} runs"
    )
    with tempfile.TemporaryDirectory(prefix="otelcost-auth-") as scratch:
        payload_file = f"{scratch}/payloads.pickle"
        with open(payload_file, "wb") as handle:
            pickle.dump(workload.payloads, handle)
        for protocol in args.protocols.split(","):
            ratios: list[float] = []
            rates: dict[str, list[float]] = {"anonymous": [], "keyed": []}
            for run in range(args.runs):
                plain = run_pipeline(protocol, workload, payload_file)
                bound = run_pipeline(protocol, workload, payload_file, extra=keyed, key=key)
                for result in (plain, bound):
                    if result.calls != workload.llm_spans:
                        print(f"  WARNING: {result.calls} rows for {workload.llm_spans} LLM spans")
                anonymous_rate = workload.llm_spans / plain.seconds
                keyed_rate = workload.llm_spans / bound.seconds
                rates["anonymous"].append(anonymous_rate)
                rates["keyed"].append(keyed_rate)
                ratios.append(keyed_rate / anonymous_rate)
                print(
                    f"{protocol} run {run + 1}: anonymous {anonymous_rate:,.0f} LLM spans/s, "
                    f"keyed {keyed_rate:,.0f} LLM spans/s: {keyed_rate / anonymous_rate:.1%}"
                )
            print(
                f"{protocol} medians: anonymous {statistics.median(rates['anonymous']):,.0f}, "
                f"keyed {statistics.median(rates['keyed']):,.0f} LLM spans/s; "
                f"median ratio {statistics.median(ratios):.1%}"
            )


if __name__ == "__main__":
    main()
