"""Same-run before/after of the end-to-end ingest path: ``python -m benchmarks.ingest_compare``.

Run::

    python -m benchmarks.ingest_compare --root before=/tmp/before --root after=. --runs 5

Each run starts ``otelcost serve`` once from every ``--root`` source tree (the order rotates from
run to run, so a slow spell on a shared machine does not always hit the same tree) and sends the
same pre-encoded requests exactly as ``benchmarks.ingest`` does; the clock and the server-CPU
figure are that benchmark's (``run_pipeline``). Without the ceiling and the alternative, which do
not depend on the server's code. Prints every run and the median LLM spans per server CPU-second
per tree.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
from pathlib import Path

from benchmarks.ingest import run_pipeline
from benchmarks.workload import build_workload


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", action="append", required=True, help="LABEL=PATH, a source tree")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--llm-spans", type=int, default=60_000)
    parser.add_argument("--mix", action="store_true", help="10 non-LLM spans per LLM span")
    parser.add_argument(
        "--late-roots",
        action="store_true",
        help="with --mix: every trace's root (with app.cost_center) comes after all calls (late attribution)",
    )
    parser.add_argument("--protocol", default="grpc", choices=["grpc", "http"])
    args = parser.parse_args()
    roots = [(label, Path(path).resolve()) for label, _, path in (r.partition("=") for r in args.root)]
    llm = args.llm_spans // 10 if args.mix else args.llm_spans
    workload = build_workload(
        llm, other_per_llm=10 if args.mix else 0, seed=2 if args.mix else 1, late_roots=args.late_roots
    )
    per_cpu: dict[str, list[float]] = {label: [] for label, _ in roots}
    with tempfile.TemporaryDirectory(prefix="otelcost-compare-") as scratch:
        payload_file = f"{scratch}/payloads.pickle"
        Path(payload_file).write_bytes(pickle.dumps(workload.payloads))
        for run in range(args.runs):
            order = roots[run % len(roots) :] + roots[: run % len(roots)]
            for label, root in order:
                result = run_pipeline(args.protocol, workload, payload_file, root)
                if result.calls != workload.llm_spans:
                    print(f"  WARNING: {label}: {result.calls} rows for {workload.llm_spans} LLM spans")
                rate = workload.llm_spans / result.server_cpu
                per_cpu[label].append(rate)
                print(
                    f"run {run + 1} {label:>10}: {rate:,.0f} LLM spans per server CPU-s "
                    f"({result.server_cpu:.2f} CPU-s), "
                    f"{workload.llm_spans / result.seconds:,.0f} LLM spans/s end to end, "
                    f"peak RSS {result.peak_rss / 2**20:.0f} MiB",
                    flush=True,
                )
    for label, rates in per_cpu.items():
        print(
            f"{label:>10}: median {statistics.median(rates):,.0f} LLM spans per server CPU-s "
            f"over {len(rates)} runs"
        )


if __name__ == "__main__":
    main()
