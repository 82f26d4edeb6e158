"""Issue 23: nova-cache-mcp, the connector cache, with the official Python MCP client downstream and a fake
business system (the official `mcp` package's server) upstream."""
import asyncio
import json
import os
import subprocess
import time

import pytest
import redis
from mcp.shared.exceptions import MCPError

from support import servers

from support import mcp_gateway as gw


@pytest.fixture
def state(tmp_path):
    return tmp_path


@pytest.fixture
def cache_server(nova_server):
    redis.Redis(port=nova_server.port).flushall()
    return nova_server


def run(coroutine):
    return asyncio.run(coroutine)


def test_repeated_calls_hit_the_cache_and_writes_pass_through(cache_server, state):
    config = gw.write_config(state, cache_server.port)

    async def scenario():
        async with gw.stdio_session(config, state) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert {"crm_search_customers", "erp_get_product", "nova_cache_stats", "nova_cache_invalidate"} <= names
            first = await session.call_tool("crm_search_customers", {"query": "smith"})
            for _ in range(9):
                again = await session.call_tool("crm_search_customers", {"query": "smith"})
                assert gw.text(again) == gw.text(first)
            # Key fields: limit is part of the key, so another limit is another entry.
            await session.call_tool("crm_search_customers", {"query": "smith", "limit": 2})
            for _ in range(3):
                await session.call_tool("crm_update_customer", {"id": 1, "name": "Ada"})
            assert gw.calls(state) == {"search_customers": 2, "update_customer": 3}
            stats = json.loads(gw.text(await session.call_tool("nova_cache_stats", {})))
            search = stats["tools"]["crm_search_customers"]
            assert search["calls"] == 11 and search["upstreamCalls"] == 2 and search["upstreamCallsAvoided"] == 9
            assert stats["tools"]["crm_update_customer"]["upstreamCalls"] == 3

    run(scenario())
    # The result is in the shared server, under the configured namespace, as plain JSON.
    keys = [k.decode() for k in redis.Redis(port=cache_server.port).keys("mcp:crm:search_customers:*")]
    assert 'mcp:crm:search_customers:shared:{"query":"smith"}' in keys


def test_ttl_expiry_and_errors_are_never_cached(cache_server, state):
    config = gw.write_config(state, cache_server.port)

    async def scenario():
        async with gw.stdio_session(config, state) as session:
            await session.call_tool("crm_list_countries", {})
            await session.call_tool("crm_list_countries", {})
            assert gw.calls(state)["list_countries"] == 1
            await asyncio.sleep(1.3)  # ttl 1s
            await session.call_tool("crm_list_countries", {})
            assert gw.calls(state)["list_countries"] == 2
            # An isError result goes back to the caller and is not stored.
            gw.control(state, fail=True)
            failed = await session.call_tool("crm_get_product", {"sku": "A1"})
            assert failed.is_error and "get_product" in gw.text(failed)
            gw.control(state)
            ok = await session.call_tool("crm_get_product", {"sku": "A1"})
            assert not ok.is_error and "Product A1" in gw.text(ok)
            assert gw.calls(state)["get_product"] == 2

    run(scenario())


def test_stale_on_error_serves_the_last_good_result(cache_server, state):
    upstreams = [{
        "name": "crm", "command": [gw.sys.executable, gw.FAKE_UPSTREAM, "--name", "crm"], "timeout": "5s",
        "tools": {"search_customers": {"ttl": "1s", "staleOnError": "1m"}},
    }]
    config = gw.write_config(state, cache_server.port, upstreams=upstreams)

    async def scenario():
        async with gw.stdio_session(config, state) as session:
            good = gw.text(await session.call_tool("crm_search_customers", {"query": "ada"}))
            gw.control(state, fail=True)
            await asyncio.sleep(1.2)
            stale = await session.call_tool("crm_search_customers", {"query": "ada"})
            assert not stale.is_error and gw.text(stale) == good
            assert gw.calls(state)["search_customers"] == 2  # it did ask the upstream

    run(scenario())


def test_fifty_concurrent_identical_calls_reach_the_upstream_once(cache_server, state):
    config = gw.write_config(state, cache_server.port)
    gw.control(state, delay=0.5)

    async def scenario():
        async with gw.stdio_session(config, state) as session:
            results = await asyncio.gather(*[session.call_tool("crm_search_customers", {"query": "zipf"}) for _ in range(50)])
            assert len({gw.text(r) for r in results}) == 1 and not any(r.is_error for r in results)
            assert gw.calls(state)["search_customers"] == 1

    run(scenario())


def test_invalidation_tools(cache_server, state):
    config = gw.write_config(state, cache_server.port)

    async def scenario():
        async with gw.stdio_session(config, state) as session:
            async def warm():
                await session.call_tool("crm_search_customers", {"query": "a"})
                await session.call_tool("crm_get_product", {"sku": "1"})
                await session.call_tool("erp_get_product", {"sku": "1"})

            await warm()
            await warm()
            assert gw.calls(state, "crm") == {"search_customers": 1, "get_product": 1}
            assert gw.calls(state, "erp") == {"get_product": 1}
            done = await session.call_tool("nova_cache_invalidate", {"tool": "crm_get_product"})
            assert not done.is_error
            await warm()
            assert gw.calls(state, "crm") == {"search_customers": 1, "get_product": 2} and gw.calls(state, "erp") == {"get_product": 1}
            await session.call_tool("nova_cache_invalidate", {"upstream": "crm"})
            await warm()
            assert gw.calls(state, "crm") == {"search_customers": 2, "get_product": 3} and gw.calls(state, "erp") == {"get_product": 1}
            await session.call_tool("nova_cache_invalidate", {"key": "erp:get_product:shared:{\"sku\":\"1\"}"})
            await warm()
            assert gw.calls(state, "erp") == {"get_product": 2}
            wrong = await session.call_tool("nova_cache_invalidate", {"tool": "a", "upstream": "b"})
            assert wrong.is_error and "exactly one" in gw.text(wrong)
            unknown = await session.call_tool("nova_cache_invalidate", {"tool": "nope"})
            assert unknown.is_error

    run(scenario())


def test_two_gateways_share_results_and_invalidations(cache_server, state):
    config = gw.write_config(state, cache_server.port)

    async def scenario():
        async with gw.stdio_session(config, state) as first, gw.stdio_session(config, state) as second:
            await first.call_tool("crm_search_customers", {"query": "shared"})
            await second.call_tool("crm_search_customers", {"query": "shared"})
            await second.call_tool("crm_search_customers", {"query": "shared"})
            assert gw.calls(state)["search_customers"] == 1
            await first.call_tool("nova_cache_invalidate", {"tool": "crm_search_customers"})
            # The second gateway's memory copy goes too (coherence), so it asks the upstream again.
            deadline = time.time() + 5
            while gw.calls(state)["search_customers"] < 2 and time.time() < deadline:
                await second.call_tool("crm_search_customers", {"query": "shared"})
                await asyncio.sleep(0.05)
            assert gw.calls(state)["search_customers"] == 2

    run(scenario())


def test_private_scope_keeps_callers_apart_over_http(cache_server, state):
    port = servers.free_port()
    config = gw.write_config(state, cache_server.port, http_port=port)
    gateway = gw.HTTPGateway(config, state, port)
    try:
        async def scenario():
            async with gw.http_session(gateway.url, token="alice") as alice, gw.http_session(gateway.url, token="bob") as bob:
                a1 = gw.text(await alice.call_tool("crm_my_accounts", {"user": ""}))
                b1 = gw.text(await bob.call_tool("crm_my_accounts", {"user": ""}))
                a2 = gw.text(await alice.call_tool("crm_my_accounts", {"user": ""}))
                assert a1 == a2 and gw.calls(state)["my_accounts"] == 2  # one upstream call per caller
                # Shared tools are shared across callers.
                await alice.call_tool("crm_search_customers", {"query": "q"})
                await bob.call_tool("crm_search_customers", {"query": "q"})
                assert gw.calls(state)["search_customers"] == 1
                async with gw.http_session(gateway.url) as anonymous:
                    await anonymous.call_tool("crm_my_accounts", {"user": ""})
                    await anonymous.call_tool("crm_my_accounts", {"user": ""})
                assert gw.calls(state)["my_accounts"] == 4  # no identity: passed through, never cached
                del b1

        run(scenario())
        keys = [k.decode() for k in redis.Redis(port=cache_server.port).keys("mcp:crm:my_accounts:*")]
        assert len(keys) == 2 and all(":caller-" in k for k in keys) and not any("alice" in k or "bob" in k for k in keys)
    finally:
        gateway.stop()


def test_progress_passes_through(cache_server, state):
    config = gw.write_config(state, cache_server.port)

    async def scenario():
        seen = []

        async def progress(value, total, message):
            seen.append((value, total, message))

        async with gw.stdio_session(config, state) as session:
            result = await session.call_tool("crm_slow_report", {"steps": 3}, progress_callback=progress)
            assert gw.text(result) == "report of 3 steps"
        assert seen == [(1, 3, "step 1 of 3"), (2, 3, "step 2 of 3"), (3, 3, "step 3 of 3")]

    run(scenario())


def test_list_changed_upstream_reaches_the_gateway_and_its_clients(cache_server, state):
    config = gw.write_config(state, cache_server.port)
    told = []

    async def on_message(message):
        told.append(str(message))

    async def scenario():
        async with gw.stdio_session(config, state, message_handler=on_message) as session:
            assert "crm_fresh_lookup" not in {t.name for t in (await session.list_tools()).tools}
            await session.call_tool("crm_add_tool", {"name": "fresh_lookup"})
            names, _ = await wait_for_lists(session, "crm_fresh_lookup", "fake://crm/status")
            assert "crm_fresh_lookup" in names
            assert any("tools/list_changed" in m or "ToolListChanged" in m for m in told), told
            # The new tool is read-only: cached like the others.
            for _ in range(3):
                result = await session.call_tool("crm_fresh_lookup", {"query": "x"})
                assert gw.text(result) == "fresh_lookup answered x"
            assert gw.calls(state)["fresh_lookup"] == 1

    run(scenario())


def test_cancellation_passes_through_to_the_upstream(cache_server, state):
    config = gw.write_config(state, cache_server.port)

    async def scenario():
        async with gw.stdio_session(config, state) as session:
            with pytest.raises((TimeoutError, asyncio.TimeoutError)):
                await asyncio.wait_for(session.call_tool("crm_slow_write", {"seconds": 20}), timeout=1)
            deadline = time.time() + 5
            while time.time() < deadline and not gw.calls(state).get("slow_write_cancelled"):
                await asyncio.sleep(0.1)
            assert gw.calls(state).get("slow_write_cancelled") == 1, gw.calls(state)
            # The session and the upstream are still usable.
            assert not (await session.call_tool("crm_get_product", {"sku": "after"})).is_error

    run(scenario())


def test_resources_pass_through(cache_server, state):
    config = gw.write_config(state, cache_server.port)

    async def scenario():
        async with gw.stdio_session(config, state) as session:
            uris = sorted(str(r.uri) for r in (await session.list_resources()).resources)
            assert uris == ["fake://crm/status", "fake://erp/status"]
            content = await session.read_resource("fake://erp/status")
            assert json.loads(content.contents[0].text) == {"upstream": "erp", "ok": True}

    run(scenario())


class HTTPUpstream:
    """The erp fake upstream on Streamable HTTP on a fixed port (so it can be restarted in place)."""

    def __init__(self, state, tls=None):
        self.state = state
        self.tls = tls
        self.port = servers.free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/mcp"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [gw.sys.executable, gw.FAKE_UPSTREAM, "--name", "erp", "--http", "--port", str(self.port)]
            + (["--certfile", self.tls["cert"], "--keyfile", self.tls["key"]] if self.tls else []),
            env=gw.upstream_env(self.state), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                gw.socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the HTTP upstream did not start")

    def stop(self):
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def http_upstream(state):
    """The erp fake upstream on Streamable HTTP; yields its URL."""
    upstream = HTTPUpstream(state)
    upstream.start()
    try:
        yield upstream.url
    finally:
        upstream.stop()


def http_upstream_config(state, cache_server, url, **fields):
    return gw.write_config(state, cache_server.port, upstreams=[{"name": "erp", "url": url, "timeout": "5s", **fields}])


def certificates(directory):
    """A CA and a certificate for 127.0.0.1 that it signed."""
    def openssl(*arguments):
        subprocess.run(["openssl", *arguments], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Gateway Test CA", "-keyout", "ca.key", "-out", "ca.crt")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=erp", "-keyout", "erp.key", "-out", "erp.csr")
    openssl("x509", "-req", "-in", "erp.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "san.ext", "-out", "erp.crt")
    return {"ca": str(directory / "ca.crt"), "cert": str(directory / "erp.crt"), "key": str(directory / "erp.key")}


def test_https_upstream_with_its_certificate_authority(cache_server, state):
    """An https upstream whose certificate a private CA signed: trusted with `ca`, refused without it (a
    clear error naming the upstream; the gateway goes on)."""
    tls = certificates(state)
    upstream = HTTPUpstream(state, tls=tls)
    upstream.start()
    try:
        trusted = http_upstream_config(state, cache_server, upstream.url, ca=tls["ca"])
        untrusted = http_upstream_config(state, cache_server, upstream.url)

        async def scenario():
            async with gw.stdio_session(trusted, state) as session:
                for _ in range(2):
                    assert "Product T1" in gw.text(await session.call_tool("erp_get_product", {"sku": "T1"}))
                seen = []

                async def progress(value, total, message):
                    seen.append(value)

                await session.call_tool("erp_slow_report", {"steps": 2}, progress_callback=progress)
                assert seen == [1, 2]
            async with gw.stdio_session(untrusted, state) as session:
                # The upstream could not be reached when the gateway started: calling one of its tools
                # tries again and says why it failed.
                with pytest.raises(MCPError) as refused:
                    await session.call_tool("erp_get_product", {"sku": "T2"})
                assert "upstream erp unavailable" in str(refused.value), str(refused.value)
                assert "certificate" in str(refused.value).lower(), str(refused.value)
                assert not (await session.call_tool("nova_cache_stats", {})).is_error
            assert gw.calls(state, "erp").get("get_product") == 1

        run(scenario())
    finally:
        upstream.stop()


def test_http_upstream(cache_server, state, http_upstream):
    config = http_upstream_config(state, cache_server, http_upstream)

    async def scenario():
        async with gw.stdio_session(config, state) as session:
            for _ in range(3):
                result = await session.call_tool("erp_get_product", {"sku": "B2"})
                assert "Product B2" in gw.text(result)
            assert gw.calls(state, "erp") == {"get_product": 1}

    run(scenario())


def test_resource_list_changed_reaches_the_gateways_clients(cache_server, state):
    config = gw.write_config(state, cache_server.port)
    told = []

    async def on_message(message):
        told.append(str(message))

    async def scenario():
        async with gw.stdio_session(config, state, message_handler=on_message) as session:
            await session.call_tool("crm_add_resource", {"name": "extra"})
            names, uris = await wait_for_lists(session, "crm_search_customers", "fake://crm/extra")
            assert "fake://crm/extra" in uris, uris
            assert any("ResourceListChanged" in m or "resources/list_changed" in m for m in told), told
            content = await session.read_resource("fake://crm/extra")
            assert json.loads(content.contents[0].text) == {"resource": "extra"}

    run(scenario())


def test_http_upstream_progress_arrives_while_the_call_runs(cache_server, state, http_upstream):
    """The upstream's event stream is read as it arrives: each progress notification reaches the client
    while the call is still running, not with its result."""
    config = http_upstream_config(state, cache_server, http_upstream)

    async def scenario():
        seen = []

        async def progress(value, total, message):
            seen.append((value, time.monotonic()))

        async with gw.stdio_session(config, state) as session:
            result = await session.call_tool("erp_slow_report", {"steps": 3, "pause": 0.4}, progress_callback=progress)
            finished = time.monotonic()
            assert gw.text(result) == "report of 3 steps"
        assert [value for value, _ in seen] == [1, 2, 3]
        # Step 1 is reported before three pauses, step 2 before two: both well before the result.
        assert finished - seen[0][1] > 0.8 and finished - seen[1][1] > 0.4, (finished, seen)

    run(scenario())


def test_http_upstream_list_changed_arrives_on_the_standalone_stream(cache_server, state, http_upstream):
    """An HTTP upstream sends list_changed outside any request (on the GET stream the gateway keeps open):
    new tools and resources reach the gateway's clients."""
    config = http_upstream_config(state, cache_server, http_upstream)
    told = []

    async def on_message(message):
        told.append(str(message))

    async def scenario():
        async with gw.stdio_session(config, state, message_handler=on_message) as session:
            assert "erp_fresh_lookup" not in {t.name for t in (await session.list_tools()).tools}
            await session.call_tool("erp_add_tool", {"name": "fresh_lookup"})
            await session.call_tool("erp_add_resource", {"name": "fresh"})
            names, uris = await wait_for_lists(session, "erp_fresh_lookup", "fake://erp/fresh")
            assert "erp_fresh_lookup" in names and "fake://erp/fresh" in uris, (names, uris)
            assert any("ToolListChanged" in m or "tools/list_changed" in m for m in told), told
            assert any("ResourceListChanged" in m or "resources/list_changed" in m for m in told), told
            for _ in range(2):
                assert gw.text(await session.call_tool("erp_fresh_lookup", {"query": "y"})) == "fresh_lookup answered y"
            assert gw.calls(state, "erp")["fresh_lookup"] == 1
            content = await session.read_resource("fake://erp/fresh")
            assert json.loads(content.contents[0].text) == {"resource": "fresh"}

    run(scenario())


def test_http_upstream_restarted_gets_a_new_session(cache_server, state):
    """An HTTP upstream that restarted no longer knows the gateway's session (404): the gateway opens a new
    one and sends the call again, without the downstream client noticing; the new session's notification
    stream works."""
    upstream = HTTPUpstream(state)
    upstream.start()
    try:
        config = http_upstream_config(state, cache_server, upstream.url)

        async def scenario():
            async with gw.stdio_session(config, state) as session:
                assert not (await session.call_tool("erp_get_product", {"sku": "before"})).is_error
                upstream.stop()
                upstream.start()
                result = await session.call_tool("erp_get_product", {"sku": "after"})
                assert not result.is_error, gw.text(result)
                assert "Product after" in gw.text(result)
                await session.call_tool("erp_add_tool", {"name": "late_lookup"})
                names, _ = await wait_for_lists(session, "erp_late_lookup", "fake://erp/status")
                assert "erp_late_lookup" in names

        run(scenario())
    finally:
        upstream.stop()


async def wait_for_lists(session, tool, uri, seconds=5):
    """The tool names and resource URIs the gateway lists, once both `tool` and `uri` are among them."""
    deadline = time.time() + seconds
    while True:
        names = {t.name for t in (await session.list_tools()).tools}
        uris = {str(r.uri) for r in (await session.list_resources()).resources}
        if (tool in names and uri in uris) or time.time() > deadline:
            return names, uris
        await asyncio.sleep(0.1)


def test_crashed_and_garbling_upstreams_give_errors_not_a_crashed_gateway(cache_server, state):
    config = gw.write_config(state, cache_server.port)

    async def scenario():
        async with gw.stdio_session(config, state) as session:
            assert not (await session.call_tool("crm_get_product", {"sku": "1"})).is_error
            gw.control(state, crash=True)
            with pytest.raises(Exception) as crashed:
                await session.call_tool("crm_get_product", {"sku": "2"})
            assert "crm" in str(crashed.value)
            gw.control(state)
            # The gateway starts the upstream again on the next call.
            again = await session.call_tool("crm_get_product", {"sku": "3"})
            assert not again.is_error and "Product 3" in gw.text(again)
            gw.control(state, delay=30)
            started = time.time()
            with pytest.raises(Exception) as hanging:
                await session.call_tool("crm_get_product", {"sku": "4"})
            assert "did not answer" in str(hanging.value) and time.time() - started < 15
            gw.control(state)
            # Other upstreams were never affected; the gateway is still there.
            assert not (await session.call_tool("erp_get_product", {"sku": "5"})).is_error

    run(scenario())


@pytest.mark.parametrize("mode", ["garbage", "truncated"])
def test_malformed_upstream_replies_give_errors(cache_server, state, mode):
    raw = os.path.join(servers.ROOT, "tests", "support", "raw_upstream.py")
    upstreams = [
        {"name": "raw", "command": [gw.sys.executable, raw, mode], "timeout": "3s"},
        {"name": "crm", "command": [gw.sys.executable, gw.FAKE_UPSTREAM, "--name", "crm"], "timeout": "5s"},
    ]
    config = gw.write_config(state, cache_server.port, upstreams=upstreams)

    async def scenario():
        async with gw.stdio_session(config, state) as session:
            assert "raw_lookup" in {t.name for t in (await session.list_tools()).tools}
            for _ in range(2):
                started = time.time()
                with pytest.raises(Exception) as failed:
                    await session.call_tool("raw_lookup", {"q": 1})
                assert "upstream raw" in str(failed.value) and time.time() - started < 10, str(failed.value)
            assert not (await session.call_tool("crm_get_product", {"sku": "1"})).is_error
            stats = json.loads(gw.text(await session.call_tool("nova_cache_stats", {})))
            assert stats["tools"]["raw_lookup"]["upstreamErrors"] == 2

    run(scenario())


def test_cache_server_killed_mid_run(state):
    server = servers.start_nova()
    config = gw.write_config(state, server.port)
    errlog_path = os.path.join(state, "gateway-kill.stderr")
    try:
        async def scenario():
            with open(errlog_path, "w") as errlog:
                async with gw.stdio_session(config, state, errlog=errlog) as session:
                    await session.call_tool("crm_search_customers", {"query": "k"})
                    server.kill()
                    for _ in range(20):
                        result = await session.call_tool("crm_search_customers", {"query": "k"})
                        assert not result.is_error
                    assert gw.calls(state)["search_customers"] == 1  # from memory
                    # A new query while the server is down still works (upstream, then memory).
                    await session.call_tool("crm_search_customers", {"query": "new"})
                    await session.call_tool("crm_search_customers", {"query": "new"})
                    assert gw.calls(state)["search_customers"] == 2
                    server.start()
                    deadline = time.time() + 10
                    while time.time() < deadline:
                        stats = json.loads(gw.text(await session.call_tool("nova_cache_stats", {})))
                        if stats["cache"]["remote"] == "available":
                            break
                        await asyncio.sleep(0.2)
                    assert stats["cache"]["remote"] == "available"
                    # The write made during the outage reached the server once it was back.
                    deadline = time.time() + 5
                    while time.time() < deadline and not redis.Redis(port=server.port).keys("mcp:crm:search_customers:*new*"):
                        await asyncio.sleep(0.1)
                    assert redis.Redis(port=server.port).keys("mcp:crm:search_customers:*new*")

        run(scenario())
        with open(errlog_path) as f:
            log = f.read()
        assert log.count("remote cache unreachable") == 1, log
    finally:
        server.cleanup()


@pytest.mark.parametrize("text,expected", [
    ('{"upstreams": [', "not valid JSON"),
    ('{"upstreams": []}', ":1: upstreams: expected a non-empty list"),
    ('{\n  "upstreams": [\n    {"name": "crm", "command": ["x"],\n     "tools": {"s": {"ttl": "1 hour"}}}\n  ]\n}', ':4: upstreams[0].tools.s.ttl: expected a duration'),
    ('{"upstreams": [{"name": "crm", "command": ["x"], "tools": {"s": {"scope": "secret"}}}]}', 'scope: expected "shared" or "private"'),
    ('{"upstreams": [{"name": "crm", "command": ["x"], "tools": {"s": {"policy": "forever"}}}]}', 'unknown preset "forever"'),
    ('{"upstreams": [{"name": "crm", "command": ["x"], "tools": {"s": {"tll": "1h"}}}]}', "upstreams[0].tools.s.tll: unknown field"),
    ('{"upstreams": [{"name": "crm"}]}', 'give either "command"'),
    ('{"upstreams": [{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}]}', 'upstreams[1].name: "a" is used twice'),
    ('{"cache": {"url": "http://x"}, "upstreams": [{"name": "a", "command": ["x"]}]}', "cache.url: expected a redis://"),
    ('{"upstreams": [{"name": "a", "url": "ftp://x"}]}', "upstreams[0].url: expected an http://"),
])
def test_bad_configuration_is_reported_with_line_and_field(tmp_path, text, expected):
    path = tmp_path / "bad.json"
    path.write_text(text)
    checked = subprocess.run([gw.gateway_binary(), "--check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 1 and expected in checked.stderr, checked.stderr
    started = subprocess.run([gw.gateway_binary(), "--config", str(path)], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert started.returncode == 1 and expected in started.stderr


def test_example_configuration_checks(tmp_path):
    checked = subprocess.run(
        [gw.gateway_binary(), "--check-config", os.path.join(servers.ROOT, "examples", "mcp", "gateway.json")],
        capture_output=True, text=True, timeout=30,
    )
    assert checked.returncode == 0 and checked.stdout.rstrip().endswith(": ok"), checked.stderr
    assert "upstream crm" in checked.stdout and "upstream erp" in checked.stdout
