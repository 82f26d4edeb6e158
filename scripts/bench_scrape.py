"""Scrape cost benchmark (see scripts/bench-scrape): does reading /metrics while clients run commands
show in their latency? redis-benchmark runs GET/SET rounds; every other round a thread reads /metrics
(and /api/stats once a second) as fast as --scrapes-per-second allows. Prints p50/p99 per mode and the
ratio with/without; CPU per scrape comes from the server's own counters."""
import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from support import servers  # noqa: E402


def benchmark(port, requests, pipeline):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "get,set", "-n", str(requests), "-c", "50", "-P", str(pipeline),
         "-r", "100000", "-d", "64", "--csv", "-q"], capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines()[1:]:
        fields = [f.strip('"') for f in line.split(",")]
        rows[fields[0]] = {"rps": float(fields[1]), "p50": float(fields[4]), "p99": float(fields[6])}
    return rows


def scraper(http, rate, stop, counter):
    interval = 1.0 / rate
    last_stats = 0.0
    while not stop.is_set():
        start = time.time()
        urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10).read()
        counter[0] += 1
        if start - last_stats >= 1:
            urllib.request.urlopen(f"http://127.0.0.1:{http}/api/stats", timeout=10).read()
            last_stats = start
        stop.wait(max(0.0, interval - (time.time() - start)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--pipeline", type=int, default=1)
    parser.add_argument("--scrapes-per-second", type=float, default=10)
    args = parser.parse_args()
    http = servers.free_port()
    server = servers.start_nova("--save", "", "--appendonly", "no", "--http-port", str(http))
    try:
        results = {"without": [], "with": []}
        scrapes = 0
        for round_number in range(args.rounds * 2):
            mode = "with" if round_number % 2 else "without"
            stop = threading.Event()
            counter = [0]
            thread = None
            if mode == "with":
                thread = threading.Thread(target=scraper, args=(http, args.scrapes_per_second, stop, counter))
                thread.start()
            results[mode].append(benchmark(server.port, args.requests, args.pipeline))
            stop.set()
            if thread:
                thread.join()
                scrapes += counter[0]
        print(f"redis-benchmark -c 50 -P {args.pipeline} -n {args.requests}, {args.rounds} rounds each, "
              f"{args.scrapes_per_second:g} scrapes/s of /metrics (+ /api/stats 1/s) in the 'with' rounds ({scrapes} scrapes)")
        print(f"{'test':6} {'mode':8} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
        for test in ("SET", "GET"):
            medians = {}
            for mode in ("without", "with"):
                rows = [r[test] for r in results[mode]]
                medians[mode] = {k: statistics.median(r[k] for r in rows) for k in ("rps", "p50", "p99")}
                m = medians[mode]
                print(f"{test:6} {mode:8} {m['rps']:>10.0f} {m['p50']:>8.3f} {m['p99']:>8.3f}")
            print(f"{test:6} ratio    {medians['with']['rps'] / medians['without']['rps']:>10.3f} "
                  f"{medians['with']['p50'] / medians['without']['p50']:>8.3f} {medians['with']['p99'] / medians['without']['p99']:>8.3f}")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
