"""The server's per-request work without the network: ``python -m benchmarks.pipeline_bench``.

Builds a :class:`~otelcost.pipeline.Pipeline` with the default configuration (durable spool,
fsync on), the benchmarks' team budget and a temporary data dir, then awaits ``Pipeline.export``
on the ``benchmarks.workload`` requests, parsed as the gRPC receiver parses them, one after the
other on one event loop of this thread, as the in-process receivers do. Prints LLM spans per
CPU-second of this process (the lake's flush thread included) and, with ``--profile``, a
pyinstrument profile of the loop. Faster to iterate on than
``benchmarks.ingest`` (no server process, no sockets) and closer to the server than
``benchmarks.normalize_bench`` (fresh span ids, every stage after the normalizer).

Run::

    python -m benchmarks.pipeline_bench                  # 60,000 LLM spans, 3 rounds
    python -m benchmarks.pipeline_bench --mix            # 10 non-LLM spans per LLM span
    python -m benchmarks.pipeline_bench --profile        # pyinstrument, one round
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.ingest import BUDGETS
from benchmarks.workload import build_workload
from otelcost.config import load_config
from otelcost.pipeline import Pipeline
from otelcost.receiver.messages import decode_protobuf_request


async def _export_all(pipeline: Pipeline, payloads: list[bytes]) -> None:
    for payload in payloads:
        await pipeline.export(decode_protobuf_request(payload))


def _round(payloads: list[bytes], profile: bool) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to put every payload through a fresh pipeline."""
    with tempfile.TemporaryDirectory(prefix="otelcost-pipeline-bench-") as scratch:
        config = load_config(overrides={"data_dir": str(Path(scratch) / "data"), "budgets": BUDGETS})
        pipeline = Pipeline(config)
        pipeline.start()
        profiler = None
        if profile:
            from pyinstrument import Profiler  # noqa: PLC0415  # optional: only for --profile

            profiler = Profiler(interval=0.0005)
            profiler.start()
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            asyncio.run(_export_all(pipeline, payloads))
            pipeline.lake.flush()
        finally:
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if profiler is not None:
                profiler.stop()
                print(profiler.output_text(unicode=True, color=False, show_all=False))
            pipeline.shutdown()
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--llm-spans", type=int, default=60_000)
    parser.add_argument("--mix", action="store_true", help="10 non-LLM spans per LLM span")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="pyinstrument over one round")
    args = parser.parse_args()
    llm = args.llm_spans // 10 if args.mix else args.llm_spans
    rates = []
    for round_ in range(1 if args.profile else args.rounds):
        # Fresh ids every round: the budget evaluator de-duplicates by (trace_id, span_id).
        workload = build_workload(llm, other_per_llm=10 if args.mix else 0, seed=round_ + 1)
        cpu, wall = _round(workload.payloads, args.profile)
        rates.append(workload.llm_spans / cpu)
        print(
            f"round {round_ + 1}: {workload.llm_spans} LLM spans ({workload.spans} spans) in "
            f"{cpu:.2f} CPU-s ({wall:.2f} s): {workload.llm_spans / cpu:,.0f} LLM spans per CPU-s, "
            f"{cpu / workload.llm_spans * 1e6:.1f} µs each"
        )
    print(f"median: {statistics.median(rates):,.0f} LLM spans per CPU-s")


if __name__ == "__main__":
    main()
