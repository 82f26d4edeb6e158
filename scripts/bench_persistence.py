"""Snapshot benchmark (see scripts/bench-persistence)."""
import argparse
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from support import resp, servers  # noqa: E402


def start(kind, workdir):
    if kind == "nova":
        return servers.start_nova("--save", "", "--appendonly", "no", workdir=workdir)
    if kind == "valkey":
        return servers.start_valkey(workdir=workdir)
    return servers.start_redis(workdir=workdir)


def fill(port, keys):
    """Mixed types, values of 100 bytes: strings (one key in eight with a TTL), integers, small hashes,
    lists, sets and sorted sets (one key in eight of each collection type)."""
    value = b"v" * 100
    chunk = 50_000
    for base in range(0, keys, chunk):
        commands = []
        for i in range(base, min(keys, base + chunk)):
            key = b"key:%012d" % i
            kind = i % 8
            if kind == 0:
                commands.append(resp.encode(b"SET", key, value, b"EX", b"86400"))
            elif kind == 1:
                commands.append(resp.encode(b"SET", key, str(i * 31).encode()))
            elif kind in (2, 3):
                commands.append(resp.encode(b"SET", key, value))
            elif kind == 4:
                commands.append(resp.encode(b"HSET", key, b"name", value, b"visits", str(i).encode(), b"note", value))
            elif kind == 5:
                commands.append(resp.encode(b"RPUSH", key, value, value, str(i).encode()))
            elif kind == 6:
                commands.append(resp.encode(b"SADD", key, *[str(i + n).encode() for n in range(5)]))
            else:
                commands.append(resp.encode(b"ZADD", key, b"1", value, b"2.5", b"m:%d" % i, b"3", b"x"))
        subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=b"".join(commands),
                       capture_output=True, check=True)


def latency_probe(port, stop, samples):
    conn = resp.Connection(port)
    while not stop.is_set():
        start = time.perf_counter()
        conn.call("GET", "key:000000000007")
        samples.append(time.perf_counter() - start)
    conn.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0


def wait_no_bgsave(conn):
    while b"rdb_bgsave_in_progress:1" in conn.call("INFO", "persistence"):
        time.sleep(0.005)


def run(kind, keys):
    import tempfile
    workdir = tempfile.mkdtemp(prefix=f"bench-{kind}-")
    server = start(kind, workdir)
    conn = resp.Connection(server.port)
    fill(server.port, keys)
    assert conn.call("DBSIZE") == keys
    begin = time.perf_counter()
    conn.call("SAVE")
    save_seconds = time.perf_counter() - begin
    size = os.path.getsize(os.path.join(workdir, "dump.rdb"))

    # GET latency without and with a background save running.
    results = {}
    for phase in ("idle", "bgsave"):
        samples = []
        stop = threading.Event()
        probe = threading.Thread(target=latency_probe, args=(server.port, stop, samples))
        probe.start()
        time.sleep(0.3)
        if phase == "bgsave":
            conn.call("BGSAVE")
            time.sleep(0.05)
            wait_no_bgsave(conn)
        else:
            time.sleep(1.0)
        stop.set()
        probe.join()
        results[phase] = (percentile(samples, 0.99) * 1000, max(samples) * 1000, len(samples))
    server.stop()

    # Load time: from process start until PING answers PONG.
    begin = time.perf_counter()
    again = start(kind, workdir)
    load_seconds = time.perf_counter() - begin
    assert resp.Connection(again.port).call("DBSIZE") == keys
    again.cleanup()
    return save_seconds, load_seconds, size, results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--peers", default="redis,valkey", help="the reference servers: redis, valkey or both")
    args = parser.parse_args()
    kinds = ["nova"] + [peer for peer in args.peers.split(",") if peer]
    rows = {kind: run(kind, args.keys) for kind in kinds}
    print(f"{args.keys:,} keys of mixed types (strings with 100-byte values, one key in eight with a TTL; "
          f"integers; small hashes, lists, sets, sorted sets); {os.cpu_count()} cores\n")
    print("| server | SAVE s | load s | file MB | GET p99 ms idle | GET max ms idle | GET p99 ms during BGSAVE | GET max ms during BGSAVE |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in kinds:
        save_s, load_s, size, lat = rows[kind]
        print(f"| {kind} | {save_s:.2f} | {load_s:.2f} | {size / 1e6:.1f} | {lat['idle'][0]:.3f} | {lat['idle'][1]:.3f} "
              f"| {lat['bgsave'][0]:.3f} | {lat['bgsave'][1]:.3f} |")


if __name__ == "__main__":
    main()
