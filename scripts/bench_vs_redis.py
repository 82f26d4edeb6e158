"""Side-by-side benchmark of nova-cache-server against redis-server 7.0 and valkey-server 9.1 (see
scripts/bench-vs-redis)."""
import argparse
import csv
import io
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from support import resp, servers  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


THREADS = []
VALKEY_ARGS = []
PEERS = ("redis", "valkey")


def start(kind):
    if kind == "nova":
        return servers.start_nova("--save", "", "--appendonly", "no", *THREADS)
    if kind == "valkey":
        return servers.start_valkey(*VALKEY_ARGS)
    return servers.start_redis()


# The `evalsha` test: a script of three commands (an increment, a write, a read), run by its SHA1.
SCRIPT = "redis.call('incr', KEYS[1]); redis.call('set', KEYS[2], ARGV[1]); return redis.call('get', KEYS[2])"


# A stream entry of five small fields, as an event log or a job queue writes them.
STREAM_FIELDS = ["kind", "click", "user", "4711", "page", "/products/42", "ms", "153", "ok", "1"]


def pipe(server, commands, chunk=50_000):
    """Sends `commands` (an iterable of word lists) to `server` through redis-cli --pipe, `chunk` at a time."""
    batch = []

    def send():
        subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=b"".join(batch),
                       capture_output=True, check=True)
        batch.clear()

    for words in commands:
        batch.append(resp.encode(*words))
        if len(batch) == chunk:
            send()
    if batch:
        send()


def fill_stream(server, key, entries):
    """Appends `entries` entries with auto IDs to `key`."""
    pipe(server, (["XADD", key, "*"] + STREAM_FIELDS for _ in range(entries)))


# redis-benchmark's -r: its keys are `key:` and a 12-digit number below this.
KEYSPACE = 100_000


def warm_up(server, requests):
    """Brings `server` to the state the measured rounds should see: every key redis-benchmark's SET, GET
    and MSET can name holds a value of the data size (so every GET hits), then a SET pass of `requests`
    at -P 16 overwrites them once (so the heap has grown and settled before anything is measured: while
    it grows, the kernel's cost of a new page, which varies several times over on a VM, sets the pace of
    large-value SETs for every server alike). Not measured."""
    value = "x" * DATA_SIZE[0]
    chunk = max(100, min(50_000, 16_000_000 // max(1, DATA_SIZE[0])))
    pipe(server, (["SET", f"key:{i:012d}", value] for i in range(KEYSPACE)), chunk=chunk)
    subprocess.run(["redis-benchmark", "-p", str(server.port), "-n", str(requests), "-c", "50", "-r",
                    str(KEYSPACE), "-P", "16", "-d", str(DATA_SIZE[0]), "-t", "set", "-q"],
                   capture_output=True, check=True, timeout=600)


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


# redis-benchmark's -d (value size for SET/GET …), set by --data-size.
DATA_SIZE = [3]


def run_benchmark(server, test, requests, pipeline, clients):
    command = command_for(server, test, requests)
    before = cpu_seconds(server.process.pid)
    out = subprocess.run(
        ["redis-benchmark", "-p", str(server.port), "-n", str(requests), "-c", str(clients),
         "-r", str(KEYSPACE), "-P", str(pipeline), "-d", str(DATA_SIZE[0]), "--csv"] + command,
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
        pipe(server, (["SET", f"key:{i:012d}", value, "EX", "86400"] for i in range(keys)))
    return rss_growth_per_item(kind, fill, keys)


def collection_command(kind, key, members):
    """One command that creates a collection of `kind` with `members` small members under `key`."""
    if kind == "hash":
        return ["HSET", key] + [word for i in range(members) for word in (f"field{i}", f"value{i}")]
    if kind == "list":
        return ["RPUSH", key] + [f"member{i}" for i in range(members)]
    if kind == "set":
        return ["SADD", key] + [f"member{i}" for i in range(members)]
    return ["ZADD", key] + [word for i in range(members) for word in (str(i), f"member{i}")]


def bytes_per_collection(kind, collection, keys, members=10):
    """RSS growth per key for `keys` collections of `collection` kind with `members` small members each."""
    def fill(server):
        pipe(server, (collection_command(collection, f"{collection}:{i:012d}", members) for i in range(keys)))
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
    parser.add_argument("--data-size", type=int, default=3, help="redis-benchmark -d: the value size in bytes")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--stream-entries", type=int, default=0,
                        help="also measure memory per stream entry for this many XADDs of five small fields")
    parser.add_argument("--collection-keys", type=int, default=0,
                        help="also measure memory per key for this many hashes, lists, sets and sorted sets of "
                             "10 small members each")
    parser.add_argument("--threads", type=int, default=None, help="io-threads (event loops) for nova")
    parser.add_argument("--valkey-io-threads", type=int, default=None, help="io-threads for valkey-server")
    parser.add_argument("--peers", default="redis,valkey", help="the reference servers: redis, valkey or both")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds per cell, the servers' order rotating; medians are reported "
                             "(this machine's speed drifts over minutes, which a single pair cannot separate)")
    args = parser.parse_args()
    if args.threads:
        THREADS.extend(["--io-threads", str(args.threads)])
    if args.valkey_io_threads:
        VALKEY_ARGS.extend(["--io-threads", str(args.valkey_io_threads)])
    peers = [peer for peer in args.peers.split(",") if peer]
    requests = 100_000 if args.quick else args.requests
    keys = 100_000 if args.quick else args.keys
    DATA_SIZE[0] = args.data_size

    tests = args.tests.split(",")
    pipelines = [int(p) for p in args.pipelines.split(",")]
    kinds = ["nova"] + peers
    # Every server stays up; each round runs every cell on each, one after the other, rotating which goes
    # first, so that drift affects every side of each comparison alike.
    started = {kind: start(kind) for kind in kinds}
    rounds = []
    try:
        for server in started.values():
            warm_up(server, requests)
        for round_index in range(max(1, args.rounds)):
            order = kinds[round_index % len(kinds):] + kinds[:round_index % len(kinds)]
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

    print(f"redis-benchmark -c 50 -r {KEYSPACE} -d {args.data_size}, {requests} requests at -P 16 ({requests // 4} at -P 1), "
          f"after every key was set and overwritten once; "
          f"{os.cpu_count()} cores; {len(rounds)} round(s), medians (ratios: median of the rounds' ratios, range)")
    print()
    header = ["test", "-P"] + [f"{kind} req/s" for kind in kinds] + [f"nova/{peer}" for peer in peers] \
        + [f"{kind} p50/p99 ms" for kind in kinds] + [f"{kind} CPU s/M" for kind in kinds] \
        + [f"CPU nova/{peer}" for peer in peers]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for pipeline in pipelines:
        for test in tests:
            def cell(kind, field):
                return median([r[(kind, test, pipeline)][field] for r in rounds])

            def ratio(peer, field):
                values = [r[("nova", test, pipeline)][field] / r[(peer, test, pipeline)][field] for r in rounds]
                spread = f" ({min(values):.2f}–{max(values):.2f})" if len(rounds) > 1 else ""
                return f"{median(values):.2f}{spread}"

            row = [test.upper(), str(pipeline)] + [f"{cell(kind, 'rps'):,.0f}" for kind in kinds] \
                + [ratio(peer, "rps") for peer in peers] \
                + [f"{cell(kind, 'p50'):.3f}/{cell(kind, 'p99'):.3f}" for kind in kinds] \
                + [f"{cell(kind, 'cpu_per_million'):.2f}" for kind in kinds] \
                + [ratio(peer, "cpu_per_million") for peer in peers]
            print("| " + " | ".join(row) + " |")
    print()

    def memory_line(title, measure):
        measured = {kind: measure(kind) for kind in kinds}
        parts = ", ".join(f"{kind} {measured[kind]:.1f} B" for kind in kinds)
        ratios = ", ".join(f"nova/{peer} {measured['nova'] / measured[peer]:.2f}" for peer in peers)
        print(f"{title}, RSS growth per item: {parts}; {ratios}")

    for collection in ("hash", "list", "set", "zset") if args.collection_keys else ():
        memory_line(f"Memory for {args.collection_keys:,} {collection} keys of 10 small members",
                    lambda kind: bytes_per_collection(kind, collection, args.collection_keys))
    if args.stream_entries:
        memory_line(f"Memory for {args.stream_entries:,} stream entries (five small fields)",
                    lambda kind: bytes_per_stream_entry(kind, args.stream_entries))
    if args.no_memory:
        return
    memory_line(f"Memory for {keys:,} keys (100-byte values, TTL)", lambda kind: bytes_per_key(kind, keys))


if __name__ == "__main__":
    main()
