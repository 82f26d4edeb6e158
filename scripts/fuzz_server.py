"""Runs the RESP fuzzer against a server it starts (see scripts/fuzz)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from support import fuzz, servers  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--frames", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--appendonly", action="store_true", help="run the server with appendonly yes")
    parser.add_argument("--against", choices=["nova", "redis"], default="nova")
    args = parser.parse_args()
    if args.frames is None and args.seconds is None:
        args.seconds = 60
    extra = ["--appendonly", "yes" if args.appendonly else "no", "--save", ""]
    if args.against == "nova":
        server = servers.start_nova(*extra)
    else:
        server = servers.start_redis(*extra[2:], "--appendonly", "yes" if args.appendonly else "no")
    try:
        baseline = fuzz.process_rss(server.process.pid)

        def progress(sent, elapsed, slowest, peak):
            print(f"  {sent:>10,} frames  {elapsed:7.1f} s  {sent / elapsed:8,.0f}/s  slowest PING "
                  f"{slowest * 1000:6.1f} ms  RSS peak {peak / 1e6:7.1f} MB", flush=True)

        report = fuzz.run(server.port, server.process.pid, args.seed, frames=args.frames, seconds=args.seconds,
                          connections=args.connections, progress=progress)
        settled = fuzz.settle(server.port, server.process.pid) if report["alive"] else None
        print(f"seed {args.seed}: {report['frames']:,} frames in {report['seconds']:.0f} s over "
              f"{report['connections']:,} connections; watchdog {report['watchdog_pings']} PINGs, slowest "
              f"{report['watchdog_slowest'] * 1000:.1f} ms, {len(report['watchdog_failures'])} failures")
        print(f"RSS: start {baseline / 1e6:.1f} MB, peak {report['rss_peak'] / 1e6:.1f} MB, after the clients "
              f"left and FLUSHALL {settled / 1e6 if settled else float('nan'):.1f} MB")
        if not report["alive"]:
            print(f"SERVER EXITED\n{server.log()[-6000:]}")
            print("Bursts sent last:")
            for data in report["suspects"]:
                print("  ", data[:2000])
            return 1
        if report["watchdog_failures"]:
            print("WATCHDOG FAILURES:", *report["watchdog_failures"][:10], sep="\n  ")
            print("Bursts sent shortly before the first failures:")
            for data in report["suspects"]:
                print("  ", data[:2000])
            return 1
        return 0
    finally:
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
