import os
import sys

import pytest
import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import servers  # noqa: E402


@pytest.fixture(scope="session")
def nova_server():
    server = servers.start_nova()
    yield server
    if not server.alive():
        print(f"nova-cache-server exited unexpectedly:\n{server.log()[-5000:]}")
    server.cleanup()


@pytest.fixture(autouse=True)
def _server_survives(request):
    """Every test must leave the shared server running: a crash is a failure of the test that caused it."""
    yield
    if "nova_server" in request.fixturenames:
        server = request.getfixturevalue("nova_server")
        assert server.alive(), f"nova-cache-server died during this test:\n{server.log()[-5000:]}"


@pytest.fixture(scope="module")
def pair():
    """nova-cache-server and the reference redis-server, both without persistence, for one test module
    (the differential suites)."""
    nova = servers.start_nova("--save", "", "--appendonly", "no")
    ref = servers.start_redis()
    yield nova, ref
    nova.cleanup()
    ref.cleanup()


@pytest.fixture(scope="session")
def redis_server():
    server = servers.start_redis()
    yield server
    server.cleanup()


@pytest.fixture
def r(nova_server):
    """A redis-py client on the shared server, every database flushed first."""
    client = redis.Redis(host="127.0.0.1", port=nova_server.port)
    client.flushall()
    client.config_set("maxmemory", 0)
    yield client
    client.close()


@pytest.fixture
def port(nova_server):
    return nova_server.port
