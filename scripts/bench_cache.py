"""NovaCache library benchmark (see scripts/bench-cache)."""
import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from support import servers  # noqa: E402
import redis.asyncio  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BENCH = os.path.join(ROOT, ".build", "release", "nova-cache-bench")


def run_bench(*args, prefix=()):
    out = subprocess.run([*prefix, BENCH, *args], capture_output=True, check=True, timeout=900).stdout.decode()
    return dict(line.split("=", 1) for line in out.split() if "=" in line)


async def redis_py_gets(port, tasks, requests):
    client = redis.asyncio.Redis(port=port, max_connections=tasks)
    await client.set("bench:key", b"x" * 100)
    per_task = requests // tasks

    async def worker():
        for _ in range(per_task):
            await client.get("bench:key")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    elapsed = time.perf_counter() - started
    await client.aclose()
    return per_task * tasks / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--searches", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--memory-runs", type=int, default=5)
    args = parser.parse_args()

    rows = []
    # The memory tier in an offline manager (nothing listens on the port), measured in several runs because
    # this machine's speed drifts by tens of percent within minutes: median of the runs' medians, and range.
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    runs = [run_bench("memory", "--url", f"redis://127.0.0.1:{servers.free_port()}/0", prefix=pin)
            for _ in range(args.memory_runs)]

    for name, label, target in (
        ("memory_hit_zero_copy_ns_median", "zero-copy CacheManager.getValue, 10,000 keys", "target <= 200; "),
        ("memory_hit_ns_median", "CacheManager.getBytes, a copy of 100 bytes, 10,000 keys", ""),
        ("memory_tier_lookup_ns_median", "MemoryTier.lookup, a copied Record, 10,000 keys", ""),
        ("memory_hit_zero_copy_hot_ns_median", "zero-copy CacheManager.getValue, 1,000 keys", ""),
        ("memory_hit_typed_ns_median", "typed CacheManager.get, the kept decoded record, 1,000 keys", "target <= 200; "),
        ("memory_hit_typed_all_keys_ns_median", "typed CacheManager.get, the kept decoded record, 10,000 keys", ""),
        ("memory_hit_typed_first_read_ns_median", "typed CacheManager.get, first read: JSON decoding + keeping", ""),
    ):
        values = sorted(float(run[name]) for run in runs)
        rows.append((f"memory-tier hit, {label} (median ns)", f"{statistics.median(values):.0f}",
                     f"{target}runs {values[0]:.0f}-{values[-1]:.0f}"))

    for kind in ("nova", "redis"):
        server = servers.start_nova("--save", "", "--appendonly", "no") if kind == "nova" else servers.start_redis()
        try:
            url = f"redis://127.0.0.1:{server.port}/0"
            swift = float(run_bench("remote", "--url", url, "--tasks", str(args.tasks), "--requests", str(args.requests))["remote_get_rps"])
            python = asyncio.run(redis_py_gets(server.port, args.tasks, args.requests // 4))
            rows.append((f"remote GET, {args.tasks} tasks, NovaClient pool ({kind} server, req/s)", f"{swift:,.0f}", ""))
            rows.append((f"remote GET, {args.tasks} tasks, redis-py asyncio ({kind} server, req/s)", f"{python:,.0f}",
                         f"NovaClient {swift / python:.1f}x"))
            if kind == "nova":
                zipf = run_bench("zipf", "--url", url, "--searches", str(args.searches))
                rows.append((f"getOrLoad, Zipf replay of {args.searches:,} searches over 10,000 queries: loader calls",
                             zipf["zipf_loader_calls"], f"{zipf['zipf_loader_calls_avoided_pct']}% avoided"))
                rows.append(("  ... answered by the memory tier (holds 10% of the queries)", f"{zipf['zipf_memory_hit_pct']}%", ""))
        finally:
            server.stop()

    width = max(len(row[0]) for row in rows)
    print(f"| {'measure'.ljust(width)} | value | note |")
    print(f"|{'-' * (width + 2)}|-------|------|")
    for name, value, note in rows:
        print(f"| {name.ljust(width)} | {value} | {note} |")


if __name__ == "__main__":
    main()
