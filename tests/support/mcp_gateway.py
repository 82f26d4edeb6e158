"""Helpers for the nova-cache-mcp suites: a gateway configuration around the fake upstreams, sessions over
stdio and Streamable HTTP with the official Python MCP client, and the upstreams' call counts."""
import contextlib
import json
import os
import socket
import subprocess
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from support import servers

FAKE_UPSTREAM = os.path.join(servers.ROOT, "examples", "mcp", "fake_upstream.py")


def gateway_binary():
    return os.environ.get("NOVA_MCP_BIN") or os.path.join(servers.ROOT, ".build", "release", "nova-cache-mcp")


def write_config(directory, redis_port, upstreams=None, http_port=None, namespace="mcp", **top):
    """A configuration with the crm (and erp) fake upstreams on stdio unless `upstreams` is given."""
    if upstreams is None:
        upstreams = [
            {
                "name": "crm",
                "command": [sys.executable, FAKE_UPSTREAM, "--name", "crm"],
                "timeout": "5s",
                "defaults": {"policy": "customer-search"},
                "tools": {
                    "search_customers": {"key": ["query", "limit"], "staleOnError": "10m"},
                    "my_accounts": {"scope": "private"},
                    "list_countries": {"ttl": "1s"},
                },
            },
            {"name": "erp", "command": [sys.executable, FAKE_UPSTREAM, "--name", "erp"], "timeout": "5s"},
        ]
    config = {"cache": {"url": f"redis://127.0.0.1:{redis_port}/0", "namespace": namespace}, "upstreams": upstreams}
    if http_port is not None:
        config["http"] = {"host": "127.0.0.1", "port": http_port, "path": "/mcp"}
    config.update(top)
    path = os.path.join(directory, f"gateway-{time.monotonic_ns()}.json")
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    return path


def upstream_env(state_dir):
    env = dict(os.environ)
    env["FAKE_UPSTREAM_STATE"] = str(state_dir)
    return env


def calls(state_dir, upstream="crm"):
    try:
        with open(os.path.join(state_dir, f"{upstream}.calls.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def control(state_dir, upstream="crm", **settings):
    with open(os.path.join(state_dir, f"{upstream}.control.json"), "w") as f:
        json.dump(settings, f)


@contextlib.asynccontextmanager
async def stdio_session(config_path, state_dir, errlog=None, message_handler=None):
    params = StdioServerParameters(
        command=gateway_binary(), args=["--config", config_path] + (["--log-level", os.environ["GW_LOG"]] if os.environ.get("GW_LOG") else []), env=upstream_env(state_dir), cwd=servers.ROOT
    )
    log = errlog or open(os.path.join(state_dir, "gateway.stderr"), "a")
    async with stdio_client(params, errlog=log) as (read, write):
        async with ClientSession(read, write, message_handler=message_handler) as session:
            await session.initialize()
            yield session


class HTTPGateway:
    """nova-cache-mcp serving Streamable HTTP, as a process of its own."""

    def __init__(self, config_path, state_dir, port):
        self.port = port
        self.log_path = os.path.join(state_dir, f"gateway-http-{port}.log")
        self.process = subprocess.Popen(
            [gateway_binary(), "--config", config_path, "--http"], cwd=servers.ROOT, env=upstream_env(state_dir),
            stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"),
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
            assert self.process.poll() is None, self.log()
            time.sleep(0.05)
        raise AssertionError(f"the gateway did not listen on {port}:\n{self.log()}")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/mcp"

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.asynccontextmanager
async def http_session(url, token=None):
    import httpx2 as httpx  # the HTTP client the mcp package depends on
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        async with streamable_http_client(url, http_client=client) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def text(result):
    return result.content[0].text
