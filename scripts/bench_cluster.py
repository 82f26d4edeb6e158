"""Cluster client benchmark (see scripts/bench-cluster): RedisClusterClient (nova-cache-bench cluster) and
redis-py's asyncio RedisCluster on the same workload against one real Redis Cluster, in alternating rounds."""
import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from support.cluster import RedisCluster  # noqa: E402
from redis.asyncio.cluster import RedisCluster as PyRedisCluster  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BENCH = os.path.join(ROOT, ".build", "release", "nova-cache-bench")


def swift_round(url, tasks, requests, keys, depth):
    out = subprocess.run([BENCH, "cluster", "--url", url, "--tasks", str(tasks), "--requests", str(requests),
                          "--keys", str(keys), "--pipeline", str(depth)], capture_output=True, check=True, timeout=900)
    fields = dict(part.split("=", 1) for part in out.stdout.decode().split() if "=" in part)
    return float(fields["cluster_rps"]), float(fields["client_cpu_us_per_request"])


async def python_round(port, tasks, requests, keys, depth):
    client = PyRedisCluster(host="127.0.0.1", port=port, max_connections=tasks * 2)
    await client.initialize()
    value = b"x" * 100
    for start in range(0, keys, 1000):
        pipe = client.pipeline()
        for index in range(start, min(start + 1000, keys)):
            pipe.set(f"bench:{index}", value)
        await pipe.execute()
    per_task = requests // tasks // depth

    async def worker(task):
        index = task
        for _ in range(per_task):
            if depth == 1:
                key = f"bench:{index % keys}"
                if index % 2 == 0:
                    await client.set(key, value)
                else:
                    await client.get(key)
                index += tasks
            else:
                pipe = client.pipeline()
                for _ in range(depth):
                    key = f"bench:{index % keys}"
                    if index % 2 == 0:
                        pipe.set(key, value)
                    else:
                        pipe.get(key)
                    index += tasks
                await pipe.execute()

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(task) for task in range(tasks)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    await client.aclose()
    done = per_task * tasks * depth
    return done / elapsed, cpu / done * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--requests", type=int, default=60_000)
    parser.add_argument("--keys", type=int, default=10_000)
    args = parser.parse_args()
    cluster = RedisCluster()
    try:
        rows = []
        for label, tasks, depth, requests in (
            (f"SET/GET, {args.tasks} concurrent tasks", args.tasks, 1, args.requests),
            ("SET/GET pipelines of 100, 10 tasks", 10, 100, args.requests * 5),
        ):
            swift, python = [], []
            for _ in range(args.rounds):
                swift.append(swift_round(cluster.url, tasks, requests, args.keys, depth))
                python.append(asyncio.run(python_round(cluster.nodes[0].port, tasks, requests, args.keys, depth)))
            rows.append((label, swift, python))
        print("| workload | RedisClusterClient req/s (client CPU µs/req) | redis-py RedisCluster req/s (client CPU µs/req) | ratio req/s |")
        print("|---|---|---|---|")
        for label, swift, python in rows:
            s_rps = statistics.median(r for r, _ in swift)
            p_rps = statistics.median(r for r, _ in python)
            s_cpu = statistics.median(c for _, c in swift)
            p_cpu = statistics.median(c for _, c in python)
            spread = f"{min(r for r, _ in swift):.0f}–{max(r for r, _ in swift):.0f}"
            print(f"| {label} | {s_rps:,.0f} ({s_cpu:.1f}; range {spread}) | {p_rps:,.0f} ({p_cpu:.1f}) | {s_rps / p_rps:.2f}x |")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
