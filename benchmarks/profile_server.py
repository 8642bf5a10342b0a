"""Where the server's time goes under ingest load: py-spy on ``otelcost serve``.

Run::

    pip install py-spy
    python -m benchmarks.profile_server                # LLM spans only, OTLP/gRPC
    python -m benchmarks.profile_server --mix --protocol http

Starts the server and the load generator as ``benchmarks.ingest`` does, samples the server with
``py-spy record --format raw`` while the load runs, and prints the share of samples per stage
(inclusive) and the functions with the most samples of their own.
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.harness import ServerProcess
from benchmarks.ingest import BUDGETS, _load_generator
from benchmarks.workload import build_workload

STAGES = {
    "receiver: gRPC (aio + deserialization)": ("grpc/_cython", "receiver/grpc.py"),
    "receiver: HTTP (aiohttp)": ("aiohttp/web_protocol", "receiver/http.py"),
    "protobuf decode (receiver)": ("decode_protobuf_request",),
    "normalizer": ("Normalizer.normalize", "normalize (otelcost/normalize/normalizer.py"),
    "pricer": ("otelcost/pricing/",),
    "lake writer consume": ("LakeWriter.consume", "consume (otelcost/lake/writer.py"),
    "lake flush (thread)": ("flush (otelcost/lake/writer.py", "write_files"),
    "budget evaluator": ("otelcost/budgets/",),
    "pipeline counters": ("_count (otelcost/pipeline.py",),
    "metrics scrape": ("otelcost/metrics.py",),
}


def _py_spy() -> str:
    """py-spy from PATH, else the one installed next to this interpreter (a virtualenv's bin/)."""
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--protocol", default="grpc", choices=["grpc", "http"])
    parser.add_argument("--mix", action="store_true", help="10 non-LLM spans per LLM span")
    parser.add_argument("--spans", type=int, default=60_000, help="LLM spans (LLM-only case)")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="also copy py-spy's raw stacks to this file")
    args = parser.parse_args()
    workload = (
        build_workload(args.spans // 10, other_per_llm=10, seed=2) if args.mix else build_workload(args.spans)
    )
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as scratch, ServerProcess(budgets=BUDGETS) as server:
        payload_file = f"{scratch}/payloads.pickle"
        Path(payload_file).write_bytes(pickle.dumps(workload.payloads))
        ready, go, results = ctx.Event(), ctx.Event(), ctx.Queue()
        port = server.grpc_port if args.protocol == "grpc" else server.http_port
        sender = ctx.Process(
            target=_load_generator, args=(args.protocol, port, payload_file, ready, go, results)
        )
        sender.start()
        ready.wait(120)
        raw = f"{scratch}/profile.txt"
        spy = subprocess.Popen(
            [
                *(_py_spy(), "record", "-p", str(server.pid), "-d", str(args.seconds), "-r", "250"),
                *("--format", "raw", "-o", raw, "--threads", "--nonblocking"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        go.set()
        spy.wait()
        results.get(timeout=600)
        sender.join()
        if args.keep is not None:
            shutil.copyfile(raw, args.keep)
        stacks = Counter[str]()
        for line in Path(raw).read_text().splitlines():
            stack, _, samples_text = line.rpartition(" ")
            stacks[stack] += int(samples_text)
    busy = {stack: n for stack, n in stacks.items() if "select" not in stack.rsplit(";", 1)[-1]}
    total = sum(busy.values())
    print(f"{total} busy samples ({sum(stacks.values())} with idle waits)")
    for stage, needles in STAGES.items():
        hits = sum(n for stack, n in busy.items() if any(needle in stack for needle in needles))
        print(f"  {stage:42} {hits / total:6.1%}")
    own = Counter[str]()
    for stack, count in busy.items():
        own[stack.rsplit(";", 1)[-1]] += count
    print("top functions by own samples:")
    for frame, samples in own.most_common(25):
        print(f"  {samples / total:6.1%}  {frame}")


if __name__ == "__main__":
    main()
