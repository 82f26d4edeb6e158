"""nova-cache-mcp benchmark (see scripts/bench-gateway)."""
import argparse
import asyncio
import bisect
import json
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from support import servers  # noqa: E402
from support import mcp_gateway as gw  # noqa: E402
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def timed_calls(session, tool, arguments, calls):
    """ms per call, `calls` times (the first one not counted: it may miss or warm up)."""
    await session.call_tool(tool, arguments)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        result = await session.call_tool(tool, arguments)
        samples.append((time.perf_counter() - started) * 1000)
        assert not result.is_error
    return samples


async def direct_latency(state, calls):
    params = StdioServerParameters(command=sys.executable, args=[gw.FAKE_UPSTREAM, "--name", "direct"], env=gw.upstream_env(state))
    async with stdio_client(params, errlog=open(os.devnull, "w")) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await timed_calls(session, "search_customers", {"query": "latency"}, calls)


async def gateway_run(config, state, searches, queries, latency_calls, seed):
    async with gw.stdio_session(config, state) as session:
        hits = await timed_calls(session, "crm_search_customers", {"query": "latency"}, latency_calls)
        # Zipf (s = 1) over `queries` distinct searches, by inverse transform on the cumulative weights.
        weights = [1 / rank for rank in range(1, queries + 1)]
        cumulative = []
        total = 0.0
        for weight in weights:
            total += weight
            cumulative.append(total)
        generator = random.Random(seed)
        before = gw.calls(state).get("search_customers", 0)
        started = time.perf_counter()
        for _ in range(searches):
            rank = bisect.bisect_left(cumulative, generator.random() * total)
            result = await session.call_tool("crm_search_customers", {"query": f"q{rank}"})
            assert not result.is_error
        elapsed = time.perf_counter() - started
        upstream = gw.calls(state).get("search_customers", 0) - before
        stats = json.loads(gw.text(await session.call_tool("nova_cache_stats", {})))
        return hits, upstream, elapsed, stats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--searches", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--latency-calls", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()
    server = servers.start_nova("--save", "", "--appendonly", "no")
    state = tempfile.mkdtemp(prefix="bench-gateway-")
    try:
        config = gw.write_config(state, server.port)
        direct = asyncio.run(direct_latency(state, args.latency_calls))
        hits, upstream, elapsed, stats = asyncio.run(gateway_run(config, state, args.searches, args.queries, args.latency_calls, args.seed))
        rows = [
            ("direct upstream call (Python MCP server, stdio), ms p50 / p99", f"{percentile(direct, 0.5):.2f} / {percentile(direct, 0.99):.2f}"),
            ("cache hit through nova-cache-mcp (stdio), ms p50 / p99", f"{percentile(hits, 0.5):.2f} / {percentile(hits, 0.99):.2f}"),
            ("hit minus direct call, ms p50 / p99",
             f"{percentile(hits, 0.5) - percentile(direct, 0.5):+.2f} / {percentile(hits, 0.99) - percentile(direct, 0.99):+.2f}"),
            (f"Zipf replay: {args.searches:,} searches over {args.queries:,} queries, upstream calls", f"{upstream:,}"),
            ("  upstream calls avoided", f"{100 * (1 - upstream / args.searches):.1f}%"),
            ("  searches per second through the gateway (one client, sequential)", f"{args.searches / elapsed:,.0f}"),
            ("  gateway memory entries / hit ratio", f"{stats['cache']['memoryEntries']:,} / {stats['cache']['hitRatio']:.3f}"),
        ]
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            print(f"{label.ljust(width)}  {value}")
        print(f"(samples: {len(direct)} direct calls, {len(hits)} hits; mean {statistics.mean(direct):.2f} / {statistics.mean(hits):.2f} ms)")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
