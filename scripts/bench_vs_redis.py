"""Side-by-side benchmark of nova-cache-server against redis-server (see scripts/bench-vs-redis)."""
import argparse
import csv
import io
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from support import servers  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


THREADS = []


def start(kind):
    if kind == "nova":
        return servers.start_nova("--save", "", "--appendonly", "no", *THREADS)
    return servers.start_redis()


# The `evalsha` test: a script of three commands (an increment, a write, a read), run by its SHA1.
SCRIPT = "redis.call('incr', KEYS[1]); redis.call('set', KEYS[2], ARGV[1]); return redis.call('get', KEYS[2])"


# A stream entry of five small fields, as an event log or a job queue writes them.
STREAM_FIELDS = ["kind", "click", "user", "4711", "page", "/products/42", "ms", "153", "ok", "1"]


def fill_stream(server, key, entries):
    """Appends `entries` entries with auto IDs to `key` through redis-cli --pipe."""
    fields = "".join(f"${len(w)}\r\n{w}\r\n" for w in STREAM_FIELDS)
    head = f"*{3 + len(STREAM_FIELDS)}\r\n$4\r\nXADD\r\n${len(key)}\r\n{key}\r\n$1\r\n*\r\n"
    chunk = 100_000
    for base in range(0, entries, chunk):
        payload = (head + fields) * min(chunk, entries - base)
        subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=payload.encode(),
                       capture_output=True, check=True)


def command_for(server, test, requests):
    """redis-benchmark's arguments for `test`: one of its own tests, EVALSHA of SCRIPT, XADD of a five-field
    entry, or XREADGROUP of one entry at a time from a stream filled with `requests` entries beforehand."""
    if test == "xadd":
        return ["XADD", "bench:xadd", "*"] + STREAM_FIELDS
    if test == "xreadgroup":
        key = f"bench:group:{time.time_ns()}"
        fill_stream(server, key, requests)
        subprocess.run(["redis-cli", "-p", str(server.port), "XGROUP", "CREATE", key, "workers", "0"],
                       capture_output=True, check=True)
        return ["XREADGROUP", "GROUP", "workers", "consumer", "COUNT", "1", "STREAMS", key, ">"]
    if test != "evalsha":
        return ["-t", test]
    sha = subprocess.run(["redis-cli", "-p", str(server.port), "SCRIPT", "LOAD", SCRIPT],
                         capture_output=True, check=True, text=True).stdout.strip()
    return ["EVALSHA", sha, "2", "counter:__rand_int__", "value:__rand_int__", "payload"]


def run_benchmark(server, test, requests, pipeline, clients):
    command = command_for(server, test, requests)
    before = cpu_seconds(server.process.pid)
    out = subprocess.run(
        ["redis-benchmark", "-p", str(server.port), "-n", str(requests), "-c", str(clients),
         "-r", "100000", "-P", str(pipeline), "--csv"] + command,
        capture_output=True, check=True, timeout=600).stdout.decode()
    cpu = cpu_seconds(server.process.pid) - before
    rows = list(csv.DictReader(io.StringIO(out)))
    row = rows[0]
    return {
        "rps": float(row["rps"]),
        "p50": float(row["p50_latency_ms"]),
        "p99": float(row["p99_latency_ms"]),
        "cpu_per_million": cpu / requests * 1_000_000,
    }


def rss_growth_per_item(kind, fill, items):
    """RSS growth of a fresh server of `kind` per item while `fill(server)` writes `items` items."""
    server = start(kind)
    try:
        pid = server.process.pid
        time.sleep(0.3)
        rss_before = rss_bytes(pid)
        fill(server)
        time.sleep(0.5)
        return (rss_bytes(pid) - rss_before) / items
    finally:
        server.cleanup()


def bytes_per_key(kind, keys):
    """RSS growth per key for `keys` SETs of 100-byte values with a TTL."""
    def fill(server):
        value = "v" * 100
        chunk = 50_000
        for base in range(0, keys, chunk):
            payload = "".join(
                f"*5\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n$100\r\n{value}\r\n$2\r\nEX\r\n$5\r\n86400\r\n"
                for k in (f"key:{i:012d}" for i in range(base, min(keys, base + chunk))))
            subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=payload.encode(),
                           capture_output=True, check=True)
    return rss_growth_per_item(kind, fill, keys)


def bytes_per_stream_entry(kind, entries):
    """RSS growth per entry for `entries` XADDs of five small fields to one stream."""
    return rss_growth_per_item(kind, lambda server: fill_stream(server, "events", entries), entries)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="fewer requests, for a smoke run")
    parser.add_argument("--tests", default="set,get,incr,mset",
                        help="redis-benchmark tests, and evalsha, xadd, xreadgroup")
    parser.add_argument("--pipelines", default="1,16")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--stream-entries", type=int, default=0,
                        help="also measure memory per stream entry for this many XADDs of five small fields")
    parser.add_argument("--threads", type=int, default=None, help="io-threads (event loops) for nova")
    parser.add_argument("--rounds", type=int, default=1,
                        help="paired rounds per cell, servers alternating first; medians are reported "
                             "(this machine's speed drifts over minutes, which a single pair cannot separate)")
    args = parser.parse_args()
    if args.threads:
        THREADS.extend(["--io-threads", str(args.threads)])
    requests = 100_000 if args.quick else args.requests
    keys = 100_000 if args.quick else args.keys

    tests = args.tests.split(",")
    pipelines = [int(p) for p in args.pipelines.split(",")]
    # Both servers stay up; each round runs every cell on both, one after the other, alternating which
    # goes first, so that drift affects both sides of each pair alike.
    started = {kind: start(kind) for kind in ("nova", "redis")}
    rounds = []
    try:
        for round_index in range(max(1, args.rounds)):
            order = ("nova", "redis") if round_index % 2 == 0 else ("redis", "nova")
            results = {}
            for pipeline in pipelines:
                for test in tests:
                    n = requests if pipeline == 16 else requests // 4
                    for kind in order:
                        results[(kind, test, pipeline)] = run_benchmark(started[kind], test, n, pipeline, 50)
            rounds.append(results)
    finally:
        for server in started.values():
            server.cleanup()

    def median(values):
        ordered = sorted(values)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    print(f"redis-benchmark -c 50 -r 100000, {requests} requests at -P 16 ({requests // 4} at -P 1); "
          f"{os.cpu_count()} cores; {len(rounds)} paired round(s), medians")
    print()
    header = ("test", "-P", "nova req/s", "redis req/s", "ratio", "nova p50/p99 ms", "redis p50/p99 ms",
              "nova CPU s/M", "redis CPU s/M", "CPU ratio")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for pipeline in pipelines:
        for test in tests:
            def cell(kind, field):
                return median([r[(kind, test, pipeline)][field] for r in rounds])

            def paired(field):
                return [r[("nova", test, pipeline)][field] / r[("redis", test, pipeline)][field] for r in rounds]

            ratios, cpu_ratios = paired("rps"), paired("cpu_per_million")
            spread = f" ({min(ratios):.2f}–{max(ratios):.2f})" if len(rounds) > 1 else ""
            print(f"| {test.upper()} | {pipeline} | {cell('nova', 'rps'):,.0f} | {cell('redis', 'rps'):,.0f} "
                  f"| {median(ratios):.2f}{spread} "
                  f"| {cell('nova', 'p50'):.3f}/{cell('nova', 'p99'):.3f} | {cell('redis', 'p50'):.3f}/{cell('redis', 'p99'):.3f} "
                  f"| {cell('nova', 'cpu_per_million'):.2f} | {cell('redis', 'cpu_per_million'):.2f} "
                  f"| {median(cpu_ratios):.2f} |")
    print()
    if args.stream_entries:
        nova_entry = bytes_per_stream_entry("nova", args.stream_entries)
        redis_entry = bytes_per_stream_entry("redis", args.stream_entries)
        print(f"Memory for {args.stream_entries:,} stream entries (five small fields), RSS growth per entry: "
              f"nova {nova_entry:.1f} B, redis {redis_entry:.1f} B, ratio {nova_entry / redis_entry:.2f}")
    if args.no_memory:
        return
    nova_bytes = bytes_per_key("nova", keys)
    redis_bytes = bytes_per_key("redis", keys)
    print(f"Memory for {keys:,} keys (100-byte values, TTL), RSS growth per key: "
          f"nova {nova_bytes:.0f} B, redis {redis_bytes:.0f} B, ratio {nova_bytes / redis_bytes:.2f}")


if __name__ == "__main__":
    main()
